"""Everything between a model package and a running SageMaker endpoint, in sub-packages by job.

``aws`` (session, credentials, errors, image URIs, logs), ``packaging`` (build and verify a model
package), ``dry_run`` (serve it locally in the DLC's stack), ``deploy`` (preflight, upload,
resources, wait) and ``endpoint`` (call it); :mod:`cloud.failure_table` (one failure table),
:mod:`cloud.diagnosis` (matching AWS text to it, one :class:`~cloud.diagnosis.Diagnosis`) and
:mod:`cloud.timeouts` (one :class:`~cloud.timeouts.Timeouts`) serve them all. Every error is a
:class:`~inference.errors.StudioError`. ``cloud`` may import ``inference`` but never ``desktop_app`` or Qt.
"""
