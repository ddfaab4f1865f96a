"""What ``jiasu optimize --out DIR`` writes, and `load(DIR)`, which turns it into a predictor.

Layout::

    DIR/artifact.json   {"format": "jiasu-inference", "format_version": 2,
                         "candidate": {"name", "backend", "settings", "exactness"},
                         "files": {...},
                         "signature": {"inputs": [{"name", "dtype", "shape"}], "call"},
                         "output": "logits" | null, "task": {...} | null}
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
from typing import Any, TypeVar

import numpy as np
import torch

from jiasu.core.atomic import JiasuFolder, atomic_directory
from jiasu.core.description import (
    int_tuple_field,
    object_field,
    read_description,
    str_field,
)
from jiasu.core.errors import CheckpointError, ConfigError
from jiasu.core.signature import InputSignature
from jiasu.data.finite import warn_if_nonfinite
from jiasu.infer.backends import BACKENDS, Candidate, Runner
from jiasu.models.saved import is_model_dir, load_model_dir

FORMAT = "jiasu-inference"
FORMAT_VERSION = 2  # 2: a signature of named inputs; 1: one float input_shape (still read)
META = "artifact.json"
REPORT = "report.json"
FOLDER = JiasuFolder("inference artifact", META, FORMAT, files=(REPORT,))

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


def save_artifact(
    directory: Path,
    candidate: Candidate,
    save_files: Callable[[Path], dict[str, Any]],
    *,
    signature: InputSignature,
    output: str | None = None,
    task: dict[str, Any] | None = None,
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
            "signature": signature.to_dict(),
            "output": output,
            "task": task,
        }
        (staging / META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        (staging / REPORT).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return directory


class Predictor:
    """A loaded inference artifact: call it like the model, get its output as an array.

    Call it with the model's inputs in the artifact's signature: one array or tensor for
    a one-input model, several in order (``predictor(ids, mask)``), or a dict by name
    (``predictor({"input_ids": ids, "attention_mask": mask})``). Numpy in gives numpy
    out, torch gives torch: the selected output, float32, (N, ...). Inputs that do not
    match the signature are refused with one sentence saying what was expected.
    It pickles as its folder path, so engines such as Ray or Spark can ship it to
    workers, which load it again there.

    >>> predictor = load("artifacts/mnist")  # doctest: +SKIP
    >>> predictor(images).argmax(1)  # doctest: +SKIP
    """

    def __init__(
        self,
        path: Path,
        runner: Runner,
        meta: dict[str, Any],
        signature: InputSignature,
        *,
        trust_code: bool = False,
    ) -> None:
        self.path = path
        self.trust_code = trust_code
        self.meta = meta
        self.signature = signature
        self.output = meta.get("output")
        self.name = str(meta["candidate"]["name"])
        self.backend = str(meta["candidate"]["backend"])
        self._runner = runner
        spec = signature.inputs[0]
        # The fast path's check: one input of fixed sample shape, as the runtime takes it.
        sample = spec.sample_shape
        fixed = len(signature.inputs) == 1 and all(isinstance(d, int) for d in sample)
        self._fast: tuple[np.dtype[Any], tuple[Any, ...]] | None = (
            (np.dtype(spec.dtype), tuple(sample)) if fixed else None
        )

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        """The per-sample shape of a one-float-input model (None for other signatures)."""
        return self.signature.single_float_shape()

    def __repr__(self) -> str:
        return f"Predictor({str(self.path)!r}, candidate={self.name!r})"

    def __reduce__(self) -> tuple[Callable[[str, bool], Predictor], tuple[str, bool]]:
        return (_reload, (str(self.path), self.trust_code))

    def __call__(self, *inputs: Any) -> Any:
        # The common case first, inline: at batch 1 a model can take 6 µs, and each layer
        # of Python calls and checks around it costs a noticeable fraction of that.
        if len(inputs) == 1:
            batch = inputs[0]
            fast = self._fast
            if (
                fast is not None
                and type(batch) is np.ndarray
                and batch.dtype is fast[0]
                and batch.flags.c_contiguous
                and batch.shape[1:] == fast[1]
            ):
                return self._runner(batch)
        given = inputs[0] if len(inputs) == 1 else inputs
        values = given.values() if isinstance(given, dict) else given
        values = values if isinstance(values, tuple | list) or isinstance(given, dict) else [given]
        if any(isinstance(v, torch.Tensor) for v in values):
            return torch.from_numpy(self.predict_numpy(given))
        return self.predict_numpy(given)

    def predict_numpy(self, inputs: Any) -> np.ndarray:
        """The output (N, ...) float32 for `inputs`: an array (one input), a tuple in
        signature order, or a dict by name; arrays or tensors."""
        return self._runner(*self.prepare(inputs))

    def predict_classes(self, inputs: Any) -> np.ndarray:
        """Predicted class indices (N,) int64, for a model whose output is (N, classes)."""
        out = self.predict_numpy(inputs)
        if out.ndim != 2:
            raise ConfigError(
                f"this model's output has shape {out.shape}, not (N, classes) scores, so it "
                "has no predicted classes; use its output as it is"
            )
        return out.argmax(axis=1).astype(np.int64)

    def prepare(self, inputs: Any) -> tuple[np.ndarray, ...]:
        """Check `inputs` against the signature; return C-contiguous arrays in its dtypes."""
        arrays = self.signature.check(inputs)
        for array in arrays:
            if array.dtype.kind == "f":
                warn_if_nonfinite(array)  # not on the fast path: it costs microseconds
        return arrays


def load(
    directory: str | os.PathLike[str], *, trust_code: bool = False, shared_cpu: bool = False
) -> Predictor:
    """Load what ``jiasu optimize --out DIR`` wrote (or a model directory of ``jiasu train
    --save``, run in PyTorch eager mode); return a callable `Predictor`.

    `shared_cpu`: the predictor will share the cores with other busy threads (a server's
    event loop and workers), so runtime settings that only pay on an otherwise idle
    machine are dropped (ONNX Runtime's spinning thread pool); `jiasu serve` sets it.

    Loading never imports code the folder names: an artifact that can only be rebuilt by
    importing a ``package.module:factory`` (its model could not be saved as a graph) is
    refused with `CheckpointError` unless `trust_code` is True. Set it only for a folder
    you made or trust: importing a module runs its code.
    """
    path = Path(directory)
    if not (path / META).is_file() and is_model_dir(path):
        return _load_model_dir(path, trust_code)
    meta = read_description(
        path, META, fmt=FORMAT, version=(1, FORMAT_VERSION), what="inference artifact",
        create="create one with `jiasu optimize MODEL --out DIR`",
    )  # fmt: skip
    described = path / META
    str_field(meta, "candidate.name", described)
    backend = BACKENDS.get(str_field(meta, "candidate.backend", described))()
    settings = object_field(meta, "candidate.settings", described, default={})
    if shared_cpu:
        settings = backend.shared_cpu(settings)
    files = object_field(meta, "files", described)
    signature = _signature(meta, described)
    try:
        runner = backend.load(path, files, settings, signature, trust_code=trust_code)
    except (ConfigError, CheckpointError, ImportError):
        raise
    except Exception as exc:
        raise CheckpointError(
            f"the {backend.name} model in {path} cannot be loaded ({exc}); run optimize again"
        ) from None
    return Predictor(path, runner, meta, signature, trust_code=trust_code)


def _load_model_dir(path: Path, trust_code: bool) -> Predictor:
    """A model directory (``jiasu train --save``) run in PyTorch eager mode, as its
    artifact would be: the same signature checks, the same calls."""
    from jiasu.infer.backends.torch_eager import eager_runner
    from jiasu.models.adapter import adapt

    saved = load_model_dir(path, trust_code=trust_code)
    runner = eager_runner(adapt(saved.model, saved.signature))
    meta = {"candidate": {"name": "torch-eager", "backend": "torch"}, "model_dir": True}
    return Predictor(path, runner, meta, saved.signature, trust_code=trust_code)


def _signature(meta: dict[str, Any], described: Path) -> InputSignature:
    if meta.get("format_version") == 1:  # one float input of a fixed per-sample shape
        return InputSignature.from_shape(int_tuple_field(meta, "input_shape", described))
    data = object_field(meta, "signature", described)
    try:
        return InputSignature.from_dict(data)
    except ConfigError as exc:
        raise CheckpointError(
            f"{described} has an invalid signature ({exc}); run optimize again"
        ) from None


def _reload(directory: str, trust_code: bool) -> Predictor:
    return load(directory, trust_code=trust_code)


class PredictorFactory:
    """A picklable ``() -> predict_numpy`` for distributed inference (Ray, Spark workers).

    Only the artifact's path travels; each worker loads the artifact itself once.
    """

    def __init__(self, directory: str | os.PathLike[str], *, trust_code: bool = False) -> None:
        self.directory = str(Path(directory).resolve())
        self.trust_code = trust_code

    def __call__(self) -> Callable[[Any], np.ndarray]:
        return load(self.directory, trust_code=self.trust_code).predict_numpy
