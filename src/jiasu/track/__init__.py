"""Send reports to experiment trackers, through their own libraries (the `track` extra).

>>> from jiasu.track import to_mlflow, to_tensorboard  # doctest: +SKIP
>>> to_tensorboard(report, "runs/")                     # doctest: +SKIP
>>> to_mlflow(report, "file:./mlruns")                  # doctest: +SKIP
"""

from jiasu.track.mlflow import to_mlflow
from jiasu.track.tensorboard import to_tensorboard

__all__ = ["to_mlflow", "to_tensorboard"]
