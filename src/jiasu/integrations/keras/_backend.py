"""Import Keras on the torch backend (unless the user chose another), and check the backend.

`KERAS_BACKEND` is read by Keras once, at its first import, so it is set here, before that
import, and only when the user has not set it. Nothing in `import jiasu` touches it.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from types import ModuleType

from jiasu.core.errors import ConfigError
from jiasu.core.extras import require


def import_keras() -> ModuleType:
    """Keras 3, imported with ``KERAS_BACKEND=torch`` unless a backend was already chosen."""
    if "keras" not in sys.modules:
        os.environ.setdefault("KERAS_BACKEND", "torch")
    if importlib.util.find_spec("keras") is None:
        return require("keras", extra="keras", purpose="the Keras integration")  # raises
    try:
        return importlib.import_module("keras")
    except ImportError as exc:  # Keras is there, the package of its backend is not
        raise ConfigError(
            f"Keras could not start its {os.environ.get('KERAS_BACKEND')!r} backend ({exc}); "
            "set KERAS_BACKEND=torch before Keras is first imported, or install that backend"
        ) from None


def backend() -> str:
    """The backend Keras runs on: 'torch', 'tensorflow', 'jax' or 'numpy'."""
    return str(import_keras().config.backend())


def require_torch_backend(purpose: str) -> ModuleType:
    """Keras, or a `ConfigError` when it runs on another backend than torch."""
    keras = import_keras()
    name = keras.config.backend()
    if name != "torch":
        raise ConfigError(
            f"{purpose} needs Keras on the torch backend, but Keras was imported with the "
            f"{name!r} backend; set KERAS_BACKEND=torch before Keras is first imported"
        )
    return keras
