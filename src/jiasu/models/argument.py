"""The MODEL argument, parsed once for every command that takes one.

MODEL may be:

- a model directory written by ``jiasu train --save`` (``model.json`` + ``model.safetensors``);
- an ``.onnx`` file;
- a ``.keras`` file (Keras 3; loaded through `jiasu.integrations.keras`);
- a registry name (``mlp``, ``cnn``, ...);
- ``package.module:factory``: a function of the user's code that returns the model. Parsing
  never imports it; building the model does, through `jiasu.core.imports`.

`parse_model_argument` only classifies the text and checks what it can without running
anything (the file or folder exists, weights are not given twice); each command builds the
model its way. Every problem is one sentence naming the argument and the fix.

>>> parse_model_argument("mlp").kind, parse_model_argument("mypkg.nets:small").name
('registry', 'mypkg.nets:small')
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Collection
from pathlib import Path
from typing import Literal, get_args

from jiasu.core.errors import CheckpointError, ConfigError
from jiasu.core.imports import is_qualified_name
from jiasu.models.registry import MODELS
from jiasu.models.saved import is_model_dir

ModelKind = Literal["directory", "onnx", "keras", "registry", "factory"]
MODEL_KINDS: tuple[ModelKind, ...] = get_args(ModelKind)

# How each kind is named in a sentence: "X is <kind>", "MODEL must be <kind>, ...".
KIND_NAMES: dict[ModelKind, str] = {
    "directory": "a model directory",
    "onnx": "an .onnx file",
    "keras": "a .keras file",
    "registry": "a registry model",
    "factory": "package.module:factory",
}
HOLDS_WEIGHTS: frozenset[ModelKind] = frozenset({"directory", "onnx", "keras"})


@dataclasses.dataclass(frozen=True)
class ModelArgument:
    """What a MODEL argument names.

    `path` is set for a directory, an .onnx or a .keras file; `name` for a registry name
    or a ``package.module:factory``; `weights` is the weights file given with it, if any.
    """

    kind: ModelKind
    text: str  # the argument as given
    path: Path | None = None
    name: str | None = None
    weights: Path | None = None

    @property
    def holds_weights(self) -> bool:
        """Whether the model comes with its weights (else it is built untrained)."""
        return self.kind in HOLDS_WEIGHTS


def parse_model_argument(
    text: str,
    *,
    weights: Path | None = None,
    accept: Collection[ModelKind] = MODEL_KINDS,
) -> ModelArgument:
    """Classify `text`; raise `ConfigError` (or `CheckpointError`) in one sentence otherwise.

    `accept` lists the kinds the caller takes; any other is refused, naming the kinds it
    takes. A registry name wins over a folder of the same name unless the caller takes
    model directories and the folder is one. `weights` may come only with a registry name
    or a factory: the other kinds hold their weights.
    """
    argument = _classify(text, accept)
    if argument.kind not in accept:
        raise ConfigError(f"{text} is {KIND_NAMES[argument.kind]}; {_must_be(accept)}")
    if weights is not None and argument.holds_weights:
        raise ConfigError(f"{text} already holds its weights; drop --weights")
    return dataclasses.replace(argument, weights=weights)


def _classify(text: str, accept: Collection[ModelKind]) -> ModelArgument:
    path = Path(text)
    suffix = path.suffix.lower()
    if "directory" in accept and path.is_dir() and is_model_dir(path):
        return ModelArgument("directory", text, path=path)
    if suffix in (".keras", ".onnx"):
        kind: ModelKind = "keras" if suffix == ".keras" else "onnx"
        if not path.is_file():
            problem = "is a folder, not a file" if path.is_dir() else "does not exist"
            what = "Keras model file" if kind == "keras" else "ONNX file"
            raise ConfigError(f"{what} {text} {problem}; check the path")
        return ModelArgument(kind, text, path=path)
    if text in MODELS:
        return ModelArgument("registry", text, name=text)
    if is_qualified_name(text):
        return ModelArgument("factory", text, name=text)
    if path.is_dir():
        if is_model_dir(path):
            return ModelArgument("directory", text, path=path)
        if "directory" not in accept:
            raise ConfigError(f"{text} is a folder; {_must_be(accept)}")
        raise CheckpointError(
            f"{path} is a folder but not a jiasu model directory (no model.json); "
            "create one with `jiasu train --save DIR`"
        )
    close = difflib.get_close_matches(text, MODELS.names(), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    registry = f"a registry model ({', '.join(MODELS.names())})"
    kinds = [registry if k == "registry" else KIND_NAMES[k] for k in MODEL_KINDS if k in accept]
    raise ConfigError(
        f"unknown model {text!r}{hint}: neither {_either(kinds, 'nor')}; check the argument"
    )


def _must_be(accept: Collection[ModelKind]) -> str:
    """'MODEL must be a .keras file, a registry model or package.module:factory here'."""
    return f"MODEL must be {_either([KIND_NAMES[k] for k in MODEL_KINDS if k in accept])} here"


def _either(names: list[str], last: str = "or") -> str:
    """'a, b or c' (or 'a, b nor c')."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {last} {names[-1]}"
