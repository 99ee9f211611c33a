"""Map AWS errors, endpoint FailureReasons and container log lines to plain-words explanations.

One table (:data:`cloud.failure_table.FAILURES`, re-exported here) is the single source: the deploy
tool, the endpoint client and ``docs/deploy-failures.md`` (rendered by :func:`failure_table_markdown`,
checked by a test) all read it, so the message a person sees and the documentation cannot drift apart.

One finding is a :class:`Diagnosis`, whoever finds it: a table row matched against AWS text here,
or a problem the local dry run measured (:mod:`cloud.dry_run.diagnosis`).

Regenerate the document with ``python -m cloud.diagnosis > docs/deploy-failures.md``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cloud.failure_table import BY_CODE, FAILURES, FailureMode

if TYPE_CHECKING:  # pragma: no cover
    from cloud.aws.errors import DeployError

__all__ = [
    "BY_CODE",
    "FAILURES",
    "UNKNOWN",
    "Diagnosis",
    "FailureMode",
    "deploy_error",
    "diagnose_exception",
    "diagnose_failure_reason",
    "diagnose_text",
    "failure_table_markdown",
    "match_text",
    "mode",
    "scan_log_lines",
]


@dataclass(frozen=True, kw_only=True)
class Diagnosis:
    """One finding in plain words: a failure mode matched against a concrete piece of AWS text, or
    a problem the local dry run measured (its ``message`` then carries the numbers and the fix)."""

    code: str  # a row of FAILURES, or a dry-run finding (REQUIREMENTS_FAILED, SLOW_MODEL_LOAD, ...)
    message: str  # what happened, in plain words
    fix: str = ""  # what to do about it (empty when the message says it)
    title: str = ""
    detail: str = ""  # the text that matched (error message, FailureReason, log line)
    fatal: bool = True  # False: a warning; the endpoint would work, but close to a limit

    @classmethod
    def of(cls, mode: FailureMode, detail: str = "") -> Diagnosis:
        """``mode`` found in ``detail``."""
        return cls(code=mode.code, message=mode.message, fix=mode.fix, title=mode.title, detail=detail)

    def sentence(self) -> str:
        return f"{self.message} Fix: {self.fix}" if self.fix else self.message


UNKNOWN = FailureMode(
    code="unknown",
    title="Unexpected AWS error",
    message="AWS reported an error the tool does not recognise.",
    fix="Read the AWS message below; re-run with the same command after fixing it.",
)

_COMPILED = tuple((f, tuple(re.compile(p, re.IGNORECASE) for p in f.patterns)) for f in FAILURES)


def mode(code: str) -> FailureMode:
    """The table row for ``code`` (KeyError for an unknown code: a programming error)."""
    return BY_CODE[code]


def match_text(text: str) -> FailureMode | None:
    """The first failure mode whose patterns match ``text`` (a message, FailureReason or log line)."""
    for failure, regexes in _COMPILED:
        if any(r.search(text) for r in regexes):
            return failure
    return None


def diagnose_text(text: str) -> Diagnosis:
    found = match_text(text or "")
    return Diagnosis.of(found or UNKNOWN, (text or "").strip())


def diagnose_failure_reason(reason: str) -> Diagnosis:
    """Explain an endpoint's ``FailureReason``."""
    return diagnose_text(reason)


def diagnose_exception(err: BaseException) -> Diagnosis:
    """Explain a botocore ``ClientError`` or a botocore/boto3 exception (no credentials, timeout...)."""
    response = getattr(err, "response", None)
    if isinstance(response, dict):
        error = response.get("Error", {}) or {}
        code = str(error.get("Code", ""))
        message = str(error.get("Message", "") or response.get("Message", ""))
        by_text = match_text(message)
        # A message pattern is more specific than a generic code (AccessDenied on PassRole...).
        if by_text is not None and by_text.code not in {"access-denied", "payload-too-large"}:
            return Diagnosis.of(by_text, message)
        for failure in FAILURES:
            if code and code in failure.error_codes:
                return Diagnosis.of(failure, message or code)
        return Diagnosis.of(by_text or UNKNOWN, f"{code}: {message}".strip(": "))
    name = type(err).__name__
    for failure in FAILURES:
        if name in failure.error_codes:
            return Diagnosis.of(failure, str(err))
    return diagnose_text(str(err))


def scan_log_lines(lines: Iterable[str]) -> tuple[Diagnosis, ...]:
    """Every distinct failure mode found in container log lines, first occurrence each, in order."""
    seen: dict[str, Diagnosis] = {}
    for line in lines:
        found = match_text(line)
        if found is not None and found.code not in seen:
            seen[found.code] = Diagnosis.of(found, line.strip()[:500])
    return tuple(seen.values())


def failure_table_markdown() -> str:
    """The document ``docs/deploy-failures.md``, rendered from :data:`FAILURES`."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    out = [
        "# Deploy failures and what the tool says",
        "",
        "Generated from `cloud/diagnosis.py` (`python -m cloud.diagnosis > docs/deploy-failures.md`);",
        "a test fails if this file and the table in code differ. Each row is a failure the deploy tool",
        "or the endpoint client detects, where it detects it, and the exact message and fix it prints.",
        "",
        "| Code | Failure | Detected in | Message | Fix |",
        "| --- | --- | --- | --- | --- |",
    ]
    for f in FAILURES:
        out.append(f"| `{f.code}` | {cell(f.title)} | {cell(f.where)} | {cell(f.message)} | {cell(f.fix)} |")
    out.append("")
    return "\n".join(out)


if __name__ == "__main__":  # pragma: no cover - a documentation generator
    print(failure_table_markdown(), end="")


def deploy_error(action: str, err: BaseException) -> DeployError:
    """A :class:`~cloud.aws.errors.DeployError` saying that ``action`` failed, why, and the fix."""
    from cloud.aws.errors import DeployError

    d = diagnose_exception(err)
    return DeployError(f"{action} failed: {d.message}", fix=d.fix, code=d.code, detail=d.detail)
