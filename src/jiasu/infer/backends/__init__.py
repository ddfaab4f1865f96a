"""Inference backends, one module per runtime, registered in `BACKENDS` by name.

Importing this package registers them all; a backend whose runtime is not installed is
still registered, and reports itself unavailable (with the extra to install) when asked.
"""

from jiasu.infer.backends import (  # noqa: F401  (imported to register)
    onnxruntime,
    openvino,
    torch_compile,
    torch_eager,
    torch_optimized,
)
from jiasu.infer.backends.base import (
    Backend,
    BuildContext,
    Built,
    Candidate,
    ExportFailed,
    ModelSource,
    Runner,
)
from jiasu.infer.backends.registry import BACKENDS

__all__ = [
    "BACKENDS",
    "Backend",
    "BuildContext",
    "Built",
    "Candidate",
    "ExportFailed",
    "ModelSource",
    "Runner",
]
