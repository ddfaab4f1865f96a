"""Reference models, chosen by name from a registry."""

from jiasu.models.registry import MODELS, ModelSpec, create_model
from jiasu.models.saved import SavedModel, is_model_dir, load_model_dir, save_model_dir

__all__ = [
    "MODELS",
    "ModelSpec",
    "SavedModel",
    "create_model",
    "is_model_dir",
    "load_model_dir",
    "save_model_dir",
]
