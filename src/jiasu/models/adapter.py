"""A model called the way its signature says, with one output tensor out.

Exporters and runtimes want a function of positional tensors returning one tensor; a
user's model may take keyword arguments (``input_ids=..., attention_mask=...``) and return
a tuple, a dict or a Hugging Face ``ModelOutput``. `CallAdapter` bridges the two, so every
backend, exporter and verifier sees ``forward(*inputs) -> tensor``.

Outputs are named: a tensor is ``output``; a tuple or list's items ``0``, ``1``, …; a
mapping's (and a ``ModelOutput``'s) by their keys. Without a name the output verified and
returned is ``logits`` where there is one, else the first tensor.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from jiasu.core.errors import ConfigError
from jiasu.core.signature import InputSignature


def output_names(outputs: Any) -> list[str]:
    """The names of the tensors among a model's outputs, in order."""
    return [name for name, _ in _tensors(outputs)]


def select_output(outputs: Any, name: str | None = None) -> torch.Tensor:
    """The output tensor called `name` (default: ``logits``, else the first tensor)."""
    found = _tensors(outputs)
    if not found:
        raise ConfigError(
            f"the model returned {type(outputs).__name__} with no tensor in it; jiasu "
            "verifies and serves a tensor output, so return one (e.g. the logits)"
        )
    if name is None:
        named = dict(found)
        return named["logits"] if "logits" in named else found[0][1]
    for key, tensor in found:
        if key == name:
            return tensor
    raise ConfigError(
        f"the model has no output {name!r}; its outputs are {', '.join(k for k, _ in found)}"
    )


def default_output_name(outputs: Any) -> str:
    names = output_names(outputs)
    if not names:
        select_output(outputs)  # raises the one-sentence error
    return "logits" if "logits" in names else names[0]


def _tensors(outputs: Any) -> list[tuple[str, torch.Tensor]]:
    if isinstance(outputs, torch.Tensor):
        return [("output", outputs)]
    if isinstance(outputs, Mapping):  # dicts and transformers' ModelOutput
        return [(str(k), v) for k, v in outputs.items() if isinstance(v, torch.Tensor)]
    if isinstance(outputs, list | tuple):
        return [(str(i), v) for i, v in enumerate(outputs) if isinstance(v, torch.Tensor)]
    return []


class CallAdapter(nn.Module):
    """`module` called with its inputs as `signature` says, returning output `output`.

    ``forward(*inputs)`` takes the inputs positionally in signature order, whatever the
    model's own calling convention.
    """

    def __init__(
        self, module: nn.Module, signature: InputSignature, output: str | None = None
    ) -> None:
        super().__init__()
        self.module = module
        self.names = signature.names
        self.keyword = signature.call == "keyword"
        self.output = output

    def replaced(self, module: nn.Module) -> CallAdapter:
        """The same call around another module (e.g. a transformed copy of this one's)."""
        other = CallAdapter.__new__(CallAdapter)
        nn.Module.__init__(other)
        other.module, other.names, other.keyword, other.output = (
            module, self.names, self.keyword, self.output,
        )  # fmt: skip
        return other.eval()

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        if self.keyword:
            result = self.module(**dict(zip(self.names, inputs, strict=True)))
        else:
            result = self.module(*inputs)
        return select_output(result, self.output)


def adapt(module: nn.Module, signature: InputSignature, output: str | None = None) -> nn.Module:
    """`module` as a `CallAdapter` in eval mode (an adapter is returned as it is)."""
    if isinstance(module, CallAdapter):
        return module
    return CallAdapter(module, signature, output).eval()


def unwrap(module: nn.Module) -> nn.Module:
    """The user's module inside an adapter (for its state dict and reference)."""
    return module.module if isinstance(module, CallAdapter) else module
