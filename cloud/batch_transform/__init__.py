"""SageMaker Batch Transform: segment a whole S3 folder with the deployed package, no endpoint.

* :mod:`cloud.batch_transform.job` — the job: inputs listed and checked, the model (an existing
  one, or created from a package like ``deploy up`` does), ``CreateTransformJob`` with the prompt
  in the job's environment (:mod:`inference.batch_prompt`), progress (status, output objects
  counted against input objects, cost so far), and clean-up of what the run created on failure
  or Ctrl-C.
* :mod:`cloud.batch_transform.results` — the results in S3: the run's manifest and the
  ``<input key>.out`` records (one protocol JSON answer each).

The record contract and its limits are in ``docs/deploy.md`` ("Batch Transform"). Turning the
records into project documents is :mod:`desktop_app.core.batch_transform_import` (Qt-free, no
boto3); the CLI is ``langsam-studio batch-transform``.
"""
