"""What `jiasu serve` adds to the bare predictor call behind one client, inside one process.

The issue's target "at 1 client, p50 adds at most 1 ms to the bare predictor call" compares
two things that `serve_load.py one-client` can only take from different processes, and one
process's model call differs from another's by up to ~2.5 ms on ResNet-50 int8 (RESULTS.md
"one client, over fresh processes"). Here both live in one process: it loads the artifact
as `jiasu serve` does, serves it with jiasu's own app on uvicorn (the artifact's recorded
batch settings, no access log), and in each round, in blocks of equal length,

* **bare**: calls the predictor directly from a thread of this process (the server idle);
* **served**: one wrk client on the `.npy` endpoint, each model call timed inside the server;
* **thread** (with `--ab`): the same with a lone request's call handed to the model's worker
  thread as before `ALONE_INLINE_CALL_S` (set to 0 for the block), in the same run.

* **floors** (with `--floors`): the same client against two references in this process,
  each calling the same predictor: a blocking-socket loop that reads the request, calls the
  model and answers in one ``sendall`` (no framework: the floor of any Python server on this
  machine), and a minimal ASGI app on uvicorn that reads the body, calls the model on its
  event loop and answers (the floor of the server software `jiasu serve` is built on). They
  are yardsticks, not servers to deploy: they check nothing and batch nothing.

It prints each round and the medians over rounds: the served model call against the bare
call (is the model slower when served?), p50 minus the served call (the server's own path:
HTTP, decode, batcher, answer) and p50 minus the bare call (the target). One-input models
only (the body is one `.npy`); the artifact is serve_load.py's (`serve_load.py build`).

Usage::

    .venv/bin/python benchmarks/serve_path.py --model resnet50 --rounds 6 --ab \\
        --json runs/serve_path_resnet50.json                     # ~2 min
    .venv/bin/python benchmarks/serve_path.py --model resnet50 --rounds 6 --floors  # ~3 min
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import signal
import socket
import statistics
import sys
import threading
import time
import urllib.request
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serve_load  # benchmarks/ is not a package


class Timed:
    """The predictor, each call's milliseconds appended to `times` under the current block."""

    def __init__(self, predictor: Any) -> None:
        self._predictor = predictor
        self.block = "warm-up"
        self.times: list[tuple[str, float]] = []

    def __getattr__(self, name: str) -> Any:  # signature, path, output: the predictor's
        return getattr(self._predictor, name)

    def __call__(self, *inputs: Any) -> Any:
        start = time.perf_counter()
        out = self._predictor(*inputs)
        self.times.append((self.block, (time.perf_counter() - start) * 1000))
        return out

    def median(self, block: str) -> float:
        return statistics.median(t for b, t in self.times if b == block)


def wait_ready(url: str, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the server was not ready in {timeout_s:g} s")


# --- the floors (--floors): yardsticks in this process, not servers -----------------------
def socket_floor(listener: socket.socket, predict: Callable[..., Any]) -> None:
    """Answer one connection at a time: read a request (Content-Length bodies only), call
    the model, answer with one sendall. Runs in a daemon thread until the process ends."""
    from jiasu.serve.npy import read_npy, write_npy

    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # wrk may drop its connection mid-request when its time is up (a reset)
        with conn, contextlib.suppress(ConnectionError):
            pending = bytearray()
            while (body := _next_body(conn, pending)) is not None:
                answer = write_npy(np.asarray(predict(read_npy(body))))
                head = b"HTTP/1.1 200 OK\r\ncontent-type: application/x-npy\r\n"
                conn.sendall(head + b"content-length: %d\r\n\r\n" % len(answer) + answer)


def _next_body(conn: socket.socket, pending: bytearray) -> bytearray | None:
    """The next request's body on `conn` (what follows it stays in `pending`), or None when
    the client has closed the connection."""
    while b"\r\n\r\n" not in pending:
        if not (data := conn.recv(1 << 20)):
            return None
        pending += data
    end = pending.index(b"\r\n\r\n")
    size = int(bytes(pending[:end]).lower().split(b"content-length:")[1].split(b"\r\n")[0])
    del pending[: end + 4]
    while len(pending) < size:
        if not (data := conn.recv(1 << 20)):
            return None
        pending += data
    body = pending[:size]
    del pending[:size]
    return body


def asgi_floor(predict: Callable[..., Any]) -> Callable[..., Awaitable[None]]:
    """The least an ASGI app can do for this request: read the body, call the model on the
    event loop, answer."""
    from jiasu.serve.npy import read_npy, write_npy

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        answer = write_npy(np.asarray(predict(read_npy(bytearray().join(chunks)))))
        headers = [
            (b"content-type", b"application/x-npy"),
            (b"content-length", b"%d" % len(answer)),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    return app


def start_floors(predict: Callable[..., Any]) -> dict[str, str]:
    """The two floors listening on loopback (daemon threads): their URLs by block name."""
    import uvicorn

    urls = {}
    for name in ("socket", "asgi"):
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        if name == "socket":
            target: Callable[[], None] = functools.partial(socket_floor, listener, predict)
        else:
            config = uvicorn.Config(asgi_floor(predict), log_level="warning", access_log=False)
            target = functools.partial(uvicorn.Server(config).run, sockets=[listener])
        threading.Thread(target=target, daemon=True).start()
        urls[name] = f"http://127.0.0.1:{listener.getsockname()[1]}/predict"
    return urls


def drive(
    timed: Timed,
    inputs: tuple[Any, ...],
    predict_url: str,
    ready_url: str,
    body: Path,
    args: argparse.Namespace,
    report: Callable[[dict[str, Any]], None],
) -> None:
    """The rounds, from a thread of the server's process; then SIGTERM to end the server."""
    from jiasu.serve import batcher

    lone_inline_s = batcher.ALONE_INLINE_CALL_S
    try:
        wait_ready(ready_url)
        floors = start_floors(timed) if args.floors else {}
        for url in (predict_url, *floors.values()):
            serve_load.wrk(url, body, 1, 2)  # warm-up, not counted
            time.sleep(0.5)  # wrk may stop with a request in the model still
        rounds = []
        for r in range(args.rounds):
            timed.block = f"bare{r}"
            end = time.perf_counter() + args.seconds
            while time.perf_counter() < end:
                timed(*inputs)
            row: dict[str, float] = {"bare_ms": timed.median(f"bare{r}")}
            blocks = ("served", *(("thread",) if args.ab else ()), *floors)
            for block in blocks if r % 2 == 0 else blocks[::-1]:
                batcher.ALONE_INLINE_CALL_S = 0.0 if block == "thread" else lone_inline_s
                timed.block = f"{block}{r}"
                url = floors.get(block, predict_url)
                load = serve_load.wrk(url, body, 1, args.seconds)
                time.sleep(0.5)
                row[f"{block}_call_ms"] = timed.median(f"{block}{r}")
                row[f"{block}_p50_ms"] = load.p50_ms
            batcher.ALONE_INLINE_CALL_S = lone_inline_s
            rounds.append(row)
            print(f"round {r + 1}/{args.rounds}: " + "  ".join(
                f"{k} {v:.2f}" for k, v in row.items()), flush=True)  # fmt: skip
        report({"model": args.model, "rounds": rounds, "load": serve_load.load_average()})
    finally:
        os.kill(os.getpid(), signal.SIGTERM)


def summary(result: dict[str, Any]) -> list[str]:
    rounds = result["rounds"]

    def med(key: str) -> float:
        return statistics.median(r[key] for r in rounds)

    def spread(key: str) -> str:
        values = [r[key] for r in rounds]
        return f"{min(values):+.2f}..{max(values):+.2f}"

    bare = med("bare_ms")
    lines = [f"{result['model']}: medians over {len(rounds)} rounds (bare call {bare:.2f} ms)"]
    for floor, label in (("socket", "a blocking-socket loop"), ("asgi", "a minimal ASGI app")):
        if f"{floor}_p50_ms" in rounds[0]:
            for r in rounds:
                r[f"{floor}_added_ms"] = r[f"{floor}_p50_ms"] - r["bare_ms"]
                r[f"{floor}_path_ms"] = r[f"{floor}_p50_ms"] - r[f"{floor}_call_ms"]
                r[f"served_over_{floor}_ms"] = (
                    r["served_p50_ms"] - r["served_call_ms"] - r[f"{floor}_path_ms"]
                )
            lines.append(
                f"  floor, {label}: path +{med(f'{floor}_path_ms'):.2f} ms "
                f"({spread(f'{floor}_path_ms')}), p50 - bare {med(f'{floor}_added_ms'):+.2f} ms "
                f"({spread(f'{floor}_added_ms')}); jiasu's path over it "
                f"{med(f'served_over_{floor}_ms'):+.2f} ms ({spread(f'served_over_{floor}_ms')})"
            )
    for block in ("served", "thread"):  # the floors' lines come first
        if f"{block}_p50_ms" not in rounds[0]:
            continue
        for r in rounds:
            r[f"{block}_call_added_ms"] = r[f"{block}_call_ms"] - r["bare_ms"]
            r[f"{block}_path_ms"] = r[f"{block}_p50_ms"] - r[f"{block}_call_ms"]
            r[f"{block}_added_ms"] = r[f"{block}_p50_ms"] - r["bare_ms"]
        added = med(f"{block}_added_ms")
        verdict = "met" if added <= 1.0 else f"MISSED by {added - 1:.2f} ms"
        label = "lone calls on the loop" if block == "served" else "lone calls in the thread"
        lines.append(
            f"  {label}: p50 {med(f'{block}_p50_ms'):.2f} ms; the model call in the server "
            f"{med(f'{block}_call_added_ms'):+.2f} ms (rounds {spread(f'{block}_call_added_ms')}); "
            f"the server's path {med(f'{block}_path_ms'):+.2f} ms "
            f"({spread(f'{block}_path_ms')}); p50 - bare {added:+.2f} ms "
            f"({spread(f'{block}_added_ms')}): adds <= 1 ms {verdict}"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="resnet50", choices=serve_load.MODELS)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=4.0, help="per block")
    parser.add_argument("--ab", action="store_true", help="also a block with the thread")
    parser.add_argument(
        "--floors", action="store_true", help="also a raw-socket and a minimal-ASGI yardstick"
    )
    parser.add_argument("--json", type=Path, help="write the rounds here")
    args = parser.parse_args(argv)

    from jiasu.serve.npy import write_npy
    from jiasu.serve.server import bound_port, listen, load_served, run
    from jiasu.serve.settings import ServeSettings
    from jiasu.serve.tune import recorded_settings

    directory = serve_load.artifact_dir(args.model)
    if not directory.is_dir():
        raise SystemExit(f"no artifact at {directory}; run `serve_load.py build` first")
    timed = Timed(load_served(directory))
    inputs = tuple(timed.signature.generate(1))
    if len(inputs) != 1:
        raise SystemExit("serve_path.py sends one .npy: the model must take one input")
    body = serve_load.CACHE / f"body_path_{args.model}.npy"
    body.parent.mkdir(parents=True, exist_ok=True)
    body.write_bytes(write_npy(inputs[0]))
    sock = listen("127.0.0.1", 0)
    base = f"http://127.0.0.1:{bound_port(sock)}"
    predict_url = f"{base}/v1/models/{args.model}/predict"
    results: list[dict[str, Any]] = []
    thread = threading.Thread(
        target=drive,
        args=(timed, inputs, predict_url, f"{base}/v2/health/ready", body, args, results.append),
        daemon=True,
    )
    thread.start()
    settings = ServeSettings(args.model, **recorded_settings(directory))
    run(timed, settings, sock, access_log=False)  # until drive() sends SIGTERM
    thread.join(10)
    if not results:
        print("no result: see the output above", file=sys.stderr)
        return 1
    for line in summary(results[0]):
        print(line)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results[0], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
