"""Environment variables set for a block (for the processes it starts), then put back."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping


@contextlib.contextmanager
def environ_set(values: Mapping[str, str]) -> Iterator[None]:
    """`values` in ``os.environ`` within the block; after it, each name has its old value
    again, or is unset if it had none.

    >>> with environ_set({"JIASU_DOCTEST": "1"}):
    ...     os.environ["JIASU_DOCTEST"]
    '1'
    >>> "JIASU_DOCTEST" in os.environ
    False
    """
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
