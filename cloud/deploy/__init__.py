"""Deploy to SageMaker: spec, preflight, upload, resources, wait, teardown."""
