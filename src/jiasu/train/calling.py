"""How training calls the user's model: found on the first samples, before training.

A model is called ``model(*inputs)`` with the inputs in the data's order. Inputs given by
name (a dict, or a signature whose call is "keyword") go through
`jiasu.models.adapter.CallAdapter`, which passes them by name; so does a model returning
a tuple, a dict or a ``transformers`` ``ModelOutput`` (training uses its ``logits``, else
its first tensor). One forward pass on two real samples, in eval mode without gradients,
finds this out and turns a model that cannot take the data into one sentence.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset, Subset, default_collate

from jiasu.core.errors import ConfigError, one_line
from jiasu.core.signature import InputSignature
from jiasu.models.adapter import CallAdapter, select_output
from jiasu.train.data import Samples
from jiasu.train.loaders import split_batch

PROBE_SAMPLES = 2  # not 1: a model that drops the batch axis shows it at 2


@dataclasses.dataclass(frozen=True)
class CalledModel:
    """What training calls, and what the first samples gave."""

    module: nn.Module  # the user's model, or a CallAdapter around it
    outputs: torch.Tensor  # its outputs for the probe samples (PROBE_SAMPLES, ...)
    targets: torch.Tensor  # every training target (in memory), else the probe samples'
    signature: InputSignature  # the inputs' names, dtypes and shapes
    names: tuple[str, ...] | None  # how dict batches are ordered (None: not by name)


def call_model(model: nn.Module, train: Samples) -> CalledModel:
    """Call `model` on the first samples of `train` and decide how training calls it."""
    from jiasu.data.examples import Examples

    if isinstance(train, Examples):
        if not len(train):
            raise ConfigError("the training data has no samples; pass at least one")
        inputs = tuple(x[:PROBE_SAMPLES] for x in train.inputs)
        targets, signature, by_name = train.targets, train.signature, None
    else:
        raw, targets = _first_raw(train)
        by_name = list(raw) if isinstance(raw, Mapping) else None
        signature = _declared_signature(train) or InputSignature.from_examples(
            raw if by_name is not None else split_batch((raw, targets))[0]
        )
        inputs, targets = split_batch((raw, targets), signature.names if by_name else None)
    keyword = signature.call == "keyword" or by_name is not None
    names = signature.names if keyword else None
    module: nn.Module = CallAdapter(model, signature) if keyword else model
    outputs = _probe(module, inputs, signature)
    if outputs is None:  # positional call, outputs not a tensor: pick them as the adapter does
        module = CallAdapter(model, signature)
        outputs = _probe(module, inputs, signature)
    assert outputs is not None
    module.train(model.training)
    return CalledModel(module, outputs, targets, signature, names)


def _probe(
    module: nn.Module, inputs: tuple[torch.Tensor, ...], signature: InputSignature
) -> torch.Tensor | None:
    """The module's output on `inputs`; None when it is not a tensor (and `module` is no
    adapter yet)."""
    device = next((p.device for p in module.parameters()), torch.device("cpu"))
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            result = module(*(x.to(device) for x in inputs))
    except ConfigError as exc:  # the adapter found no tensor among the outputs
        raise ConfigError(f"the model's outputs do not fit training: {exc}") from None
    except Exception as exc:  # a model that cannot take these inputs fails in its own way
        raise ConfigError(
            f"the model fails on the training inputs {signature.describe()} "
            f"({one_line(exc, limit=200)}); make it take them in this order, or give the "
            "inputs as a dict by the names it takes"
        ) from None
    finally:
        module.train(was_training)
    if not isinstance(result, torch.Tensor):
        if isinstance(module, CallAdapter):
            select_output(result)  # raises the one-sentence error
        return None
    n = inputs[0].shape[0]
    if result.dim() < 1 or result.shape[0] != n:
        raise ConfigError(
            f"the model returned shape {tuple(result.shape)} for a batch of {n}; training "
            "needs one output row per sample (the batch axis first)"
        )
    return result.detach().float()


def _first_raw(data: Samples) -> tuple[Any, torch.Tensor]:
    """The first samples' (inputs as collated, targets): a tensor, tuple or dict of inputs."""
    dataset: Any = data.dataset if isinstance(data, DataLoader) else data
    if isinstance(dataset, IterableDataset):
        if not isinstance(data, DataLoader):
            raise ConfigError("an iterable dataset must come in a DataLoader; wrap it in one")
        batch = next(iter(data), None)
        if batch is None:
            raise ConfigError("the training DataLoader yields no batch; give it samples")
    else:
        if not len(dataset):
            raise ConfigError("the training data has no samples; pass at least one")
        samples = [dataset[i] for i in range(min(PROBE_SAMPLES, len(dataset)))]
        batch = default_collate(samples)
    split_batch(batch)  # checks the (inputs, target) layout
    raw, targets = batch
    if isinstance(raw, Mapping):
        return {k: v[:PROBE_SAMPLES] for k, v in raw.items()}, targets
    if isinstance(raw, list | tuple):
        return tuple(v[:PROBE_SAMPLES] for v in raw), targets
    return raw[:PROBE_SAMPLES], targets


def _declared_signature(data: Any) -> InputSignature | None:
    """The `signature` a (streaming) dataset declares, through DataLoaders and Subsets."""
    while isinstance(data, DataLoader | Subset):
        data = data.dataset
    signature = getattr(data, "signature", None) if isinstance(data, Dataset) else None
    return signature if isinstance(signature, InputSignature) else None
