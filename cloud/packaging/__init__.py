"""Model packages for SageMaker: build, bundled wheels, the handler shim, verification."""
