"""AWS plumbing shared by every cloud job: session and credentials, errors, image URIs, logs."""
