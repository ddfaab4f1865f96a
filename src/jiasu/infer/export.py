"""Capturing a torch model as a graph (torch.export) and exporting it to ONNX.

Every model is exported through its `CallAdapter` (positional inputs in signature order,
one output tensor), with every symbolic axis of the signature dynamic
(``torch.export.Dim.DYNAMIC``: torch infers the range, e.g. a sequence of at most 512
for BERT's position embeddings), so one file serves batch 1 and batch 256.

ONNX goes through the dynamo-based exporter (``torch.onnx.export(program, dynamo=True)``)
from the captured `torch.export` program. Only where that fails does the deprecated
TorchScript exporter run, and the artifact and report record why (`OnnxExport.note`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from jiasu.core.atomic import atomic_write_bytes
from jiasu.core.extras import require
from jiasu.core.signature import InputSignature, InputSpec

OPSET = 18
OUTPUT_NAME = "output"


class NotExportable(RuntimeError):
    """torch.export could not capture the model; the message says why, in one line."""


@dataclasses.dataclass(frozen=True)
class OnnxExport:
    """An exported ONNX file and how it was made."""

    path: Path
    exporter: str  # "dynamo" or "torchscript"
    note: str = ""  # why the TorchScript exporter was used, where it was

    def to_dict(self) -> dict[str, str]:
        return {"exporter": self.exporter, **({"fallback_reason": self.note} if self.note else {})}


@contextlib.contextmanager
def quiet_export() -> Iterator[None]:
    """The exporters' progress lines, warnings and log notes are torch's, not the user's."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


def example_inputs(signature: InputSignature) -> tuple[torch.Tensor, ...]:
    """Made-up inputs for capture: a batch of 2 or more (so 1 is not special-cased), and
    sizes along symbolic axes that no other axis has (`InputSignature.example_sizes`)."""
    return tuple(torch.from_numpy(a) for a in signature.generate(None))


def dynamic_shapes(
    signature: InputSignature,
    *,
    named: bool = True,
    bounds: dict[str, dict[str, int]] | None = None,
) -> dict[str, tuple[dict[int, Any], ...]]:
    """Every symbolic axis dynamic, keyed for `CallAdapter.forward(*inputs)`.

    `named`: one ``torch.export.Dim`` per symbol, shared by every input that names it (so
    the batch, or a sequence, is one axis across inputs, and the ONNX file says ``[B, S]``);
    otherwise ``Dim.DYNAMIC`` on each axis, which lets torch infer bounds a named Dim must
    state (BERT's sequence is at most its 512 positions) but ties no axes together.
    `bounds` gives a named Dim its ``min``/``max`` (as torch suggests them).
    """
    bounds = bounds or {}
    dims = {s: torch.export.Dim(s, **bounds.get(s, {})) for s in signature.symbols} if named else {}

    def axes(spec: InputSpec) -> dict[int, Any]:
        return {
            axis: dims[d] if named else torch.export.Dim.DYNAMIC
            for axis, d in enumerate(spec.shape)
            if isinstance(d, str)
        }

    return {"inputs": tuple(axes(spec) for spec in signature.inputs)}


def capture(module: nn.Module, signature: InputSignature) -> Any:
    """`module` (a `CallAdapter`, eval mode) captured by ``torch.export`` for inputs of
    any size along the signature's symbolic axes; `NotExportable` if it cannot be.

    Named dimensions are tried first (a recurrent model's time axis is captured only
    that way); where the model bounds an axis (BERT's positions), again with the bounds
    torch suggests; ``Dim.DYNAMIC`` axes last.
    """
    attempts: list[tuple[bool, dict[str, dict[str, int]]]] = [(True, {})]
    errors: list[Exception] = []
    while attempts:
        named, bounds = attempts.pop(0)
        try:
            with quiet_export(), torch.no_grad():
                return torch.export.export(
                    module.eval(),
                    example_inputs(signature),
                    dynamic_shapes=dynamic_shapes(signature, named=named, bounds=bounds),
                    strict=False,
                )
        except Exception as exc:
            errors.append(exc)
            suggested = _suggested_bounds(str(exc), signature.symbols)
            if named and not bounds and suggested:
                attempts.append((True, suggested))
            elif named:
                attempts.append((False, {}))
    raise NotExportable(f"torch.export failed: {short(errors[-1])}")


_SUGGESTION = re.compile(r"(\w+) = Dim\('(\w+)'((?:, (?:min|max)=\d+)*)\)")


def _suggested_bounds(message: str, symbols: tuple[str, ...]) -> dict[str, dict[str, int]]:
    """torch.export's "Suggested fixes" (``S = Dim('S', max=512)``) for our symbols."""
    found: dict[str, dict[str, int]] = {}
    for name, _, args in _SUGGESTION.findall(message):
        if name in symbols:
            found[name] = {k: int(v) for k, v in re.findall(r"(min|max)=(\d+)", args)}
    return found


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def short(exc: BaseException) -> str:
    """The one line of an exporter's error that says what failed: torch's exporters open
    with generic advice and name the cause under "Exception summary"."""
    text = [_ANSI.sub("", line).strip() for line in str(exc).strip().splitlines()]
    text = [line for line in text if line]
    causes = [line for line in text if line.startswith("<class '")]
    if causes:  # "<class '...DispatchError'>: No ONNX function found for ... aten.cummax"
        name, _, message = causes[0].partition(">: ")
        return f"{name.rsplit('.', 1)[-1].rstrip(chr(39))}: {message[:200]}"
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def export_onnx(
    module: nn.Module,
    signature: InputSignature,
    path: Path,
    *,
    program: Any = None,
    opset: int = OPSET,
) -> OnnxExport:
    """Export `module` to `path`: inputs named as the signature says, its symbolic axes
    dynamic, one output ``output`` (a module that is not yet a `CallAdapter` is adapted:
    its default output, `select_output`).

    `program` is the module's `capture`, or a `NotExportable` message where capture
    failed (then the TorchScript exporter is tried, and the note says why).
    """
    from jiasu.models.adapter import adapt

    onnx = require("onnx", extra="onnx", purpose="exporting to ONNX")
    module = adapt(module, signature)
    if program is None:
        try:
            program = capture(module, signature)
        except NotExportable as exc:
            program = str(exc)
    note = ""
    data: bytes | None = None
    if not isinstance(program, str):
        try:
            data = _dynamo(program, signature, opset)
        except Exception as exc:
            note = f"the dynamo exporter failed ({short(exc)})"
    else:
        note = f"the dynamo exporter needs torch.export, which failed ({program})"
    exporter = "dynamo"
    if data is None:
        data, exporter = _torchscript(module, signature, opset, note), "torchscript"
    onnx.checker.check_model(onnx.load_from_string(data))
    atomic_write_bytes(path, data)
    return OnnxExport(path, exporter, note)


def _dynamo(program: Any, signature: InputSignature, opset: int) -> bytes:
    with quiet_export():
        onnx_program = torch.onnx.export(
            program,
            example_inputs(signature),
            None,
            dynamo=True,
            input_names=list(signature.names),
            output_names=[OUTPUT_NAME],
            opset_version=opset,
            optimize=True,
            verbose=False,
        )
        assert onnx_program is not None
        proto = onnx_program.model_proto
    _name_axes(proto, signature)
    data: bytes = proto.SerializeToString()
    return data


def _name_axes(proto: Any, signature: InputSignature) -> None:
    """Rename the exporter's symbols (``s21``) to the signature's (``B``, ``S``) wherever
    they appear in the graph's declared shapes, so the file says ``[B, S]``."""
    names: dict[str, str] = {}
    for spec, value in zip(signature.inputs, proto.graph.input, strict=False):
        for dim, declared in zip(spec.shape, value.type.tensor_type.shape.dim, strict=False):
            if isinstance(dim, str) and declared.dim_param:
                names.setdefault(declared.dim_param, dim)
    if not names:
        return
    values = [*proto.graph.input, *proto.graph.output, *proto.graph.value_info]
    for value in values:
        for declared in value.type.tensor_type.shape.dim:
            if declared.dim_param in names:
                declared.dim_param = names[declared.dim_param]


def _torchscript(module: nn.Module, signature: InputSignature, opset: int, why: str) -> bytes:
    axes = {
        spec.name: {i: str(d) for i, d in enumerate(spec.shape) if isinstance(d, str)}
        for spec in signature.inputs
    }
    axes[OUTPUT_NAME] = {0: signature.batch_symbol or "B"}
    buffer = io.BytesIO()
    try:
        with quiet_export():
            torch.onnx.export(
                module.eval(),
                example_inputs(signature),
                buffer,  # type: ignore[arg-type]  # file-like objects are accepted
                dynamo=False,
                opset_version=min(opset, 17),
                input_names=list(signature.names),
                output_names=[OUTPUT_NAME],
                dynamic_axes=axes,
                do_constant_folding=True,
            )
    except Exception as exc:
        raise RuntimeError(f"{why}; the TorchScript exporter failed too ({short(exc)})") from None
    return buffer.getvalue()
