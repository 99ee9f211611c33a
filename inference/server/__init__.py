"""Serving LangSAM Studio's inference over HTTP (FastAPI) and on SageMaker.

Light to import: FastAPI and uvicorn are imported only by :mod:`inference.server.app` and
:mod:`desktop_app.cli.serve_command` (inside ``run``). :mod:`inference.server.runner` is the
framework-free core shared by the HTTP server and :mod:`inference.sagemaker_handler`.
"""
