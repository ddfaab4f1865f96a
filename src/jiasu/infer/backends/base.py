"""What every inference backend is: an exporter plus a runtime, chosen by name.

A backend proposes `Candidate`s (one configuration each: its settings and how exact it
is), builds each into a `Built` (a runner plus the cost of building it and a way to save
it), and loads a saved candidate back for `jiasu.load`. Every runner is called the same
way: ``runner(*inputs)`` with one C-contiguous numpy array per input of the model's
`InputSignature`, in order and in its dtypes, each (B, ...); it returns the model's
selected output as a float32 array (B, ...). So the verifier, the benchmark and the
predictor treat all runtimes and all models alike.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from torch import nn

from jiasu.core.errors import CheckpointError, ConfigError, one_line
from jiasu.core.extras import require
from jiasu.core.signature import InputSignature
from jiasu.core.task import Task
from jiasu.core.technique import Applicability, Exactness

# runner(*inputs): one (B, ...) array per input, in signature order → (B, ...) float32
Runner = Callable[..., np.ndarray]
SourceKind = Literal["torch", "onnx"]


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One configuration to try: backend name, its settings, and how exact it claims to be."""

    name: str  # unique in a run, e.g. "onnxruntime-int8-static-entropy"
    backend: str  # registry name of the backend that builds it
    settings: Mapping[str, Any]
    exactness: Exactness
    # Proposed but not to be built, and why (e.g. a method the runtime's makers advise
    # against for this kind of model): recorded as skipped with this reason.
    skip: str | None = None
    # The candidate whose outputs this one reproduces bit for bit (it differs only in how
    # idle threads wait, say): where that one was verified, its verification stands for
    # this one's, and the search saves a pass over the validation inputs.
    same_outputs_as: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "backend": self.backend,
            "settings": dict(self.settings),
            "exactness": self.exactness.value,
        }


@dataclasses.dataclass(frozen=True)
class ModelSource:
    """The model to accelerate: a PyTorch module or an ONNX file, and its input signature.

    `module` is the user's module as a `jiasu.models.adapter.CallAdapter` (positional
    inputs in signature order, the selected output tensor out); `output` names that output
    (None: ``logits`` where there is one, else the first tensor).

    `reference` says how the module was built, for a torch artifact that cannot hold its
    graph (torch.export failed): ``{"kind": "registry", "spec": {...}}``, ``{"kind":
    "factory", "factory": "pkg.mod:fn"}`` (loading it then needs ``trust_code``) or
    ``{"kind": "keras", "path": ...}`` (the file is copied into the artifact); None for a
    module built in the caller's own code.
    """

    kind: SourceKind
    signature: InputSignature
    description: str
    module: nn.Module | None = None
    onnx_path: Path | None = None
    reference: Mapping[str, Any] | None = None
    output: str | None = None
    task: Task | None = None  # what the model was trained for, where known (a model dir)

    def __post_init__(self) -> None:
        if self.kind == "torch" and self.module is None:
            raise ValueError("a torch model source needs its module")
        if self.kind == "onnx" and self.onnx_path is None:
            raise ValueError("an onnx model source needs its file")
        if self.module is not None:
            from jiasu.models.adapter import adapt

            object.__setattr__(self, "module", adapt(self.module, self.signature, self.output))

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        """The per-sample shape of a one-float-input model (an image or feature model)."""
        return self.signature.single_float_shape()


@dataclasses.dataclass
class BuildContext:
    """What backends share while building the candidates of one run."""

    source: ModelSource
    workdir: Path  # scratch folder for exported and quantized files
    threads: int  # intra-op threads for every runtime, so the comparison is fair
    batch_size: int  # the batch the run measures (hints latency vs throughput)
    target: Literal["latency", "throughput"]
    # One (N, ...) array per input, for static quantization; None: no data was given, so
    # there is nothing to calibrate on (int8 needs the user's data).
    calibration: tuple[np.ndarray, ...] | None
    # A large model (at least LARGE_MODEL_PARAMETERS weights) gets the candidates that pay
    # on large models only: one static-int8 calibration method instead of three, no
    # TorchScript-frozen variant and no spinning one beyond batch 1 (each costs minutes to
    # build and verify on a BERT-base at batch 32, and measured no gain there), so a
    # search finishes in minutes.
    large: bool = False
    named: frozenset[str] = frozenset()  # the backends the user named (tried whatever the size)
    _onnx: tuple[Path | None, float, str] | None = None  # cached (path, export_s, error)
    onnx_export: dict[str, str] = dataclasses.field(default_factory=dict)  # how, for reports
    # torch.export captures of the source module, by whether BN was folded first; the
    # reason as a string where the capture failed.
    _programs: dict[bool, Any] = dataclasses.field(default_factory=dict)
    _graphs: dict[bool, Any] = dataclasses.field(default_factory=dict)
    _shared: dict[str, Any] = dataclasses.field(default_factory=dict)  # see `shared`

    @property
    def signature(self) -> InputSignature:
        return self.source.signature

    @functools.cached_property
    def attention(self) -> bool:
        """Whether the model computes attention (a transformer): a torch module with an
        attention layer, or an ONNX graph with Softmax and MatMul."""
        module = self.source.module
        if module is not None:
            return any("attention" in type(m).__name__.lower() for m in module.modules())
        onnx = require("onnx", extra="onnx", purpose="reading ONNX models")
        assert self.source.onnx_path is not None
        graph = onnx.load(str(self.source.onnx_path), load_external_data=False).graph
        return {"Softmax", "MatMul"} <= {n.op_type for n in graph.node}

    def program(self, fold_bn: bool = False) -> Any:
        """The source module (batch norms folded first if `fold_bn`) captured by
        torch.export, once per run; the reason as a string where the capture failed."""
        if fold_bn not in self._programs:
            from jiasu.infer.export import NotExportable, capture

            module = self.source.module
            assert module is not None
            try:
                if fold_bn:
                    from jiasu.infer.backends.torch_optimized import fold_batchnorm

                    module = fold_batchnorm(module)
                self._programs[fold_bn] = capture(module, self.signature)
            except NotExportable as exc:
                self._programs[fold_bn] = str(exc)
            except Exception as exc:  # BN folding needs an fx-traceable model
                self._programs[fold_bn] = f"capture failed: {one_line(exc)}"
        return self._programs[fold_bn]

    def onnx_file(self) -> tuple[Path, float]:
        """The model as an ONNX file with its symbolic axes dynamic, exported once per run.

        Returns the path and the seconds the export took (0 for an ONNX source). An
        export failure is cached, so every ONNX-based candidate fails with the same reason.
        """
        if self.source.kind == "onnx":
            assert self.source.onnx_path is not None
            return self.source.onnx_path, 0.0
        if self._onnx is None:
            from jiasu.infer.export import export_onnx

            assert self.source.module is not None
            start = time.perf_counter()
            try:
                exported = export_onnx(
                    self.source.module,
                    self.signature,
                    self.workdir / "model.onnx",
                    program=self.program(),
                )
                self.onnx_export.update(exported.to_dict())
                self._onnx = (exported.path, time.perf_counter() - start, "")
            except Exception as exc:  # recorded on every ONNX-based candidate
                self._onnx = (None, 0.0, f"ONNX export failed: {one_line(exc)}")
        found, seconds, error = self._onnx
        if found is None:
            raise ExportFailed(error)
        return found, seconds

    def shared(self, key: str, make: Callable[[], Any]) -> tuple[Any, float]:
        """`make()`, made once per run for every candidate that asks for `key` (e.g. the
        ONNX file converted to a runtime's own graph), with the seconds it took: 0 where
        an earlier candidate made it. Callers must not modify what they get."""
        if key in self._shared:
            return self._shared[key], 0.0
        value, seconds = timed(make)
        self._shared[key] = value
        return value, seconds

    def needs_calibration(self) -> tuple[np.ndarray, ...]:
        """The calibration inputs; without the user's data, static int8 cannot be built.
        A large model calibrates on at most `LARGE_MODEL_CALIBRATION` of them."""
        if self.calibration is None:
            raise ExportFailed(
                "static int8 needs calibration data, and none was given; pass your data"
            )
        if self.large:
            return tuple(a[:LARGE_MODEL_CALIBRATION] for a in self.calibration)
        return self.calibration


LARGE_MODEL_PARAMETERS = 20_000_000  # ResNet-50 has 25.6 M, DistilBERT 66 M, BERT-base 110 M
LARGE_MODEL_CALIBRATION = 128  # samples; NNCF's own default subset is 300


def count_parameters(source: ModelSource) -> int:
    """The weights in a model: its parameters and buffers, or an ONNX file's initializers."""
    if source.module is not None:
        tensors = [*source.module.parameters(), *source.module.buffers()]
        return sum(t.numel() for t in tensors)
    onnx = require("onnx", extra="onnx", purpose="reading ONNX models")
    assert source.onnx_path is not None
    model = onnx.load(str(source.onnx_path), load_external_data=False)
    total = 0
    for init in model.graph.initializer:
        count = 1
        for dim in init.dims:
            count *= int(dim)
        total += count
    return total


class ExportFailed(RuntimeError):
    """The shared ONNX export failed; the message is the one-line reason."""


@dataclasses.dataclass(frozen=True)
class Built:
    """A candidate ready to run.

    `export_s`: exporting, converting and quantizing; `compile_s`: creating the session or
    compiling (for torch.compile, the first calls that trigger compilation).
    `save(directory)` writes the files `load` needs and returns their JSON-able description.
    """

    runner: Runner
    export_s: float
    compile_s: float
    save: Callable[[Path], dict[str, Any]]


class Backend(ABC):
    """An exporter plus a runtime. Subclasses are small and final; registered by `name`."""

    name: ClassVar[str]
    summary: ClassVar[str]
    module: ClassVar[str | None] = None  # optional package to import, e.g. "onnxruntime"
    extra: ClassVar[str] = ""  # the jiasu extra that installs it
    sources: ClassVar[frozenset[str]] = frozenset({"torch"})

    def available(self, source: ModelSource) -> Applicability:
        """Whether this backend can run here on this kind of model, with the reason if not."""
        if source.kind not in self.sources:
            kinds = " or ".join(sorted(self.sources))
            return Applicability.no(f"needs a {kinds} model; this one is {source.kind}")
        if self.module is not None:
            try:
                require(self.module, extra=self.extra, purpose=f"the {self.name} backend")
            except ImportError as exc:
                return Applicability.no(str(exc))
        return Applicability.yes()

    @abstractmethod
    def candidates(self, ctx: BuildContext) -> list[Candidate]:
        """The configurations worth trying for this model, target and machine."""

    def why_none(self, ctx: BuildContext) -> str:
        """Why `candidates` proposed nothing for this run (for the report)."""
        return "no configuration of this backend applies to this model"

    @abstractmethod
    def build(self, candidate: Candidate, ctx: BuildContext) -> Built:
        """Export/convert/compile `candidate`; exceptions are recorded as a failed candidate."""

    def shared_cpu(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        """`settings` for a runner that shares the CPU with other busy threads (a server's
        event loop and its other workers) rather than running alone as it was measured;
        the default keeps them."""
        return dict(settings)

    @abstractmethod
    def load(
        self,
        directory: Path,
        files: Mapping[str, Any],
        settings: Mapping[str, Any],
        signature: InputSignature,
        *,
        trust_code: bool = False,
    ) -> Runner:
        """Rebuild the runner that `Built.save` wrote into `directory`.

        File entries are read through `artifact_file`. Nothing named in `files` is
        imported unless `trust_code` is set (the user's explicit opt-in).
        """


def artifact_file(directory: Path, files: Mapping[str, Any], key: str) -> Path:
    """The file that entry `key` of an artifact's ``files`` names, which must lie inside
    `directory`: an absolute path, a ``..`` component or a link leading out is refused."""
    name = files.get(key)
    if not isinstance(name, str) or not name:
        raise CheckpointError(f"artifact {directory} has no file entry {key!r}; run optimize again")
    relative = Path(name)
    folder = directory.resolve()
    path = (folder / relative).resolve()
    escapes = relative.is_absolute() or relative.drive or ".." in relative.parts
    if escapes or folder not in path.parents:
        raise CheckpointError(
            f"artifact {directory} names file {name!r} outside its folder, which jiasu refuses "
            "to read; an artifact's files must lie inside it, so run optimize again"
        )
    if not path.is_file():
        raise CheckpointError(f"artifact file {directory / name} is missing; run optimize again")
    return path


def setting(settings: Mapping[str, Any], key: str, allowed: tuple[Any, ...]) -> Any:
    """Read a setting that must be one of `allowed` (a saved artifact may be hand-edited)."""
    value = settings.get(key, allowed[0])
    if value not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        raise ConfigError(f"setting {key}={value!r} is not supported; use one of {choices}")
    return value


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """Call `fn` and return its result with the seconds it took."""
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def split_batch_runner(run: Runner, parts: int) -> Runner:
    """`run` on up to `parts` slices of each batch at once, from a pool of Python threads;
    the outputs concatenated in order. `run` must be thread-safe and release the GIL."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=parts, thread_name_prefix="jiasu-split")

    def split_run(*batch: np.ndarray) -> np.ndarray:
        rows = len(batch[0])
        if rows < 2:
            return run(*batch)
        bounds = np.array_split(np.arange(rows), min(parts, rows))
        chunks = [tuple(a[i[0] : i[-1] + 1] for a in batch) for i in bounds]  # contiguous views
        return np.concatenate(list(pool.map(lambda c: run(*c), chunks)), axis=0)

    return split_run
