"""Real `jiasu serve` processes for the tests: each on a free loopback port (--port 0,
read back from its announcement), ready when /v2/health/ready says so, and stopped by its
PID (SIGTERM, then SIGKILL) when its block ends."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

START_TIMEOUT_S = 60.0


class Server:
    """A running `jiasu serve` process: its port, its log, and plain HTTP calls."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path, name: str):
        self.process = process
        self.port = port
        self.log = log
        self.name = name
        self.url = f"127.0.0.1:{port}"

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30.0,
    ) -> tuple[int, dict[str, str], bytes]:
        """One request on a new connection: (status, headers, body)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return (
                response.status,
                {k.lower(): v for k, v in response.getheaders()},
                response.read(),
            )
        finally:
            connection.close()

    def json(self, method: str, path: str, payload: Any = None, **kwargs: Any) -> tuple[int, Any]:
        body = None if payload is None else json.dumps(payload).encode()
        status, _, data = self.request(method, path, body, **kwargs)
        return status, json.loads(data)

    def metrics(self) -> str:
        status, _, data = self.request("GET", "/metrics")
        assert status == 200
        return data.decode()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def running(
    directory: Path,
    *args: str,
    log: Path,
    env: dict[str, str] | None = None,
    wait_ready: bool = True,
) -> Iterator[Server]:
    """`jiasu serve DIRECTORY --port 0 ARGS` in a subprocess until the block ends; then
    SIGTERM, and SIGKILL if it has not exited 20 s later (by PID)."""
    command = [
        sys.executable,
        "-m",
        "jiasu.cli.main",
        "serve",
        str(directory),
        "--port",
        "0",
        *args,
    ]
    environment = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
    with open(log, "wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=environment)
    try:
        port, name = _announced(process, log)
        server = Server(process, port, log, name)
        if wait_ready:
            _wait_ready(server)
        yield server
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes], timeout_s: float = 20.0) -> int:
    """SIGTERM the process by its PID; SIGKILL it after `timeout_s`. Its exit code."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            return process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
    return process.wait()


def _announced(process: subprocess.Popen[bytes], log: Path) -> tuple[int, str]:
    deadline = time.monotonic() + START_TIMEOUT_S
    pattern = re.compile(r"serving (\S+) .* at http://127\.0\.0\.1:(\d+)")
    while time.monotonic() < deadline:
        match = pattern.search(log.read_text(errors="replace"))
        if match:
            return int(match.group(2)), match.group(1)
        if process.poll() is not None:
            raise AssertionError(f"jiasu serve exited {process.returncode}: {log.read_text()}")
        time.sleep(0.05)
    raise AssertionError(f"jiasu serve did not start: {log.read_text()}")


def _wait_ready(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if server.request("GET", "/v2/health/ready", timeout=2)[0] == 200:
                return
        if server.process.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"jiasu serve did not turn ready: {server.log_text()}")
