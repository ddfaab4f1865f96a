"""`jiasu.optimize(model, example_inputs, ...)`: the Python API of the inference search.

>>> import jiasu, torch
>>> result = jiasu.optimize(model, torch.randn(8, 3, 32, 32))  # doctest: +SKIP
>>> result.chosen.name, result.speedup  # doctest: +SKIP
('onnxruntime', 2.1)
>>> logits = result.predictor(images)  # callable like the model  # doctest: +SKIP
>>> result.save("artifacts/cnn")  # what `jiasu.load` and `jiasu predict` read  # doctest: +SKIP

The model is an ``nn.Module`` (any inputs: a tensor, a tuple, or keyword arguments as a
dict; any outputs: a tensor, a tuple, a dict or a Hugging Face ``ModelOutput``), or a path
jiasu reads (an .onnx or .keras file, a model directory). The signature comes from
`example_inputs` (or `input_spec`, or the data). With `data` (arrays in the same form, or
a file: .npz, .npy, .csv, .parquet, an image folder) candidates are verified on it: with
`labels`, on the task's metric; without, on agreement with eager fp32. Without any data
the inputs are generated from the signature: the speed is real, accuracy is not verified,
and approximate candidates (int8, bf16) are not accepted.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path
from typing import Any, Literal

import numpy as np
from torch import nn

from jiasu.core.errors import ConfigError
from jiasu.core.signature import InputSignature
from jiasu.infer.artifact import Predictor, load, save_artifact
from jiasu.infer.backends.base import Built, ModelSource
from jiasu.infer.optimize import OptimizeConfig, search
from jiasu.infer.report import CandidateResult, OptimizeResult
from jiasu.infer.verify import AccuracyBudget


@dataclasses.dataclass
class Optimized:
    """What `optimize` found: the report, the chosen candidate, and a predictor for it.

    `predictor` is the chosen candidate loaded back from its artifact, exactly as
    `jiasu.load` will load it after `save`; call it like the model.
    """

    report: OptimizeResult
    predictor: Predictor
    _winner: Built
    _workdir: tempfile.TemporaryDirectory[str]

    @property
    def chosen(self) -> CandidateResult:
        return self.report.chosen

    @property
    def speedup(self) -> float | None:
        """The chosen candidate's speed over eager fp32 (1.0 when eager is chosen)."""
        return self.report.chosen.speedup

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the chosen candidate as an artifact (`jiasu.load`, `jiasu predict`)."""
        from jiasu.core.outputs import Output, check_outputs
        from jiasu.infer.artifact import FOLDER

        path = Path(directory)
        check_outputs([Output("directory", path, FOLDER)])
        return save_artifact(
            path,
            self.report.chosen.candidate,
            self._winner.save,
            signature=self.report.signature,
            output=self.report.output,
            task=self.report.task.to_dict(),
            report=self.report.to_dict(),
        )

    def __repr__(self) -> str:
        ratio = f"{self.speedup:.2f}×" if self.speedup else "?"
        return f"Optimized(chosen={self.chosen.name!r}, speedup={ratio})"


def optimize(
    model: nn.Module | str | os.PathLike[str],
    example_inputs: Any = None,
    data: Any = None,
    labels: Any = None,
    metric: str | None = None,
    budget: float | AccuracyBudget | None = None,
    target: Literal["latency", "throughput"] = "latency",
    *,
    input_spec: str | InputSignature | None = None,
    output: str | None = None,
    calibration: Any = None,
    label_column: str | None = None,
    batch_size: int | None = None,
    backends: tuple[str, ...] | None = None,
    threads: int | None = None,
    measure_s: float = 6.0,
    isolate: bool = True,
    time_budget_s: float | None = None,
    progress: bool = False,
) -> Optimized:
    """Try every applicable backend on this machine; keep the fastest that stays within
    `budget`; return it with the evidence.

    `budget` is a fraction: the accuracy (or top-1 agreement) a candidate may lose, or
    with an `AccuracyBudget` also a relative one; None is the task's default (half a
    point; 1% more error for MSE/MAE). `metric` (accuracy, mse, mae) overrides the task
    guessed from the labels. `output` names the model output to verify and serve
    (default: ``logits`` where there is one, else the first tensor). `time_budget_s`
    bounds the search's wall time (softly: no candidate starts building after 70% of it;
    those not built are listed as skipped); None: no limit.
    """
    signature = _signature(example_inputs, input_spec)
    if signature is None and isinstance(model, nn.Module) and data is not None:
        signature = _data_signature(data, label_column)
    source = _source(model, signature, output)
    inputs, labels = _data(data, labels, source.signature, label_column)
    if isinstance(budget, bool) or not (
        budget is None or isinstance(budget, (int, float, AccuracyBudget))
    ):
        raise ConfigError(
            f"budget {budget!r} is not a fraction; pass e.g. 0.005 or an AccuracyBudget"
        )
    config = OptimizeConfig(
        target=target,
        batch_size=batch_size,
        budget=AccuracyBudget("absolute", float(budget))
        if isinstance(budget, (int, float))
        else budget,
        backends=backends,
        threads=threads,
        measure_s=measure_s,
        isolate=isolate,
        time_budget_s=time_budget_s,
    )
    workdir = tempfile.TemporaryDirectory(prefix="jiasu-optimize-")
    from jiasu.ui.progress import TaskProgress

    with TaskProgress(enabled=progress) as bar:
        found = search(
            source, inputs, labels, calibration, config, Path(workdir.name), progress=bar
        )
    return Optimized(found.result, _predictor(found, Path(workdir.name)), found.winner, workdir)


def _signature(examples: Any, spec: str | InputSignature | None) -> InputSignature | None:
    """The signature the user gave: from example inputs or a spec (None: neither)."""
    if spec is not None and examples is not None:
        raise ConfigError("pass example_inputs or input_spec, not both")
    if isinstance(spec, InputSignature):
        return spec
    if isinstance(spec, str):
        return InputSignature.parse(spec)
    if examples is not None:
        return InputSignature.from_examples(examples)
    return None  # a file model says its own, or the data will


def _data_signature(data: Any, label_column: str | None) -> InputSignature:
    if isinstance(data, (str, os.PathLike)):
        from jiasu.data.inputs import infer_signature

        return infer_signature(Path(data), label_column=label_column)
    return InputSignature.from_examples(data)


def _data(
    data: Any, labels: Any, signature: InputSignature | None, label_column: str | None
) -> tuple[Any, np.ndarray | None]:
    """The validation inputs and labels: arrays as given, or read from a file."""
    if isinstance(data, (str, os.PathLike)):
        from jiasu.data.inputs import read_inputs

        read = read_inputs(Path(data), signature, label_column=label_column)
        if labels is not None and read.labels is not None:
            raise ConfigError(f"{data} holds labels and labels were passed too; pass one")
        return read.arrays, read.labels if labels is None else np.asarray(labels)
    return data, None if labels is None else _numpy(labels)


def _numpy(value: Any) -> np.ndarray:
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _source(
    model: nn.Module | str | os.PathLike[str], signature: InputSignature | None, output: str | None
) -> ModelSource:
    if isinstance(model, nn.Module):
        if signature is None:
            raise ConfigError(
                "jiasu needs to know what the model takes; pass example_inputs (a tensor, a "
                "tuple or a dict of them), input_spec, or data"
            )
        from jiasu.infer.model_source import check_source

        source = ModelSource("torch", signature, type(model).__name__, model.eval(), output=output)
        check_source(source, type(model).__name__, given=True)
        return source
    if isinstance(model, (str, os.PathLike)):
        from jiasu.infer.model_source import resolve_model

        return resolve_model(str(model), signature=signature, output=output)
    raise ConfigError(
        f"model is a {type(model).__name__}; pass a torch nn.Module or the path of an .onnx "
        "file, a .keras file or a jiasu model directory"
    )


def _predictor(found: Any, workdir: Path) -> Predictor:
    """The winner loaded from its artifact (as deployed); a model that cannot be written
    as one (a Python object torch.export cannot capture) runs in this process instead."""
    result: OptimizeResult = found.result
    folder = workdir / "chosen"
    try:
        save_artifact(
            folder,
            result.chosen.candidate,
            found.winner.save,
            signature=result.signature,
            output=result.output,
            task=result.task.to_dict(),
            report={},
        )
        return load(folder)
    except ConfigError:
        meta = {"candidate": result.chosen.candidate.to_dict(), "output": result.output}
        return Predictor(folder, found.winner.runner, meta, result.signature)
