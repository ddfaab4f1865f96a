"""Reference models, chosen by name from a registry."""

from jiasu.models.registry import MODELS, ModelSpec, create_model

__all__ = ["MODELS", "ModelSpec", "create_model"]
