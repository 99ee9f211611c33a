"""The two small text files the packager writes into ``code/``: the entry point and requirements.

The toolkit imports ``code/inference.py`` as the module ``inference`` (``SAGEMAKER_PROGRAM``
defaults to ``inference.py``), but our own package is also called ``inference``. The entry point
therefore stands in for that package: it finds the installed ``inference`` package (from the
bundled wheel, installed by ``code/requirements.txt``) with ``code/`` left out of the search,
adopts its ``__path__`` so ``inference.sagemaker_handler`` and every other submodule import
from there, and re-exports the handler's four functions.
"""

from __future__ import annotations

from collections.abc import Sequence

HANDLER_FUNCTIONS = ("model_fn", "input_fn", "predict_fn", "output_fn")

ENTRY_POINT = '''\
"""SageMaker entry point written by `langsam-studio deploy package` (do not edit).

The toolkit imports this file as the module `inference`, which is also the name of LangSAM
Studio's package (installed from code/wheels by code/requirements.txt). This module stands in
for that package: it adopts the installed package's __path__, so `inference.<submodule>` imports
from the wheel, and re-exports the SageMaker handler functions.
"""

import importlib.util as _util
import os as _os
import sys as _sys


def _installed_package_locations():
    here = _os.path.dirname(_os.path.abspath(__file__))
    saved_path = list(_sys.path)
    saved_module = _sys.modules.pop(__name__, None)
    try:
        _sys.path[:] = [p for p in saved_path if _os.path.abspath(p or _os.curdir) != here]
        spec = _util.find_spec("inference")
    finally:
        _sys.path[:] = saved_path
        if saved_module is not None:
            _sys.modules[__name__] = saved_module
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "No module named 'inference.sagemaker_handler': the langsam-studio wheel is not "
            "installed (code/requirements.txt installs it from code/wheels)",
            name="inference.sagemaker_handler")
    return list(spec.submodule_search_locations)


__path__ = _installed_package_locations()
print(f"LangSAM entry point: inference package from {__path__[0]}", file=_sys.stderr, flush=True)

from inference.sagemaker_handler import input_fn, model_fn, output_fn, predict_fn  # noqa: E402

__all__ = ["model_fn", "input_fn", "predict_fn", "output_fn"]
'''


def requirements_text(requirements: Sequence[str], *, target_label: str) -> str:
    """``code/requirements.txt``: offline install from ``./wheels``; never names torch."""
    lines = [
        "# Installed by the SageMaker PyTorch toolkit at every container start, before /ping.",
        f"# Offline, from the wheels beside this file (built for {target_label}).",
        "# torch and torchvision come from the container and are deliberately not listed.",
        "--no-index",
        "--find-links ./wheels",
        *requirements,
    ]
    return "\n".join(lines) + "\n"
