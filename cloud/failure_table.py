"""The failure table: every way a deploy, a Batch Transform job or an endpoint call is known to fail.

Each row (:class:`FailureMode`) says how to recognise the failure (botocore error codes, regexes over
AWS messages, FailureReasons and container log lines), what it means in plain words and what to do.
This module is data only: :mod:`cloud.diagnosis` matches AWS text against the rows and renders
``docs/deploy-failures.md`` from them (``python -m cloud.diagnosis > docs/deploy-failures.md``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class FailureMode:
    """One thing that can go wrong, how to recognise it and what to do."""

    code: str
    title: str
    message: str  # what happened, in plain words
    fix: str  # what to do about it
    error_codes: tuple[str, ...] = ()  # botocore error codes / exception names that mean this
    patterns: tuple[str, ...] = ()  # regexes over error messages, FailureReasons and log lines
    where: str = ""  # where the tool detects it (for the document)


def _f(
    code: str,
    title: str,
    message: str,
    fix: str,
    *,
    errors: tuple[str, ...] = (),
    patterns: tuple[str, ...] = (),
    where: str,
) -> FailureMode:
    return FailureMode(
        code=code, title=title, message=message, fix=fix, error_codes=errors, patterns=patterns, where=where
    )


# Order matters: the first match wins, so specific rows come before general ones.
FAILURES: tuple[FailureMode, ...] = (
    _f(
        "no-credentials",
        "No AWS credentials",
        "No AWS credentials were found (environment, .env file, profile or instance role).",
        "Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in .env or the environment, or pass --profile.",
        errors=(
            "NoCredentialsError",
            "InvalidClientTokenId",
            "UnrecognizedClientException",
            "SignatureDoesNotMatch",
            "IncompleteSignature",
        ),
        patterns=(r"Unable to locate credentials", r"security token included in the request is invalid"),
        where="preflight (identity)",
    ),
    _f(
        "expired-credentials",
        "Expired credentials",
        "The AWS credentials have expired.",
        "Refresh them (aws sso login, or new temporary keys) and run the command again.",
        errors=("ExpiredToken", "ExpiredTokenException", "RequestExpired"),
        patterns=(r"security token included in the request is expired",),
        where="preflight (identity)",
    ),
    _f(
        "no-region",
        "No region",
        "No AWS region is set, so the tool does not know where to deploy.",
        "Set AWS_DEFAULT_REGION in .env or the environment, or pass --region (e.g. us-east-1).",
        errors=("NoRegionError",),
        patterns=(r"You must specify a region",),
        where="preflight (identity)",
    ),
    _f(
        "passrole-denied",
        "Caller may not pass the role",
        "Your AWS user is not allowed to hand the execution role to SageMaker (iam:PassRole).",
        "Attach a policy allowing iam:PassRole on the role ARN (condition iam:PassedToService = "
        "sagemaker.amazonaws.com) to the user or role that runs the deploy.",
        patterns=(r"iam:PassRole",),
        where="preflight (PassRole), create_model",
    ),
    _f(
        "role-untrusted",
        "Role not trusted by SageMaker",
        "SageMaker cannot assume the execution role: its trust policy does not name "
        "sagemaker.amazonaws.com (or the role does not exist).",
        "Edit the role's trust relationship to allow sts:AssumeRole for the service principal "
        "sagemaker.amazonaws.com, or pass the ARN of a role that does (AWS_ARN_ROLE).",
        patterns=(r"Could not assume role", r"not authorized to perform: sts:AssumeRole", r"does not trust sagemaker"),
        where="preflight (role), create_model",
    ),
    _f(
        "role-missing",
        "Role does not exist",
        "The execution role named in AWS_ARN_ROLE / --role does not exist in this account.",
        "Create a SageMaker execution role (IAM console > Roles > SageMaker) and put its ARN in AWS_ARN_ROLE.",
        errors=("NoSuchEntity",),
        patterns=(r"role .* cannot be found",),
        where="preflight (role)",
    ),
    _f(
        "model-data-unreadable",
        "Role cannot read the model data",
        "SageMaker could not read model.tar.gz from S3 with the execution role: the role lacks "
        "s3:GetObject on it, or the bucket is in another region than the endpoint.",
        "Give the role s3:GetObject (and kms:Decrypt for a KMS-encrypted bucket) on the object, "
        "and keep the bucket in the endpoint's region.",
        patterns=(r"Could not access model data", r"Failed to download model data", r"s3:GetObject"),
        where="create_model, endpoint FailureReason",
    ),
    _f(
        "region-mismatch",
        "Bucket or image in another region",
        "The S3 bucket or the container image is in a different region than the endpoint; "
        "SageMaker only reads model data and images from its own region.",
        "Use a bucket in the endpoint's region (or pass --region to match the bucket), and the "
        "image URI of that region.",
        errors=("PermanentRedirect", "AuthorizationHeaderMalformed"),
        patterns=(r"is in a different region", r"located in .* region", r"PermanentRedirect"),
        where="preflight (bucket, image)",
    ),
    _f(
        "bucket-missing",
        "Bucket does not exist",
        "The S3 bucket for the model data does not exist (or is not visible to these credentials).",
        "Create it in the endpoint's region (aws s3 mb s3://NAME --region REGION) or fix MODEL_BUCKET.",
        errors=("NoSuchBucket",),
        patterns=(r"The specified bucket does not exist",),
        where="preflight (bucket), upload",
    ),
    _f(
        "image-missing",
        "Container image not found",
        "The container image does not exist, or not in this region, or the role may not pull it.",
        "Use the DLC image of the endpoint's region (the default), or push your image to ECR in "
        "that region and allow the role ecr:BatchGetImage / ecr:GetDownloadUrlForLayer.",
        patterns=(
            r"Requested image .* not found",
            r"image .* does not exist",
            r"not authorized to perform: ecr:",
            r"failed to pull",
        ),
        where="preflight (image), create_model, endpoint FailureReason",
    ),
    _f(
        "bad-archive",
        "Unusable model archive",
        "The model archive is not what the container expects: code/inference.py is missing (the "
        "toolkit silently falls back to a default handler that wants one TorchScript .pt file) or "
        "the archive contains symlinks, which SageMaker cannot extract.",
        "Rebuild it with `langsam-studio deploy package`, which writes code/inference.py and refuses symlinks.",
        patterns=(r"Exactly one \.pth or \.pt file", r"symlink", r"Please provide a model_fn", r"No model_fn"),
        where="package check, container logs",
    ),
    _f(
        "quota",
        "Instance quota is zero",
        "Your account's quota for this instance type on endpoints is too low (new accounts start "
        "at 0 for GPU instances).",
        "Request an increase in Service Quotas > Amazon SageMaker > '<type> for endpoint usage', "
        "or choose an instance type with quota (--instance-type).",
        errors=("ResourceLimitExceeded",),
        patterns=(r"ResourceLimitExceeded", r"account-level service limit"),
        where="preflight (quota), create_endpoint",
    ),
    _f(
        "capacity",
        "No capacity for the instance type",
        "AWS has no spare capacity for this instance type in this region right now.",
        "Retry later, pick another instance type (e.g. ml.g5.2xlarge, ml.g6.xlarge) or another region.",
        errors=("InsufficientCapacityError", "CapacityError"),
        patterns=(r"[Ii]nsufficient capacity", r"do not have sufficient capacity", r"CapacityError"),
        where="endpoint FailureReason",
    ),
    _f(
        "cannot-start-container",
        "Container cannot start",
        "The container did not start — usually a CUDA/driver mismatch between the image and the "
        "instance, or an image built for another CPU architecture.",
        "Use the PyTorch GPU DLC (default) on a GPU instance, or rebuild your image for "
        "linux/amd64 with a CUDA version the instance driver supports.",
        errors=("CannotStartContainerError",),
        patterns=(
            r"CannotStartContainerError",
            r"exec format error",
            r"CUDA driver version is insufficient",
            r"nvidia-container-cli",
        ),
        where="endpoint FailureReason, container logs",
    ),
    _f(
        "ping-failed",
        "Health check never passed",
        "The container did not answer /ping in time: start-up (pip install of code/requirements.txt, "
        "model loading) took longer than ContainerStartupHealthCheckTimeoutInSeconds.",
        "Raise --startup-timeout (up to 3600 s), measure start-up with `deploy test-local`, and "
        "ship wheels and weights inside the archive instead of fetching them at start.",
        patterns=(r"did not pass the ping health check", r"ping health check"),
        where="endpoint FailureReason",
    ),
    _f(
        "download-timeout",
        "Model data download too slow",
        "Downloading model.tar.gz into the instance took longer than ModelDataDownloadTimeoutInSeconds.",
        "Raise --download-timeout (up to 3600 s) or make the archive smaller.",
        patterns=(r"ModelDataDownloadTimeout", r"download .* timed out"),
        where="endpoint FailureReason",
    ),
    _f(
        "worker-timeout",
        "Model loading exceeds the model-server timeout",
        "TorchServe killed the Python worker because loading the model took longer than its "
        "start-up/response timeout; it restarts it in a loop, so /ping stays healthy while every "
        "request times out.",
        "Deploy again with a larger --load-seconds: the tool sets TS_DEFAULT_STARTUP_TIMEOUT and "
        "SAGEMAKER_TS_RESPONSE_TIMEOUT above it (SAGEMAKER_MODEL_SERVER_TIMEOUT is ignored by "
        "toolkit 2.0.25).",
        patterns=(r"did not respond in given time", r"Backend worker did not respond"),
        where="container logs, smoke invocation",
    ),
    _f(
        "ray-deploy-failed",
        "Ray Serve: DEPLOY_FAILED behind a healthy ping",
        "The Ray Serve deployment's __init__ (the model load) raised; Ray retried it, gave up and marked the "
        "application DEPLOY_FAILED, while /-/healthz, and so /ping, stays 200. The endpoint is InService and "
        "every request fails (503 'failed to deploy', or requests queued before the failure never return).",
        "Read the replica traceback in the log tail (missing weights, an import error, out of memory); run "
        "`deploy test-local --target ray`, which reports the application status from serve.status().",
        patterns=(r"DEPLOY_FAILED", r"Failed to update the deployments", r"failed to deploy"),
        where="container logs, smoke invocation, dry run",
    ),
    _f(
        "ray-loading-after-ping",
        "Ray Serve: model still loading after /ping is healthy",
        "Ray Serve answers /-/healthz (the image's /ping) as soon as the app module is imported, before the "
        "deployment has loaded the model: SageMaker marks the endpoint InService while requests still wait "
        "for the load.",
        "Nothing to fix if the load finishes within the smoke-test budget: `deploy up` waits for a real "
        "answer. A load that keeps going is a DEPLOY_FAILED or a first load over the 60 s limit (below).",
        patterns=(r"taken more than \d+s to (be scheduled|initialize)",),
        where="container logs, smoke invocation",
    ),
    _f(
        "ray-first-load-over-limit",
        "Ray Serve: the first load is longer than SageMaker's 60 s invocation limit",
        "SageMaker gives a real-time invocation at most 60 s. With Ray the first requests wait behind a "
        "healthy /ping for the model load; a load longer than 60 s makes them fail with ModelError 424 "
        "(timeout) although the model loads fine a little later.",
        "Let `deploy up` retry the smoke invocation within its start-up budget (it does); make the load "
        "faster (weights inside the package, smaller model); measure with `deploy test-local --target ray`.",
        where="smoke invocation, dry run",
    ),
    _f(
        "ray-requirements-failed",
        "Ray Serve: code/requirements.txt failed to install",
        "The Ray Serve image pip-installs code/requirements.txt at every start; a failing install exits the "
        "container before Ray starts, so the endpoint fails its health check.",
        "Build the package with `deploy package --target ray` (wheels for CPython 3.13 inside, "
        "--no-index); never name packages the image has (torch, transformers, numpy ...).",
        where="container logs, dry run",
    ),
    _f(
        "ray-gpu-ami",
        "Ray Serve GPU image on the default host AMI",
        "The Ray Serve CUDA image (CUDA 12.9) needs a newer NVIDIA driver than the default SageMaker host AMI "
        "has: without InferenceAmiVersion on the production variant the container cannot use the GPU.",
        "Deploy with `deploy up --container ray` (sets InferenceAmiVersion al2-ami-sagemaker-inference-gpu-3-1 "
        "for GPU instance types), or set it on the endpoint config yourself.",
        patterns=(r"driver version is insufficient", r"NVIDIA driver on your system is too old"),
        where="preflight (instance type), container logs",
    ),
    _f(
        "requirements-failed",
        "requirements.txt failed to install",
        "pip install of code/requirements.txt failed at container start, so the server never started.",
        "Vendor wheels into code/wheels and use --no-index --find-links ./wheels (what "
        "`deploy package` does); check the log for the failing package.",
        patterns=(
            r"failed to install required packages",
            r"Could not find a version that satisfies",
            r"No matching distribution found",
        ),
        where="container logs",
    ),
    _f(
        "torch-pinned",
        "requirements.txt replaces torch",
        "code/requirements.txt installs torch, replacing the container's CUDA build (slow start, "
        "possibly a CPU-only or mismatched torch).",
        "Remove torch/torchvision from code/requirements.txt: the DLC already has them.",
        patterns=(r"Successfully installed .*\btorch-\d", r"Collecting torch[=<>~ ]", r"Attempting uninstall: torch\b"),
        where="package check, container logs",
    ),
    _f(
        "module-not-found",
        "Python import fails in the worker",
        "The inference code fails to import a module, so every worker dies while the endpoint stays InService.",
        "Add the missing package to the archive (code/wheels + requirements.txt) and test with "
        "`langsam-studio deploy test-local` before deploying.",
        errors=("ModuleNotFoundError",),
        patterns=(r"ModuleNotFoundError", r"No module named"),
        where="container logs",
    ),
    _f(
        "worker-died",
        "Model worker crashed",
        "The model worker process died (out of memory, a crash in model loading or a native library).",
        "Read the log lines before 'Worker died' for the cause; use a larger instance for out-of-memory.",
        patterns=(r"Worker died", r"WorkerLifeCycle", r"CUDA out of memory", r"OutOfMemoryError"),
        where="container logs",
    ),
    _f(
        "cuda-unavailable",
        "Running on CPU",
        "The model runs without a GPU (CUDA not available), so each request is far slower and may time out.",
        "Use a GPU instance type (ml.g5.xlarge) and the GPU DLC image; check the log for the driver error.",
        patterns=(r"CUDA (is )?not available", r"no CUDA-capable device", r"device[=: ]+cpu\b"),
        where="container logs, preflight (instance type)",
    ),
    _f(
        "network-blocked",
        "Downloads at start-up blocked",
        "The model tried to download weights or packages at start-up and the network is closed "
        "(network isolation, or a VPC without a NAT gateway), or it is slow.",
        "Ship the weights inside model.tar.gz (`deploy package` does) so nothing is fetched at start.",
        patterns=(
            r"Temporary failure in name resolution",
            r"Failed to establish a new connection",
            r"Max retries exceeded with url",
            r"Could not resolve host",
            r"huggingface\.co",
        ),
        where="container logs",
    ),
    _f(
        "invocation-timeout",
        "Invocations time out",
        "The endpoint is InService but the model did not answer within 60 s (HTTP 424): the model "
        "is still loading, its worker is restarting, or one request is too slow for real-time.",
        "Look at the container log (the tool prints its tail); raise the load timeouts, or deploy "
        "with --async for requests that need more than 60 s.",
        patterns=(r"invocation timed out", r"timed out while waiting for a response"),
        where="smoke invocation, endpoint client",
    ),
    _f(
        "client-read-timeout",
        "Client read timeout",
        "The client stopped waiting before the model answered. botocore's default (60 s, retried up "
        "to 5 times in legacy mode) makes a slow model look like a hang of minutes.",
        "The endpoint client sets a read timeout above the model's worst case and never retries an "
        "invocation; raise --read-timeout if the model really needs longer.",
        errors=("ReadTimeoutError", "ReadTimeout"),
        patterns=(r"Read timeout on endpoint URL",),
        where="endpoint client",
    ),
    _f(
        "payload-too-large",
        "Payload over 6 MiB",
        "The request or the response is larger than the 6 MiB real-time limit.",
        "Send a smaller (re-encoded) image, or deploy with --async: the client then sends large "
        "requests through S3 automatically.",
        patterns=(
            r"payload .*too large",
            r"Request Entity Too Large",
            r"response_too_large",
            r"exceeds? .*6 ?MiB",
            r"(status|code)\D{0,5}413\b",
        ),
        where="endpoint client",
    ),
    _f(
        "model-error",
        "The model returned an error",
        "The container answered with an error (HTTP 424 ModelError).",
        "Read the original message and the log stream shown with it.",
        errors=("ModelError",),
        where="smoke invocation, endpoint client",
    ),
    _f(
        "throttled",
        "Throttled",
        "AWS throttled the request (too many calls per second).",
        "Wait a moment and try again; the tool retries control-plane calls itself.",
        errors=("ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"),
        where="any call",
    ),
    _f(
        "endpoint-missing",
        "Endpoint does not exist",
        "There is no endpoint with this name in this region.",
        "Check the name and --region, or deploy it with `langsam-studio deploy up`.",
        patterns=(r"Could not find endpoint", r"Endpoint .* not found"),
        where="status, invoke, down",
    ),
    _f(
        "endpoint-busy",
        "Endpoint is being changed",
        "The endpoint is being created, updated or deleted, so it cannot be changed now.",
        "Wait until `langsam-studio deploy status` shows InService or Failed, then retry.",
        patterns=(r"Cannot update in-progress endpoint", r"status Creating", r"status Updating", r"status Deleting"),
        where="deploy, down",
    ),
    _f(
        "invalid-name",
        "Invalid endpoint name",
        "SageMaker endpoint names are at most 63 characters of letters, digits and hyphens, "
        "starting and ending with a letter or digit.",
        "Choose a deployment name like 'langsam-studio' (the tool adds its own suffixes).",
        patterns=(r"failed to satisfy constraint: Member must satisfy regular expression",),
        where="preflight (name)",
    ),
    _f(
        "env-too-large",
        "Environment entry too long",
        "A container environment value exceeds 1024 bytes, which SageMaker rejects.",
        "Shorten it; put large settings in a file inside the archive instead.",
        where="preflight (environment)",
    ),
    _f(
        "timeout-env-ignored",
        "SAGEMAKER_MODEL_SERVER_TIMEOUT has no effect",
        "SAGEMAKER_MODEL_SERVER_TIMEOUT is silently ignored by toolkit 2.0.25 (its config file lacks "
        "a final newline), so it does not protect a slow model load.",
        "Drop it; the tool sets SAGEMAKER_TS_RESPONSE_TIMEOUT and TS_DEFAULT_STARTUP_TIMEOUT instead.",
        where="preflight (environment)",
    ),
    _f(
        "serverless-gpu",
        "Serverless chosen for a GPU model",
        "Serverless inference has no GPU and a 4 MB payload limit, so Lang-SAM cannot run there.",
        "Use a real-time GPU endpoint (default ml.g5.xlarge) or --async to scale to zero.",
        where="preflight (instance type)",
    ),
    _f(
        "not-answering",
        "InService but the model never answered",
        "The endpoint is InService (on the DLC /ping answers before the model has loaded) but the "
        "model never answered a request within the smoke-test budget.",
        "Read the log tail above; usually the load timeouts are too small (raise --load-seconds) "
        "or the worker cannot import its code.",
        where="smoke invocation",
    ),
    # Batch Transform (cloud/batch_transform, `langsam-studio batch-transform`)
    _f(
        "transform-model-missing",
        "Batch Transform: no such model",
        "The SageMaker model named for the transform job does not exist in this region.",
        "Pass the name of an existing model (`aws sagemaker list-models`; `deploy up` creates "
        "NAME-m-<hash>), or --package PATH with --role to create one.",
        patterns=(r"Could not find model",),
        where="batch-transform (model)",
    ),
    _f(
        "transform-input",
        "Batch Transform: unusable input or output location",
        "The transform job's input prefix holds no usable images, or the input/output locations "
        "cannot be used (not s3://bucket/prefix/, output inside the input, an image over 6 MiB).",
        "Put the images (JPEG/PNG, at most 6 MiB each) under an S3 prefix in the job's region and "
        "pass another prefix as --out.",
        patterns=(r"No S3 objects found under", r"MaxPayloadInMB", r"exceeds? the maximum payload"),
        where="batch-transform (before anything is created; job FailureReason)",
    ),
    _f(
        "transform-failed",
        "Batch Transform job failed",
        "The Batch Transform job failed; records finished before the failure are kept under --out.",
        "Read the job's log lines shown above (CloudWatch /aws/sagemaker/TransformJobs); "
        "import what finished with `langsam-studio batch-transform import`, fix the cause and "
        "run again.",
        patterns=(r"See job logs for more information", r"AlgorithmError", r"Bad HTTP status received from algorithm"),
        where="batch-transform (job status)",
    ),
    _f(
        "billing",
        "An endpoint left running keeps billing",
        "A real-time endpoint bills for every hour its instances run, used or not.",
        "Run `langsam-studio deploy down NAME` when you are done; `deploy status` lists what runs.",
        where="deploy up (after success), status",
    ),
    _f(
        "access-denied",
        "Permission denied",
        "Your AWS user is not allowed to perform this action.",
        "Ask an administrator to grant the permission named in the AWS message (see docs/deploy.md "
        "for the list the deploy needs).",
        errors=("AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "Forbidden", "403"),
        patterns=(r"not authorized to perform", r"AccessDenied"),
        where="any call",
    ),
)

BY_CODE: dict[str, FailureMode] = {f.code: f for f in FAILURES}
