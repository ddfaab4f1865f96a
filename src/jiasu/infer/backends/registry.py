"""The backend registry: every inference backend by name (`torch`, `onnxruntime`, ...)."""

from __future__ import annotations

from jiasu.core.registry import Registry
from jiasu.infer.backends.base import Backend

BACKENDS: Registry[type[Backend]] = Registry("backend")
