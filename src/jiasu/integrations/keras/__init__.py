"""Keras 3 models accelerated by jiasu: inside ``model.fit``, through `jiasu.fit`, for inference.

Importing this module imports Keras with ``KERAS_BACKEND=torch`` unless a backend was set
before. `KerasAcceleration` and its callbacks work on any backend; the torch bridge
(`as_torch_module`, `load_keras_as_torch`, `fit_keras`) needs the torch backend and says
so with a `ConfigError` otherwise.

>>> from jiasu.integrations.keras import KerasAcceleration, load_keras_as_torch  # doctest: +SKIP
"""

from jiasu.integrations.keras._backend import backend, import_keras, require_torch_backend
from jiasu.integrations.keras.acceleration import (
    KerasAcceleration,
    KerasLookahead,
    KerasPrecision,
    KerasThreads,
)
from jiasu.integrations.keras.torch_bridge import (
    KerasModule,
    as_torch_module,
    fit_keras,
    load_keras_as_torch,
    resolve_keras_model,
    save_keras,
)

__all__ = [
    "KerasAcceleration",
    "KerasLookahead",
    "KerasModule",
    "KerasPrecision",
    "KerasThreads",
    "as_torch_module",
    "backend",
    "fit_keras",
    "import_keras",
    "load_keras_as_torch",
    "require_torch_backend",
    "resolve_keras_model",
    "save_keras",
]
