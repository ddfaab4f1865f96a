"""Inference acceleration: backends, int8 quantization, verification and a measured pick.

>>> import jiasu
>>> predictor = jiasu.load("artifacts/mnist")  # written by `jiasu optimize` # doctest: +SKIP
>>> logits = predictor(images)  # doctest: +SKIP
"""

from jiasu.infer.artifact import Predictor, load
from jiasu.infer.backends import BACKENDS, Candidate, ModelSource
from jiasu.infer.model_source import resolve_model
from jiasu.infer.optimize import OptimizeConfig, optimize
from jiasu.infer.report import CandidateResult, OptimizeResult
from jiasu.infer.select import Trial, select
from jiasu.infer.verify import AccuracyBudget, Tolerance, Verification, verify

__all__ = [
    "BACKENDS",
    "AccuracyBudget",
    "Candidate",
    "CandidateResult",
    "ModelSource",
    "OptimizeConfig",
    "OptimizeResult",
    "Predictor",
    "Tolerance",
    "Trial",
    "Verification",
    "load",
    "optimize",
    "resolve_model",
    "select",
    "verify",
]
