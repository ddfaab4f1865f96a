"""Engines started on this machine listen on loopback only: no host on the network can attach.

Each test lists the listening TCP sockets of the processes a run started (psutil) while
the run is up, and checks every one is bound to 127.0.0.1 or ::1, never a wildcard
(``0.0.0.0``, ``::``) or the machine's network address.
"""

from __future__ import annotations

import ipaddress
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from jiasu.engines import EngineOptions, get_engine

psutil = pytest.importorskip("psutil")

# Written next to the test at run time: the local engine's workers are spawned processes
# and import their function by module name, which a pytest module (importlib mode) lacks.
SOCKETS_MODULE = '''
import os

import psutil


def listening(root):
    """(process name, ip, port) of every listening TCP socket of `root` and its descendants."""
    found = []
    parent = psutil.Process(root)
    for process in [parent, *parent.children(recursive=True)]:
        try:
            for conn in process.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN:
                    found.append((process.name(), conn.laddr.ip, conn.laddr.port))
        except psutil.Error:  # a process that ended meanwhile
            pass
    return found


def probe(ctx):
    """A worker function: while both ranks are up, rank 0 lists the run's sockets."""
    import torch.distributed as dist

    dist.barrier()
    # the launcher (this test's process) hosts the stores; the workers are its children
    found = listening(os.getppid()) if ctx.rank == 0 else []
    dist.barrier()
    return found, os.environ.get("MASTER_ADDR")
'''


@pytest.fixture
def sockets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    (tmp_path / "jiasu_test_sockets.py").write_text(textwrap.dedent(SOCKETS_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))  # spawned workers inherit sys.path
    import jiasu_test_sockets

    return jiasu_test_sockets


def is_loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip.split("%")[0])
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 on a dual-stack socket
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def exposed(found: list[tuple[str, str, int]]) -> list[tuple[str, str, int]]:
    return [entry for entry in found if not is_loopback(entry[1])]


def test_is_loopback_tells_wildcards_apart() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("::ffff:127.0.0.1")
    assert not any(is_loopback(ip) for ip in ("0.0.0.0", "::", "192.0.2.2", "::ffff:192.0.2.2"))


@pytest.mark.timeout(180)
def test_local_ray_instance_listens_on_loopback_only_with_authentication(sockets: Any) -> None:
    ray = pytest.importorskip("ray")
    from jiasu.engines.ray_train import ray_connection

    names = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")
    env_before = {name: os.environ.get(name) for name in names}
    before = set(sockets.listening(os.getpid()))
    with ray_connection(None, num_cpus=1):
        assert (
            ray.get(ray.remote(lambda: os.getpid()).remote()) != os.getpid()
        )  # a worker is up too
        found = [s for s in sockets.listening(os.getpid()) if s not in before]
        ray_processes = psutil.Process().children(recursive=True)
        gcs = next(p for p in ray_processes if p.name() == "gcs_server")
        gcs_auth = gcs.environ().get("RAY_AUTH_MODE")
    assert {"gcs_server", "raylet"} <= {name for name, _, _ in found}
    assert exposed(found) == []
    assert gcs_auth == "token"  # authentication stays on, with a token made for the run
    # nothing is left behind for a later ray.init (joining a secured cluster, say)
    assert {name: os.environ.get(name) for name in names} == env_before
    assert not ray.is_initialized()


@pytest.mark.timeout(180)
def test_local_engine_listens_on_loopback_only(sockets: Any, tmp_path: Path) -> None:
    options = EngineOptions(workers=2, threads_per_worker=1, storage_dir=str(tmp_path / "run"))
    found, master_addr = get_engine("local").run(sockets.probe, options)
    assert found  # the rendezvous stores and the workers' gloo sockets
    assert exposed(found) == []
    assert master_addr == "127.0.0.1"
