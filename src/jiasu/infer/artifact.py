"""What ``jiasu optimize --out DIR`` writes, and `load(DIR)`, which turns it into a predictor.

Layout::

    DIR/artifact.json   {"format": "jiasu-inference", "format_version": 1,
                         "candidate": {"name", "backend", "settings", "exactness"},
                         "files": {...}, "input_shape": [1, 28, 28], "num_classes": 10}
    DIR/model.onnx | model.xml + model.bin | model.safetensors   (by backend)
    DIR/report.json     the full optimize report

The folder is assembled under a temporary name and renamed into place. Loading reads
only JSON, ONNX, OpenVINO IR and safetensors: nothing is unpickled, and no code is
imported. A torch model is saved as its graph of ATen operators (``model.graph.json``);
only where torch.export could not capture it does the artifact name a
``package.module:factory`` to rebuild it, and `load` imports that only with
``trust_code=True`` (``jiasu predict --trust-code``). Every file entry must lie inside DIR.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, overload

import numpy as np
import torch

from jiasu.core.atomic import JiasuFolder, atomic_directory
from jiasu.core.description import (
    int_field,
    int_tuple_field,
    object_field,
    read_description,
    str_field,
)
from jiasu.core.errors import CheckpointError, ConfigError
from jiasu.data.finite import warn_if_nonfinite
from jiasu.infer.backends import BACKENDS, Candidate, Runner

FORMAT = "jiasu-inference"
FORMAT_VERSION = 1
META = "artifact.json"
REPORT = "report.json"
FOLDER = JiasuFolder("inference artifact", META, FORMAT, files=(REPORT,))

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


def save_artifact(
    directory: Path,
    candidate: Candidate,
    save_files: Callable[[Path], dict[str, Any]],
    *,
    input_shape: tuple[int, ...],
    num_classes: int,
    report: dict[str, Any],
) -> Path:
    """Write the chosen candidate's files, `artifact.json` and `report.json` to `directory`.

    `directory` must be new, empty, or an artifact jiasu wrote (its artifact.json says so);
    anything else is refused with `ConfigError` before `save_files` runs. Files the user
    added to an existing artifact (a deployment README, say) are carried into the new one;
    if the new artifact has a file of the same name, `ConfigError` is raised and the old
    artifact stays as it was (`jiasu.core.atomic.atomic_directory`).
    """
    directory = Path(directory)
    with atomic_directory(directory, FOLDER) as staging:
        files = save_files(staging)
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "candidate": candidate.to_dict(),
            "files": files,
            "input_shape": list(input_shape),
            "num_classes": num_classes,
            "output": "logits",
        }
        (staging / META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        (staging / REPORT).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return directory


class Predictor:
    """A loaded inference artifact: call it on a batch, get logits.

    Accepts a torch tensor or a numpy array of shape (N, *input_shape) (for one-channel
    images, (N, H, W) too) and returns the same kind: float32 logits of shape
    (N, num_classes). It pickles as its folder path, so engines such as Ray or Spark
    can ship it to workers, which load it again there.

    >>> predictor = load("artifacts/mnist")  # doctest: +SKIP
    >>> predictor(images).argmax(1)  # doctest: +SKIP
    """

    def __init__(
        self, path: Path, runner: Runner, meta: dict[str, Any], *, trust_code: bool = False
    ) -> None:
        self.path = path
        self.trust_code = trust_code
        self.meta = meta
        self.input_shape = tuple(int(d) for d in meta["input_shape"])
        self.num_classes = int(meta.get("num_classes", 0))
        self.name = str(meta["candidate"]["name"])
        self.backend = str(meta["candidate"]["backend"])
        self._runner = runner
        self._float32 = np.dtype(np.float32)

    def __repr__(self) -> str:
        return f"Predictor({str(self.path)!r}, candidate={self.name!r})"

    def __reduce__(self) -> tuple[Callable[[str, bool], Predictor], tuple[str, bool]]:
        return (_reload, (str(self.path), self.trust_code))

    @overload
    def __call__(self, batch: np.ndarray) -> np.ndarray: ...
    @overload
    def __call__(self, batch: torch.Tensor) -> torch.Tensor: ...
    def __call__(self, batch: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        # The common case first, inline: at batch 1 a model can take 6 µs, and each layer
        # of Python calls and checks around it costs a noticeable fraction of that.
        if (
            type(batch) is np.ndarray
            and batch.dtype is self._float32
            and batch.flags.c_contiguous
            and batch.shape[1:] == self.input_shape
        ):
            return self._runner(batch)
        if isinstance(batch, torch.Tensor):
            array = batch.detach().cpu().numpy()
            return torch.from_numpy(self.predict_numpy(array))
        return self.predict_numpy(batch)

    def predict_numpy(self, batch: np.ndarray) -> np.ndarray:
        """Logits (N, num_classes) float32 for a numpy batch (N, *input_shape)."""
        return self._runner(self.prepare(batch))

    def predict_classes(self, batch: np.ndarray) -> np.ndarray:
        """Predicted class indices (N,) int64."""
        return self.predict_numpy(batch).argmax(axis=1).astype(np.int64)

    def prepare(self, batch: np.ndarray) -> np.ndarray:
        """Check the shape and return a C-contiguous float32 array the runtimes accept."""
        if (
            type(batch) is np.ndarray
            and batch.dtype is self._float32
            and batch.flags.c_contiguous
            and batch.shape[1:] == self.input_shape
        ):
            return batch  # the common case, checked in well under a microsecond
        array = np.asarray(batch)
        if array.dtype.kind not in "fiub":
            raise ConfigError(f"input has dtype {array.dtype}; pass numbers (float32 images)")
        shape = self.input_shape
        if array.ndim == len(shape) and shape[0] == 1:  # (N, H, W) for one-channel models
            array = array[:, None]
        if array.ndim != len(shape) + 1 or tuple(array.shape[1:]) != shape:
            expected = ", ".join(str(d) for d in shape)
            raise ConfigError(
                f"input has shape {tuple(array.shape)}, but this model takes a batch of shape "
                f"(N, {expected}); reshape the input"
            )
        prepared = np.ascontiguousarray(array, dtype=np.float32)
        warn_if_nonfinite(prepared)  # not on the fast path above: it costs microseconds
        return prepared


def load(directory: str | os.PathLike[str], *, trust_code: bool = False) -> Predictor:
    """Load what ``jiasu optimize --out DIR`` wrote; return a callable `Predictor`.

    Loading never imports code the folder names: an artifact that can only be rebuilt by
    importing a ``package.module:factory`` (its model could not be saved as a graph) is
    refused with `CheckpointError` unless `trust_code` is True. Set it only for a folder
    you made or trust: importing a module runs its code.
    """
    path = Path(directory)
    meta = read_description(
        path, META, fmt=FORMAT, version=FORMAT_VERSION, what="inference artifact",
        create="create one with `jiasu optimize MODEL --out DIR`",
    )  # fmt: skip
    described = path / META
    str_field(meta, "candidate.name", described)
    backend = BACKENDS.get(str_field(meta, "candidate.backend", described))()
    settings = object_field(meta, "candidate.settings", described, default={})
    files = object_field(meta, "files", described)
    shape = int_tuple_field(meta, "input_shape", described)
    int_field(meta, "num_classes", described, default=10)
    try:
        runner = backend.load(path, files, settings, shape, trust_code=trust_code)
    except (ConfigError, CheckpointError, ImportError):
        raise
    except Exception as exc:
        raise CheckpointError(
            f"the {backend.name} model in {path} cannot be loaded ({exc}); run optimize again"
        ) from None
    return Predictor(path, runner, meta, trust_code=trust_code)


def _reload(directory: str, trust_code: bool) -> Predictor:
    return load(directory, trust_code=trust_code)


class PredictorFactory:
    """A picklable ``() -> predict_numpy`` for distributed inference (Ray, Spark workers).

    Only the artifact's path travels; each worker loads the artifact itself once.
    """

    def __init__(self, directory: str | os.PathLike[str], *, trust_code: bool = False) -> None:
        self.directory = str(Path(directory).resolve())
        self.trust_code = trust_code

    def __call__(self) -> Callable[[np.ndarray], np.ndarray]:
        return load(self.directory, trust_code=self.trust_code).predict_numpy
