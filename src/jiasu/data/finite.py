"""Inputs holding NaN or infinity: counted and reported, since no model predicts from them.

A runtime given a NaN pixel returns NaN logits, and their argmax is class 0: without
a warning, bad inputs would look like confident predictions.
"""

from __future__ import annotations

import warnings

import numpy as np


class NonFiniteInputWarning(RuntimeWarning):
    """Some inputs hold NaN or infinity; their predictions are meaningless."""


def count_nonfinite_rows(batch: np.ndarray) -> int:
    """How many of the batch's inputs (first axis) hold at least one NaN or infinity."""
    if batch.dtype.kind not in "fc" or batch.ndim == 0 or not batch.size:
        return 0  # integers and booleans are always finite
    return int((~np.isfinite(batch.reshape(len(batch), -1)).all(axis=1)).sum())


def nonfinite_message(bad: int, total: int, where: str = "") -> str:
    """The one-sentence warning for `bad` of `total` non-finite inputs."""
    source = f" in {where}" if where else ""
    return (
        f"{bad} of {total} inputs{source} hold NaN or infinity; their predictions are "
        "meaningless (NaN logits, reported as class 0), so clean or drop those rows"
    )


def warn_if_nonfinite(batch: np.ndarray, stacklevel: int = 3) -> int:
    """Issue a `NonFiniteInputWarning` when inputs hold NaN or infinity; return how many."""
    bad = count_nonfinite_rows(batch)
    if bad:
        warnings.warn(nonfinite_message(bad, len(batch)), NonFiniteInputWarning, stacklevel)
    return bad
