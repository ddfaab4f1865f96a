"""jiasu (加速): make PyTorch models train and serve faster, measured and verified.

>>> import jiasu
>>> from jiasu.models import create_model
>>> history = jiasu.fit(create_model("mlp"), data, epochs=3)  # doctest: +SKIP
>>> result = jiasu.optimize(model, example_inputs)  # the fastest verified backend  # doctest: +SKIP
>>> result.predictor(inputs), result.save("artifacts/model")  # doctest: +SKIP
"""

from __future__ import annotations

from jiasu._version import __version__
from jiasu.core.recipe import Recipe
from jiasu.infer.api import Optimized, optimize
from jiasu.infer.artifact import load
from jiasu.train import History, fit

__all__ = ["History", "Optimized", "Recipe", "__version__", "fit", "load", "optimize"]
