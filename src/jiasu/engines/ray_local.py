"""A Ray instance started on this machine for one run: reachable from this machine only.

Ray 2.60 binds its servers (GCS, raylet, object manager, workers' gRPC servers, the
runtime-env agent) to the node's IP address, and ``ray.init`` turns a loopback
``_node_ip_address`` into the machine's routable address (`resolve_ip_for_localhost`).
Only Ray's own "no clusters on this platform" switch, ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``
(`ray_constants.ENABLE_RAY_CLUSTER`), makes the node IP 127.0.0.1, so every server binds
to loopback. Token authentication stays on as well, with a fresh random token held in
the environment of this run only (``RAY_AUTH_TOKEN``; nothing is written to
``~/.ray``). After the start the node's address is checked, and a node that is not on
loopback is shut down at once.

Everything is restored afterwards, so a later ``ray.init`` in this process (joining a
remote cluster with ``--address``, say) sees the user's own settings. Ray caches the
authentication mode and token in its C++ config; they are re-read on entry and on exit.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from jiasu.core.environ import environ_set
from jiasu.engines.base import EngineError

CLUSTER_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
AUTH_MODE = "RAY_AUTH_MODE"
AUTH_TOKEN = "RAY_AUTH_TOKEN"


def local_environment(current: Mapping[str, str]) -> dict[str, str]:
    """The variables a local instance runs with: loopback node IP, token authentication.

    A user's explicit ``RAY_AUTH_MODE`` (and token) is kept as it is.

    >>> env = local_environment({})
    >>> env[CLUSTER_SWITCH], env[AUTH_MODE], len(env[AUTH_TOKEN])
    ('0', 'token', 64)
    >>> AUTH_TOKEN in local_environment({AUTH_MODE: "token"})
    False
    """
    values = {CLUSTER_SWITCH: "0"}
    if AUTH_MODE not in current:
        values.update({AUTH_MODE: "token", AUTH_TOKEN: secrets.token_hex(32)})
    return values


@contextmanager
def loopback_only() -> Iterator[None]:
    """Within the block, a ``ray.init()`` without address starts a loopback-only instance."""
    import ray._private.ray_constants as ray_constants

    saved_switch = ray_constants.ENABLE_RAY_CLUSTER
    try:
        with environ_set(local_environment(os.environ)):  # for Ray's processes
            ray_constants.ENABLE_RAY_CLUSTER = False  # read when ray.init picks the node IP
            _reload_auth_config()
            yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved_switch
        _reload_auth_config()  # with the environment put back


def check_loopback(ray: Any) -> None:
    """Raise `EngineError` unless the connected node's address is a loopback address."""
    address = ray.util.get_node_ip_address()
    if not ipaddress.ip_address(address).is_loopback:
        raise EngineError(
            f"the local Ray instance listens on {address}, not on loopback only; "
            "stopped it (this Ray version binds differently: pass --address of a "
            "cluster you secured instead)"
        )


def _reload_auth_config() -> None:
    """Make Ray re-read ``RAY_AUTH_MODE`` and the token (it caches both per process)."""
    from ray._raylet import AuthenticationTokenLoader, Config  # type: ignore[attr-defined]

    Config.initialize("")  # what Ray itself does after changing RAY_AUTH_MODE
    AuthenticationTokenLoader.instance().reset_cache()
