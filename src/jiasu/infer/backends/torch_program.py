"""A torch model saved as its graph, so that loading it needs no Python code from anywhere.

At save time the module is captured with ``torch.export`` and its graph is written as a
list of ATen operator calls in plain JSON (``model.graph.json``), its weights and constants
as safetensors. Loading builds a ``torch.fx`` graph from that list: every operator must be
an ATen operator (or one of a few shape operators from ``operator``) that neither reads
nor writes files, every argument a number, string, list or a tensor of the graph, so a
hostile file can name nothing else to run, and nothing is unpickled.

torch's own file (``torch.export.save``, .pt2) is not what jiasu loads: in torch 2.13 its
loader can run code from the file — it unpickles sample inputs with ``weights_only=False``
when the safe load fails, unpickles weights and constants marked as pickled, loads
AOTInductor shared libraries, evaluates symbolic-shape strings with ``sympy.sympify``
(``eval``), imports the module that a pytree ``defaultdict`` context names, and turns the
saved guard strings into Python code.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from jiasu.core.atomic import atomic_write_bytes
from jiasu.core.errors import CheckpointError
from jiasu.core.signature import InputSignature
from jiasu.infer.backends.base import Runner, artifact_file
from jiasu.infer.export import NotExportable, short

GRAPH_FILE = "model.graph.json"
WEIGHTS_FILE = "model.safetensors"
FORMAT = "jiasu-torch-graph"
FORMAT_VERSION = 1
MAX_NODES = 100_000

# The few Python operators torch.export emits for shapes (batch size × features) and tuples.
OPERATORS: dict[str, Callable[..., Any]] = {
    f"operator.{name}": getattr(operator, name)
    for name in ("getitem", "add", "sub", "mul", "floordiv", "mod", "neg", "truediv")
}
_OPERATOR_NAMES = {fn: name for name, fn in OPERATORS.items()}
_BITWISE = ("__and__", "__or__", "__xor__")  # ATen's bitwise operators (attention masks)
MEMORY_FORMATS = ("contiguous_format", "channels_last", "channels_last_3d", "preserve_format")


def export_graph(program: Any) -> tuple[dict[str, Any], list[torch.Tensor]]:
    """A captured program (`jiasu.infer.export.capture`) as (graph description, its tensors).

    Raises `NotExportable` when the graph holds anything but ATen operators on tensors
    (custom operators, control flow, mutated buffers, objects).
    """
    if isinstance(program, str):  # the capture failed: its reason
        raise NotExportable(program)
    tensors, index = _graph_tensors(program)
    graph = program.graph_module.graph
    nodes: list[dict[str, Any]] = []
    refs: dict[torch.fx.Node, dict[str, int]] = {}
    output: Any = None
    for node in graph.nodes:
        if node.op == "placeholder":
            refs[node] = index[node.name]
        elif node.op == "call_function":
            nodes.append(
                {
                    "op": _target_name(node.target),
                    "args": [_encode(a, refs) for a in node.args],
                    "kwargs": {k: _encode(v, refs) for k, v in node.kwargs.items()},
                }
            )
            refs[node] = {"node": len(nodes) - 1}
        elif node.op == "output":
            (outputs,) = node.args
            if not isinstance(outputs, list | tuple) or len(outputs) != 1:
                raise NotExportable("the model returns more than one tensor")
            output = _encode(outputs[0], refs)
        else:
            raise NotExportable(f"the exported graph has a {node.op} node ({node.target})")
    description = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "torch": torch.__version__,
        "tensors": len(tensors),
        "inputs": sum(1 for ref in index.values() if "input" in ref),
        "nodes": nodes,
        "output": output,
    }
    return description, tensors


def _graph_tensors(program: Any) -> tuple[list[torch.Tensor], dict[str, dict[str, int]]]:
    """The lifted tensors (weights, buffers, constants) in placeholder order, and a map
    from placeholder name to its reference: ``{"tensor": j}`` or ``{"input": 0}``."""
    from torch.export.graph_signature import InputKind, OutputKind

    signature = program.graph_signature
    if any(spec.kind != OutputKind.USER_OUTPUT for spec in signature.output_specs):
        raise NotExportable("the model changes its buffers when it runs")
    tensors: list[torch.Tensor] = []
    index: dict[str, dict[str, int]] = {}
    inputs = 0
    for spec in signature.input_specs:
        name = spec.arg.name
        if spec.kind == InputKind.USER_INPUT:
            index[name] = {"input": inputs}
            inputs += 1
            continue
        if spec.kind not in (InputKind.PARAMETER, InputKind.BUFFER, InputKind.CONSTANT_TENSOR):
            raise NotExportable(f"the model holds a {spec.kind.name.lower()} input")
        value = program.state_dict.get(spec.target)
        if value is None:
            value = program.constants.get(spec.target)
        if not isinstance(value, torch.Tensor):
            raise NotExportable(f"{spec.target} is not a tensor")
        index[name] = {"tensor": len(tensors)}
        tensors.append(value.detach().cpu().contiguous().clone())
    return tensors, index


def _target_name(target: Any) -> str:
    if isinstance(target, torch._ops.OpOverload) and target.namespace == "aten":
        return f"aten.{target._opname}.{target._overloadname}"
    name = _OPERATOR_NAMES.get(target)
    if name is None:
        raise NotExportable(f"the exported graph calls {target}, which is not an ATen operator")
    return name


def _encode(value: Any, refs: Mapping[torch.fx.Node, dict[str, int]]) -> Any:
    """A graph argument as JSON: numbers, strings, lists, references and torch enums."""
    if isinstance(value, torch.fx.Node):
        return refs[value]
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"float": repr(value)}
    if isinstance(value, list | tuple):
        return [_encode(v, refs) for v in value]
    if isinstance(value, torch.dtype):
        return {"dtype": str(value).removeprefix("torch.")}
    if isinstance(value, torch.device):
        if value.type != "cpu":
            raise NotExportable(f"the exported graph names device {value}")
        return {"device": "cpu"}
    if isinstance(value, torch.memory_format):
        return {"memory_format": str(value).removeprefix("torch.")}
    if isinstance(value, torch.layout):
        if value != torch.strided:
            raise NotExportable(f"the exported graph uses layout {value}")
        return {"layout": "strided"}
    raise NotExportable(f"the exported graph has an argument of type {type(value).__name__}")


def save_graph(
    directory: Path, description: Mapping[str, Any], tensors: list[torch.Tensor]
) -> dict[str, Any]:
    """Write `model.graph.json` and `model.safetensors`; return the artifact's file entries."""
    save_file({f"t{j}": t for j, t in enumerate(tensors)}, str(directory / WEIGHTS_FILE))
    text = json.dumps(description, separators=(",", ":")) + "\n"
    atomic_write_bytes(directory / GRAPH_FILE, text.encode("utf-8"))
    return {"graph": GRAPH_FILE, "weights": WEIGHTS_FILE}


class GraphModel(nn.Module):
    """A loaded graph as a module: its tensors are buffers (so ``.to(memory_format=...)``
    converts them), and calling it runs the graph on the signature's inputs, in order."""

    def __init__(self, graph: torch.fx.GraphModule, tensors: list[torch.Tensor]) -> None:
        super().__init__()
        self.graph_module = graph
        for j, tensor in enumerate(tensors):
            self.register_buffer(f"t{j}", tensor)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.graph_module(*self._buffers.values(), *inputs)

    def runner(self) -> Runner:
        """The fastest call from numpy: the graph with its tensors bound once."""
        graph, tensors = self.graph_module, list(self._buffers.values())

        def run(*batch: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return graph(*tensors, *map(torch.from_numpy, batch)).float().numpy()

        return run


def load_graph(directory: Path, files: Mapping[str, Any], signature: InputSignature) -> GraphModel:
    """Build the module `save_graph` wrote; refuse, with one sentence, anything else."""
    graph_path = artifact_file(directory, files, "graph")
    weights_path = artifact_file(directory, files, "weights")
    try:
        description = json.loads(graph_path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise CheckpointError(
            f"{graph_path} is corrupt ({short(exc)}); run optimize again"
        ) from None
    try:
        stored = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{weights_path} is not a readable safetensors file ({exc})"
        ) from None
    try:
        graph, count = _build(description)
        tensors = [stored[f"t{j}"] for j in range(count)]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(
            f"{graph_path} is not a graph jiasu wrote ({short(exc)}); run optimize again"
        ) from None
    model = GraphModel(graph, tensors).eval()
    _check_runs(model, signature, graph_path)
    return model


def _build(description: Any) -> tuple[torch.fx.GraphModule, int]:
    if not isinstance(description, dict) or description.get("format") != FORMAT:
        raise ValueError("not a jiasu torch graph description")
    if description.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"format version {description.get('format_version')!r}")
    count, nodes = description["tensors"], description["nodes"]
    n_inputs = description.get("inputs", 1)
    for number in (count, n_inputs):
        if not isinstance(number, int) or isinstance(number, bool) or not 0 <= number <= MAX_NODES:
            raise ValueError(f"tensor or input count {number!r}")
    if not isinstance(nodes, list) or len(nodes) > MAX_NODES:
        raise ValueError("nodes is not a list of at most 100000 calls")
    graph = torch.fx.Graph()
    tensors = [graph.placeholder(f"t{j}") for j in range(count)]
    xs = [graph.placeholder(f"x{i}") for i in range(n_inputs)]
    values: list[torch.fx.Node] = []

    def decode(value: Any) -> Any:
        if value is None or isinstance(value, bool | int | float | str):
            return value
        if isinstance(value, list):
            return [decode(v) for v in value]
        if not isinstance(value, dict) or len(value) != 1:
            raise ValueError(f"argument {str(value)[:80]}")
        ((kind, item),) = value.items()
        if kind in ("node", "tensor", "input"):
            pool = {"node": values, "tensor": tensors, "input": xs}[kind]
            if not isinstance(item, int) or isinstance(item, bool) or not 0 <= item < len(pool):
                raise ValueError(f"reference {kind} {item!r}")
            return pool[item]
        return _decode_enum(kind, item)

    for node in nodes:
        if not isinstance(node, dict) or not isinstance(node.get("kwargs", {}), dict):
            raise ValueError(f"node {str(node)[:80]}")
        target = _resolve(node["op"])
        args = decode(node.get("args", []))
        kwargs = {str(k): decode(v) for k, v in node.get("kwargs", {}).items()}
        values.append(graph.call_function(target, tuple(args), kwargs))
    graph.output(decode(description["output"]))
    graph.lint()
    return torch.fx.GraphModule(nn.Module(), graph), count


def _decode_enum(kind: str, item: Any) -> Any:
    if not isinstance(item, str):
        raise ValueError(f"{kind} {item!r}")
    if kind == "float" and item in ("inf", "-inf", "nan"):
        return float(item)
    if kind == "dtype" and isinstance(getattr(torch, item, None), torch.dtype):
        return getattr(torch, item)
    if kind == "device" and item == "cpu":
        return torch.device("cpu")
    if kind == "layout" and item == "strided":
        return torch.strided
    if kind == "memory_format" and item in MEMORY_FORMATS:
        return getattr(torch, item)
    raise ValueError(f"{kind} {item!r}")


def _resolve(name: Any) -> Callable[..., Any]:
    """The operator `name` names: an ATen overload that touches no files, or a shape operator."""
    if not isinstance(name, str):
        raise ValueError(f"operator {name!r}")
    if name in OPERATORS:
        return OPERATORS[name]
    parts = name.split(".")
    if len(parts) != 3 or parts[0] != "aten" or not all(p.isidentifier() for p in parts):
        raise ValueError(f"operator {name!r} is not an ATen operator")
    dunder = parts[1].startswith("__") and parts[1] not in _BITWISE
    if dunder or parts[2].startswith("__"):
        raise ValueError(f"operator {name!r} is not an ATen operator")
    packet = getattr(torch.ops.aten, parts[1], None)
    overload = getattr(packet, parts[2], None) if packet is not None else None
    if not isinstance(overload, torch._ops.OpOverload) or overload.namespace != "aten":
        raise ValueError(f"operator {name!r} is not an ATen operator")
    if any(("file" in a.name or "path" in a.name) for a in overload._schema.arguments):
        raise ValueError(f"operator {name!r} reads or writes files")
    return overload


def _check_runs(model: GraphModel, signature: InputSignature, path: Path) -> None:
    """One call on made-up inputs of batch 1: a graph that does not run, or takes other
    inputs than its artifact says, fails here, not at predict time."""
    inputs = [torch.from_numpy(a) for a in signature.generate(1)]
    try:
        with torch.no_grad():
            out = model(*inputs)
    except Exception as exc:
        raise CheckpointError(
            f"the graph in {path} does not run on inputs {signature.describe()} "
            f"({short(exc)}); run optimize again"
        ) from None
    if not isinstance(out, torch.Tensor) or out.dim() < 1 or out.shape[0] != 1:
        raise CheckpointError(f"the graph in {path} does not return one tensor per sample")
