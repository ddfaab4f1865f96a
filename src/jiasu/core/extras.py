"""Import optional dependencies only where they are needed, with a helpful error."""

from __future__ import annotations

import importlib
from types import ModuleType

from jiasu.core.errors import MissingExtraError


def require(module: str, *, extra: str, purpose: str) -> ModuleType:
    """Import `module`, or raise `MissingExtraError` naming the extra that provides it.

    >>> np = require("numpy", extra="core", purpose="array input")
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(module, extra, purpose) from exc


# The top-level module of each optional dependency -> the jiasu extra that installs it
# (pyproject.toml's [project.optional-dependencies]).
EXTRA_OF_MODULE: dict[str, str] = {
    "onnx": "onnx",
    "onnxruntime": "onnx",
    "onnxscript": "onnx",
    "openvino": "openvino",
    "nncf": "openvino",
    "ray": "ray",
    "pyspark": "spark",
    "pandas": "tabular",
    "pyarrow": "tabular",
    "PIL": "images",
    "transformers": "transformers",
    "matplotlib": "report",
    "tensorboard": "track",
    "mlflow": "track",
    "keras": "keras",
    "sklearn": "digits",
    "fastapi": "serve",
    "starlette": "serve",
    "uvicorn": "serve",
    "prometheus_client": "serve",
    "multipart": "serve",
}


def missing_extra(exc: ImportError, *, purpose: str) -> MissingExtraError | None:
    """The `MissingExtraError` for an import that failed because an optional dependency is
    not installed (or does not import); None when the module is not one of jiasu's extras.

    >>> str(missing_extra(ModuleNotFoundError(name="ray"), purpose="jiasu predict"))[:48]
    "jiasu predict needs the Python package 'ray', wh"
    """
    if isinstance(exc, MissingExtraError):
        return exc
    top = (exc.name or "").partition(".")[0]
    extra = EXTRA_OF_MODULE.get(top)
    if extra is None:
        return None
    return MissingExtraError(top, extra, purpose)
