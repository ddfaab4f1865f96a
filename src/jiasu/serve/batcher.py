"""Dynamic batching: requests that arrive together are run as one model call.

Each request brings n >= 1 samples of every input (batch axis 0). The batcher queues
requests, and one consumer task takes from the head of the queue as many requests as fit
in ``max_batch_size`` samples (only requests whose per-sample shapes and dtypes match the
head's, since they are concatenated along axis 0), waiting at most ``max_delay_ms`` after
the head arrived for others to join -- but only while requests overlap: a request that
arrives when no other has been in flight for `OVERLAP_MEMORY_S` is run at once, since
waiting could gather no one (one client at a time then pays no delay, and under
concurrency the tuned delay applies as before). The model runs in one worker thread, so
the event loop keeps accepting requests while it computes (calls shorter than `INLINE_CALL_S` run on
the loop, where they cost less than the hand-off, and so does a lone request's call up to
`ALONE_INLINE_CALL_S`); the output rows are split back per
request in order. Nothing is padded, so each request's rows are those the predictor
gives for that request alone (up to the runtime's batch-size-dependent rounding).

A full queue raises `QueueFull` at once (the server answers 503 with Retry-After), and
so does a request that would wait longer than ``max_wait_ms`` (by default the request
timeout): from the recent model calls' duration, the batches ahead of it would take
longer than that, so accepting it would only break the latency bound or turn into a 504
after holding its memory (admission control: under
overload the accepted requests keep their latency and the rest learn at once).
`drain` stops accepting (`Draining`), finishes what was accepted, then stops.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from jiasu.serve.settings import ServeSettings

Predict = Callable[..., np.ndarray]  # predict(*inputs) -> output (N, ...)
# Model calls that recently took at most this long (s) run on the event loop itself. Handing
# one to the worker thread and back costs two thread wake-ups and a GIL hand-off, more than
# such a call: on the MNIST CNN's 0.09 ms ONNX Runtime call (max batch 8, no delay, wrk on
# loopback), 1 client's mean latency went 0.86 -> 0.61 ms and 16 clients' rate 1920 -> 2081
# req/s. A longer call stays in the thread, so the loop keeps reading requests meanwhile.
INLINE_CALL_S = 0.001
# A lone request's model call (no company for `OVERLAP_MEMORY_S`) runs on the event loop
# too if recent calls took at most this long (s): no one waits to be read meanwhile, and
# the thread hand-off each way costs one client a wake-up on every request (ResNet-50 int8,
# a 13 ms call, 2-core VM: the server's path around the call 1.24-1.40 ms on the loop
# against 1.45-1.48 ms in the thread, 3 runs; benchmarks/serve_path.py --ab). A request
# that arrives meanwhile is read after the call (at most this late) and turns the overlap
# on: the calls go to the thread again.
ALONE_INLINE_CALL_S = 0.05
# A lone request waits `max_delay_ms` for company only if another request was in flight
# (queued, computing, or its body being read) within this many seconds. One client sending
# its next request when the previous answer is in never overlaps itself: on ResNet-50 int8
# with a tuned 4 ms delay, its p50 was 14.5 ms against a 7.4 ms bare call.
OVERLAP_MEMORY_S = 1.0
SHUTTING_DOWN = "the server is shutting down; send the request to another replica"


class QueueFull(Exception):
    """`max_queue` requests are waiting, or the requests ahead would outlast the request
    timeout (`why` says which, for the answer); try again after `retry_after_s` seconds."""

    def __init__(self, retry_after_s: int, why: str = "the queue is full") -> None:
        super().__init__(f"{why}; retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s
        self.why = why


@dataclasses.dataclass
class Reservation:
    """A place in the queue that `Batcher.admit` gave a request whose body is being read."""

    nbytes: int = 0  # its body's declared size, counted against `max_queue_mb` meanwhile
    held: bool = True


class Draining(Exception):
    """The server is shutting down and takes no new requests."""


@dataclasses.dataclass(frozen=True)
class BatchRecord:
    """What one model call did, for metrics."""

    samples: int  # rows in the batch
    requests: int
    queue_s: tuple[float, ...]  # per request: from arrival to the start of its model call
    compute_s: float  # the model call, in its worker thread


@dataclasses.dataclass(frozen=True)
class BatcherStats:
    queue_depth: int  # requests waiting for a batch
    in_flight: int  # requests accepted and not yet answered (waiting or computing)
    batches: int  # model calls so far
    samples: int  # rows computed so far


@dataclasses.dataclass
class _Pending:
    inputs: tuple[np.ndarray, ...]
    rows: int
    nbytes: int  # of its input arrays, held while it waits
    key: tuple[Any, ...]  # per-sample shapes and dtypes: only equal keys share a batch
    future: asyncio.Future[np.ndarray]
    arrived: float  # loop.time()


class Batcher:
    """Groups concurrent requests into one model call (asyncio; the model runs in one
    worker thread, so the event loop keeps accepting).

    `predict(*inputs)` takes arrays in the model's signature order and returns its output
    with one row per sample. `on_batch`, if given, is called on the event loop after each
    model call with a `BatchRecord`.
    """

    def __init__(
        self,
        predict: Predict,
        settings: ServeSettings,
        *,
        on_batch: Callable[[BatchRecord], None] | None = None,
    ) -> None:
        self._predict = predict
        self._settings = settings
        self._on_batch = on_batch
        self._queue: collections.deque[_Pending] = collections.deque()
        self._rows_waiting = 0
        self._bytes_waiting = 0  # of the queued requests' input arrays
        self._reserved_bytes = 0  # declared body sizes of the admitted, not yet queued
        self._computing = 0  # requests in the model call now
        self._reserved = 0  # requests admitted and not yet queued (their bodies being read)
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="jiasu-model")
        self._task: asyncio.Task[None] | None = None
        self._accepting = True
        self._closing = False
        self._batches = 0
        self._samples = 0
        self._compute_total_s = 0.0
        # recent duration of one model call (s), exponentially averaged; None before any
        self._call_s: float | None = None
        self._overlap_at = -math.inf  # loop.time() when a request last arrived beside another

    # --- the public side ----------------------------------------------------------------

    async def start(self) -> None:
        """Start the consumer task on the running loop (`submit` also starts it)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._consume())

    def admit(self, rows: int = 1, nbytes: int = 0) -> Reservation:
        """Reserve a place for a request of `rows` samples, or raise `QueueFull` (or
        `Draining`) now if it would be refused. The server asks this before it reads and
        decodes a body, so that under overload a refusal costs the event loop little; the
        request then holds its place until ``submit(..., reservation=r)`` queues it or
        ``release(r)``, so that requests admitted together cannot overfill the queue behind
        each other's backs (and be refused late, after their bodies were decoded)."""
        self._check(rows, nbytes)
        self._note_overlap()
        self._reserved += 1
        self._reserved_bytes += nbytes
        return Reservation(nbytes)

    def release(self, reservation: Reservation) -> None:
        """Give back the place `admit` reserved, unless `submit` already took it."""
        if reservation.held:
            reservation.held = False
            self._reserved -= 1
            self._reserved_bytes -= reservation.nbytes

    def _check(self, rows: int, nbytes: int) -> None:
        if not self._accepting:
            raise Draining(SHUTTING_DOWN)
        if len(self._queue) + self._reserved >= self._settings.max_queue:
            raise QueueFull(self._retry_after())
        held = self._bytes_waiting + self._reserved_bytes
        if held and held + nbytes > self._settings.max_queue_bytes:  # an empty queue takes any
            raise QueueFull(
                self._retry_after(),
                f"the queue holds {held / 2**20:.1f} MiB of requests "
                f"(--max-queue-mb {self._settings.max_queue_mb:g})",
            )
        if self._expected_wait_s(rows) > self._settings.max_wait_s:
            raise QueueFull(self._retry_after(), self._wait_bound())

    async def submit(
        self, inputs: tuple[np.ndarray, ...], reservation: Reservation | None = None
    ) -> np.ndarray:
        """The output rows for `inputs` (n samples each, batch axis 0), computed in a batch
        with whatever else is waiting. Raises `QueueFull` when `max_queue` requests wait
        or the wait would outlast `max_wait_s`, `Draining` after `drain` began. With a
        held `reservation` from `admit`, its place is taken instead (only `Draining`)."""
        rows = int(inputs[0].shape[0])
        nbytes = sum(int(a.nbytes) for a in inputs)
        if reservation is not None and reservation.held:
            self.release(reservation)
            if not self._accepting:
                raise Draining(SHUTTING_DOWN)
        else:
            self._check(rows, nbytes)
        self._note_overlap()
        if self._task is None:
            await self.start()
        loop = asyncio.get_running_loop()
        key = tuple((a.shape[1:], a.dtype.str) for a in inputs)
        item = _Pending(inputs, rows, nbytes, key, loop.create_future(), loop.time())
        first = not self._queue
        self._queue.append(item)
        self._rows_waiting += rows
        self._bytes_waiting += nbytes
        self._idle.clear()
        if first or self._rows_waiting >= self._settings.max_batch_size:
            self._wake.set()
        return await item.future  # a caller's timeout cancels it; the consumer skips it

    async def run_alone(self, inputs: tuple[np.ndarray, ...]) -> np.ndarray:
        """`predict(*inputs)` in the model's worker thread, outside any batch (warm-up)."""
        loop = asyncio.get_running_loop()
        clock = time.perf_counter()
        output = await loop.run_in_executor(self._executor, self._call, inputs, None)
        self._record_call(time.perf_counter() - clock)
        return output

    @property
    def stats(self) -> BatcherStats:
        return BatcherStats(
            queue_depth=len(self._queue),
            in_flight=len(self._queue) + self._computing,
            batches=self._batches,
            samples=self._samples,
        )

    async def drain(self, timeout_s: float) -> None:
        """Stop accepting, answer every accepted request (within `timeout_s`), then stop.
        Requests still unanswered at the timeout fail with `Draining`."""
        self._accepting = False
        self._closing = True
        self._wake.set()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for item in self._queue:
            if not item.future.done():
                item.future.set_exception(Draining("the server shut down before this ran"))
        self._queue.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)

    # --- the consumer -------------------------------------------------------------------

    async def _consume(self) -> None:
        loop = asyncio.get_running_loop()
        limit = self._settings.max_batch_size
        while True:
            self._drop_answered_head()
            if not self._queue:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            deadline = self._queue[0].arrived + self._settings.max_delay_s
            alone = self._alone(loop.time())
            if alone:
                deadline = -math.inf  # no one to wait for: see OVERLAP_MEMORY_S
            while self._rows_waiting < limit and not self._closing:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), remaining)
                except asyncio.TimeoutError:  # not TimeoutError before Python 3.11
                    break
            batch = self._take()
            if batch:
                await self._compute(batch, loop, alone=alone and len(batch) == 1)

    def _note_overlap(self) -> None:
        """Record the time if a request arriving now has company in flight."""
        if self._queue or self._computing or self._reserved:
            with contextlib.suppress(RuntimeError):  # no running loop: nothing to record
                self._overlap_at = asyncio.get_running_loop().time()

    def _alone(self, now: float) -> bool:
        """Whether the one queued request has had no company for `OVERLAP_MEMORY_S`."""
        return (
            len(self._queue) == 1
            and not self._reserved
            and now - self._overlap_at > OVERLAP_MEMORY_S
        )

    def _drop_answered_head(self) -> None:
        while self._queue and self._queue[0].future.done():  # timed out while waiting
            item = self._queue.popleft()
            self._rows_waiting -= item.rows
            self._bytes_waiting -= item.nbytes

    def _take(self) -> list[_Pending]:
        """From the head on, the requests of the head's key that fit in one batch (FIFO:
        it stops at the first that does not fit; the head is taken even if it alone is
        larger than max_batch_size)."""
        self._drop_answered_head()
        if not self._queue:
            return []
        key = self._queue[0].key
        limit = self._settings.max_batch_size
        taken: list[_Pending] = []
        kept: collections.deque[_Pending] = collections.deque()
        rows = 0
        full = False
        for item in self._queue:
            if item.future.done():
                self._rows_waiting -= item.rows
                self._bytes_waiting -= item.nbytes
            elif full or item.key != key:
                kept.append(item)
            elif taken and rows + item.rows > limit:
                full = True
                kept.append(item)
            else:
                taken.append(item)
                rows += item.rows
                self._rows_waiting -= item.rows
                self._bytes_waiting -= item.nbytes
        self._queue = kept
        return taken

    async def _compute(
        self, batch: list[_Pending], loop: asyncio.AbstractEventLoop, *, alone: bool = False
    ) -> None:
        started = loop.time()
        self._computing = len(batch)
        rows = sum(item.rows for item in batch)
        if len(batch) == 1:
            inputs = batch[0].inputs
        else:
            count = len(batch[0].inputs)
            inputs = tuple(np.concatenate([it.inputs[i] for it in batch]) for i in range(count))
        try:
            clock = time.perf_counter()
            try:
                if self._inline(alone):
                    output = self._call(inputs, rows)  # on the loop: see INLINE_CALL_S
                else:
                    output = await loop.run_in_executor(self._executor, self._call, inputs, rows)
                failed: BaseException | None = None
            except Exception as exc:
                failed = exc
            compute_s = time.perf_counter() - clock
            if failed is None:
                start = 0
                for item in batch:
                    if not item.future.done():
                        item.future.set_result(output[start : start + item.rows])
                    start += item.rows
            elif len(batch) == 1:
                if not batch[0].future.done():
                    batch[0].future.set_exception(failed)
            else:  # one request may have broken the batch: run each alone, so only it fails
                for item in batch:
                    await self._compute_alone(item, loop)
        finally:
            self._computing = 0
            for item in batch:  # cancelled mid-call (shutdown): no request is left hanging
                if not item.future.done():
                    item.future.set_exception(Draining("the server shut down during this call"))
        # The answers go out before the bookkeeping: yield a turn so that callers awaiting
        # `submit` resume first (the server's, behind `wait_for`, are a turn further; after a
        # long call the bookkeeping runs with cold caches, ~0.07 ms; serve_path.py).
        await asyncio.sleep(0)
        self._batches += 1
        self._samples += rows
        self._compute_total_s += compute_s
        self._record_call(compute_s)
        if self._on_batch is not None:
            waits = tuple(started - item.arrived for item in batch)
            self._on_batch(BatchRecord(rows, len(batch), waits, compute_s))

    async def _compute_alone(self, item: _Pending, loop: asyncio.AbstractEventLoop) -> None:
        try:
            output = await loop.run_in_executor(self._executor, self._call, item.inputs, item.rows)
        except Exception as exc:
            if not item.future.done():
                item.future.set_exception(exc)
        else:
            if not item.future.done():
                item.future.set_result(output)

    def _call(self, inputs: tuple[np.ndarray, ...], rows: int | None) -> np.ndarray:
        output = np.asarray(self._predict(*inputs))
        if rows is not None and (output.ndim == 0 or output.shape[0] != rows):
            raise RuntimeError(
                f"the model returned output of shape {output.shape} for {rows} samples; "
                "it must return one row per sample"
            )
        return output

    def _inline(self, alone: bool) -> bool:
        """Whether the next model call runs on the event loop: a short one always, a lone
        request's if not too long (`INLINE_CALL_S`, `ALONE_INLINE_CALL_S`)."""
        recent = self._call_s
        if recent is None:
            return False
        return recent <= INLINE_CALL_S or (alone and recent <= ALONE_INLINE_CALL_S)

    def _record_call(self, seconds: float) -> None:
        recent = self._call_s
        self._call_s = seconds if recent is None else 0.8 * recent + 0.2 * seconds

    def _expected_wait_s(self, rows: int) -> float:
        """Seconds until a request of `rows` samples would be answered: the model call in
        progress plus the full batches ahead of it (queued, or admitted with one sample
        each and still being read) and its own, at the recent call time. 0 when nothing is
        ahead of it (it is run, and answered or timed out) or before the first call
        (nothing is known)."""
        waiting = self._rows_waiting + self._reserved
        if self._call_s is None or not (waiting or self._computing):
            return 0.0
        ahead = math.ceil((waiting + rows) / self._settings.max_batch_size)
        return self._call_s * (ahead + (1 if self._computing else 0))

    def _wait_bound(self) -> str:
        settings = self._settings
        if settings.max_wait_ms is None:
            return (
                f"the requests ahead would take longer than the {settings.timeout_s:g} s "
                "request timeout"
            )
        return (
            f"the requests ahead would take longer than the {settings.max_wait_ms:g} ms "
            "wait bound (--max-wait-ms)"
        )

    def _retry_after(self) -> int:
        """Whole seconds until the queue has likely drained (at least 1)."""
        per_batch = self._compute_total_s / self._batches if self._batches else 0.0
        batches = self._rows_waiting / self._settings.max_batch_size
        return max(1, math.ceil(per_batch * batches))
