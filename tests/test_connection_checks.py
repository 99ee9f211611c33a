"""The Test buttons' functions without Qt: sentences for missing settings, trust policies."""

from __future__ import annotations

from cloud.aws.check import trusts_sagemaker
from desktop_app.core.connection_checks import aws_settings, check_openai, check_server


def test_trust_policy_reading():
    doc = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": ["ec2.amazonaws.com", "sagemaker.amazonaws.com"]},
                "Action": "sts:AssumeRole",
            }
        ]
    }
    assert trusts_sagemaker(doc)
    assert trusts_sagemaker(
        "%7B%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%7B%22"
        "Service%22%3A%22sagemaker.amazonaws.com%22%7D%2C%22Action%22%3A%22sts%3AAssumeRole%22%7D%5D%7D"
    )
    assert not trusts_sagemaker(
        {
            "Statement": [
                {"Effect": "Deny", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ]
        }
    )
    assert not trusts_sagemaker("not json")


def test_missing_settings_say_what_to_enter():
    (row,) = check_server({})
    assert not row.ok and "No server URL" in row.sentence and "Settings → Remote" in row.sentence
    (row,) = check_openai({})
    assert not row.ok and "No OpenAI API key" in row.sentence


def test_aws_settings_keys_win_over_a_profile():
    s = aws_settings(
        {
            "aws/profile": "work",
            "aws/access_key_id": "AKIAXXXXXXXXXXXXXXXX",
            "aws/secret_access_key": "s3cr3t-value",
            "aws/region": "eu-west-1",
        },
        environ={},
    )
    assert s.profile is None and s.access_key_id and "s3cr3t-value" not in repr(s)
    assert aws_settings({"aws/profile": "work"}, environ={}).profile == "work"
