"""torch.distributed on this machine, reachable from this machine only.

torch's `TCPStore` server listens on every interface whatever host name it is given
(``::`` here), and the elastic launcher's c10d rendezvous starts two of them in the
launching process: the rendezvous store and the store the workers share for
``MASTER_ADDR``/``MASTER_PORT``. Both are created here on a socket bound to 127.0.0.1
(`TCPStore(master_listen_fd=...)`), by the rendezvous backend `BACKEND`, and the
workers' ``MASTER_ADDR`` is 127.0.0.1. Gloo (and NCCL) pick the interface of their
listening sockets from the host name unless told: `worker_environment` names the
loopback interface for them.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

LOOPBACK = "127.0.0.1"
BACKEND = "jiasu-loopback"
STORE_TIMEOUT = timedelta(seconds=60)


def loopback_store(*, multi_tenant: bool = True, timeout: timedelta = STORE_TIMEOUT) -> Any:
    """A `TCPStore` server listening on 127.0.0.1 at a free port (``store.port``)."""
    import torch.distributed as dist

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.bind((LOOPBACK, 0))
        listener.listen()
        port = listener.getsockname()[1]
        store = dist.TCPStore(
            LOOPBACK,
            port,
            is_master=True,
            wait_for_workers=False,
            multi_tenant=multi_tenant,
            timeout=timeout,
            master_listen_fd=listener.fileno(),
        )
    except BaseException:
        listener.close()
        raise
    listener.detach()  # the store owns the descriptor now
    return store


def worker_environment(current: Mapping[str, str]) -> dict[str, str]:
    """Variables that keep the workers' collective sockets on loopback (the user's win).

    >>> sorted(worker_environment({"GLOO_SOCKET_IFNAME": "eth0"}))
    ['NCCL_SOCKET_IFNAME']
    """
    interface = "lo0" if sys.platform == "darwin" else "lo"
    names = ("GLOO_SOCKET_IFNAME", "NCCL_SOCKET_IFNAME")
    return {name: interface for name in names if name not in current}


def register_backend() -> str:
    """Register `BACKEND` with torch's elastic launcher (once) and return its name."""
    from torch.distributed.elastic.rendezvous import rendezvous_handler_registry

    rendezvous_handler_registry.register(BACKEND, _create_handler)
    return BACKEND


def _create_handler(params: Any) -> Any:
    """The c10d dynamic rendezvous, its stores on loopback (one node: this machine)."""
    from torch.distributed.elastic.rendezvous.c10d_rendezvous_backend import (
        C10dRendezvousBackend,
    )
    from torch.distributed.elastic.rendezvous.dynamic_rendezvous import (
        DynamicRendezvousHandler,
    )

    class LoopbackHandler(DynamicRendezvousHandler):
        def get_backend(self) -> str:
            return BACKEND

        def _create_tcp_store_server(self, master_addr: str, master_port: int) -> Any:
            return loopback_store()  # the store the workers share (MASTER_PORT)

    store = loopback_store()
    backend = C10dRendezvousBackend(store, params.run_id)
    return LoopbackHandler.from_backend(
        params.run_id, store, backend, params.min_nodes, params.max_nodes, local_addr=LOOPBACK
    )
