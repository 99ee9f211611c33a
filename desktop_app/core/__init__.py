"""The application's Qt-free core: documents, formats, policies, settings schema, paths, errors.

Nothing under this package imports PySide6 (``tests/test_import_rules.py`` checks it), so the
CLI, batch runs and tests use it without a display.
"""
