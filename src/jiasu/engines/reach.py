"""Fail fast, with one sentence, when a cluster address cannot be reached."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from jiasu.engines.base import EngineError


def host_port(address: str, default_port: int) -> tuple[str, int] | None:
    """``spark://h:7077``, ``ray://h:10001``, ``h:6379`` → (host, port); None for ``auto``."""
    if address in ("auto", "local") or address.startswith("local["):
        return None
    parsed = urlsplit(address if "://" in address else f"tcp://{address}")
    if not parsed.hostname:
        return None
    return parsed.hostname, parsed.port or default_port


def check_reachable(
    address: str, *, engine: str, default_port: int, timeout_s: float = 3.0
) -> None:
    """Raise `EngineError` unless something accepts TCP connections at `address`."""
    target = host_port(address, default_port)
    if target is None:
        return
    try:
        with socket.create_connection(target, timeout=timeout_s):
            return
    except OSError as exc:
        raise EngineError(
            f"cannot reach the {engine} cluster at {address!r} ({exc.strerror or exc}); "
            f"check that its head/master is running and the address is right"
        ) from None
