"""The dynamic batcher on its own (asyncio, in this process): batched results equal each
request run alone, batches respect their limits, a full queue refuses at once, a broken
request fails only itself, timeouts and drain leave no request unanswered."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import numpy as np
import pytest

from jiasu.core.errors import ConfigError
from jiasu.serve.batcher import Batcher, BatchRecord, Draining, QueueFull
from jiasu.serve.settings import ServeSettings


class Model:
    """Row-wise and elementwise, so exact at any batch size (a matmul is not: BLAS picks
    kernels by size): output row i depends on input row i only. Records each call's rows."""

    def __init__(self, delay_s: float = 0.0, gate: threading.Event | None = None) -> None:
        self.calls: list[int] = []
        self.delay_s = delay_s
        self.gate = gate

    def __call__(self, x: np.ndarray, scale: np.ndarray) -> np.ndarray:
        if self.gate is not None:
            self.gate.wait(10)
        time.sleep(self.delay_s)
        if np.isnan(x).any():
            raise ValueError("NaN input")
        self.calls.append(len(x))
        return np.tanh(x[:, :3] * x[:, 3:]) * scale[:, None]


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 30))


def request(rng: np.random.Generator, rows: int, features: int = 6) -> tuple[np.ndarray, ...]:
    return rng.standard_normal((rows, features)), rng.random(rows)


def test_concurrent_requests_are_batched_and_each_gets_exactly_its_own_rows() -> None:
    rng = np.random.default_rng(1)
    requests = [request(rng, int(n)) for n in rng.integers(1, 6, size=60)]
    model = Model(delay_s=0.002)
    records: list[BatchRecord] = []
    settings = ServeSettings("m", max_batch_size=16, max_delay_ms=5, max_queue=100)

    async def main() -> list[np.ndarray]:
        batcher = Batcher(model, settings, on_batch=records.append)
        outputs = await asyncio.gather(*(batcher.submit(r) for r in requests))
        assert batcher.stats.in_flight == 0 and batcher.stats.queue_depth == 0
        await batcher.drain(1)
        return list(outputs)

    outputs = run(main())
    for inputs, output in zip(requests, outputs, strict=True):
        np.testing.assert_array_equal(output, model(*inputs))  # identical to it alone
    sent = sum(len(r[0]) for r in requests)
    assert sum(model.calls[: len(records)]) == sent  # every row computed once, in batches
    assert len(records) < len(requests) / 3  # they were grouped
    assert max(r.samples for r in records) <= 16
    assert sum(r.requests for r in records) == len(requests)


def test_a_request_larger_than_the_batch_runs_alone_and_a_lone_one_waits_the_delay() -> None:
    model = Model()
    settings = ServeSettings("m", max_batch_size=4, max_delay_ms=50)

    async def main() -> float:
        batcher = Batcher(model, settings)
        rng = np.random.default_rng(2)
        big = request(rng, 10)
        # two at once: the second arrives beside the first, so requests overlap now
        outputs = await asyncio.gather(batcher.submit(big), batcher.submit(request(rng, 1)))
        np.testing.assert_array_equal(outputs[0], model(*big))
        started = time.perf_counter()
        await batcher.submit(request(np.random.default_rng(3), 1))
        waited = time.perf_counter() - started
        await batcher.drain(1)
        return waited

    waited = run(main())
    assert model.calls[0] == 10
    assert 0.04 <= waited < 1.0  # waited for company up to max_delay_ms, then ran alone


def test_a_request_with_no_company_for_a_second_runs_at_once_without_the_delay() -> None:
    # one client at a time (each request sent when the last answer is in) never overlaps:
    # waiting could gather no one, so the delay would only add latency
    model = Model()
    settings = ServeSettings("m", max_batch_size=4, max_delay_ms=300)

    async def main() -> list[float]:
        batcher = Batcher(model, settings)
        rng = np.random.default_rng(4)
        waits = []
        for _ in range(5):
            started = time.perf_counter()
            inputs = request(rng, 1)
            np.testing.assert_array_equal(await batcher.submit(inputs), model(*inputs))
            waits.append(time.perf_counter() - started)
        # then two arrive together: the second overlaps, and from now on a lone request
        # waits for company again
        await asyncio.gather(batcher.submit(request(rng, 1)), batcher.submit(request(rng, 1)))
        started = time.perf_counter()
        await batcher.submit(request(rng, 1))
        waits.append(time.perf_counter() - started)
        await batcher.drain(1)
        return waits

    waits = run(main())
    assert max(waits[:5]) < 0.15, waits  # not the 300 ms delay
    assert waits[5] >= 0.29, waits


def test_a_lone_request_runs_on_the_event_loop_and_overlapping_ones_in_the_worker() -> None:
    # a thread hand-off each way costs a wake-up that one client pays on every request; a
    # lone request has no one to keep reading for, unless its model call is long
    threads: list[str] = []

    def reference(x: np.ndarray, scale: np.ndarray) -> np.ndarray:
        return np.tanh(x[:, :3] * x[:, 3:]) * scale[:, None]

    def model(delay_s: float) -> Any:
        def predict(x: np.ndarray, scale: np.ndarray) -> np.ndarray:
            threads.append(threading.current_thread().name)
            time.sleep(delay_s)  # above INLINE_CALL_S: only a lone request runs on the loop
            return reference(x, scale)

        return predict

    async def main(delay_s: float) -> None:
        batcher = Batcher(model(delay_s), ServeSettings("m", max_batch_size=4, max_delay_ms=1))
        rng = np.random.default_rng(5)
        for _ in range(3):  # one client: the first call (its time unknown) in the worker
            inputs = request(rng, 1)
            np.testing.assert_array_equal(await batcher.submit(inputs), reference(*inputs))
        await asyncio.gather(*(batcher.submit(request(rng, 1)) for _ in range(5)))
        await batcher.submit(request(rng, 1))  # within a second of company: not alone
        await batcher.drain(1)

    worker, loop_thread = "jiasu-model_0", threading.current_thread().name  # asyncio.run's
    run(main(0.005))
    assert threads[:3] == [worker, loop_thread, loop_thread], threads
    assert set(threads[3:]) == {worker}, threads  # the five together, and the one after
    threads.clear()
    run(main(0.08))  # a lone call of 80 ms stays in the worker: the loop keeps reading
    assert set(threads) == {worker}, threads


def test_requests_of_different_sample_shapes_are_never_concatenated() -> None:
    seen: list[tuple[int, ...]] = []

    def predict(x: np.ndarray) -> np.ndarray:
        seen.append(x.shape)
        return x.sum(axis=1, keepdims=True)

    async def main() -> None:
        batcher = Batcher(predict, ServeSettings("m", max_batch_size=64, max_delay_ms=20))
        shapes = [(1, 5), (2, 7), (1, 5), (3, 7), (1, 5)]
        arrays = [np.ones(s) for s in shapes]
        outputs = await asyncio.gather(*(batcher.submit((a,)) for a in arrays))
        for array, output in zip(arrays, outputs, strict=True):
            np.testing.assert_array_equal(output, array.sum(axis=1, keepdims=True))
        await batcher.drain(1)

    run(main())
    assert sorted(seen) == [(3, 5), (5, 7)]  # one batch per sample shape


def test_a_full_queue_refuses_at_once_and_every_accepted_request_is_answered() -> None:
    gate = threading.Event()
    model = Model(gate=gate)
    settings = ServeSettings("m", max_batch_size=1, max_delay_ms=0, max_queue=3)

    async def main() -> None:
        batcher = Batcher(model, settings)
        rng = np.random.default_rng(4)
        first = asyncio.ensure_future(batcher.submit(request(rng, 1)))
        await asyncio.sleep(0.05)  # the first is in the model (blocked on the gate)
        waiting = [asyncio.ensure_future(batcher.submit(request(rng, 1))) for _ in range(3)]
        await asyncio.sleep(0.01)
        assert batcher.stats.queue_depth == 3 and batcher.stats.in_flight == 4
        started = time.perf_counter()
        with pytest.raises(QueueFull):
            batcher.admit()  # asked before a body is read: the same answer, sooner
        with pytest.raises(QueueFull) as refused:
            await batcher.submit(request(rng, 1))
        assert time.perf_counter() - started < 0.05  # at once, not after the queue moves
        assert refused.value.retry_after_s >= 1
        gate.set()
        results = await asyncio.gather(first, *waiting)
        assert len(results) == 4 and all(r.shape == (1, 3) for r in results)
        await batcher.drain(1)

    run(main())


def test_the_queue_is_bounded_in_bytes_as_well_as_in_requests() -> None:
    """With room for 1,000 requests but 2 KiB, two 784-byte requests fit behind the one in
    the model; the third, or an admission declaring 800 more bytes, is refused at once.
    An empty queue takes a request of any size."""
    gate = threading.Event()
    model = Model(gate=gate)
    settings = ServeSettings("m", max_batch_size=1, max_delay_ms=0, max_queue=1000)
    settings = ServeSettings(**{**settings.to_dict(), "max_queue_mb": 2048 / 2**20})

    async def main() -> None:
        batcher = Batcher(model, settings)
        rng = np.random.default_rng(8)
        big = request(rng, 14)  # 14 rows of 7 float64: 784 bytes
        huge = request(rng, 300)  # 16,800 bytes: more than the whole bound
        first = asyncio.ensure_future(batcher.submit(huge))  # an empty queue takes it
        await asyncio.sleep(0.05)  # in the model, blocked on the gate: nothing waits
        waiting = [asyncio.ensure_future(batcher.submit(big)) for _ in range(2)]
        await asyncio.sleep(0.01)
        assert batcher.stats.queue_depth == 2
        with pytest.raises(QueueFull, match=r"the queue holds 0\.0 MiB .*--max-queue-mb"):
            await batcher.submit(big)
        with pytest.raises(QueueFull):
            batcher.admit(nbytes=800)  # a declared body counts before it is read
        batcher.release(batcher.admit(nbytes=400))  # what fits is admitted
        gate.set()
        results = await asyncio.gather(first, *waiting)
        assert [r.shape[0] for r in results] == [300, 14, 14]
        await batcher.drain(1)

    run(main())


def test_a_request_that_would_wait_past_the_timeout_is_refused_at_once() -> None:
    """Admission control: with model calls of 0.4 s and a 1 s timeout, two requests fit
    (0.4 s and 0.8 s away); the third would be answered after 1.2 s, so it and the rest
    are refused at once instead of timing out later."""
    model = Model(delay_s=0.4)
    settings = ServeSettings("m", max_batch_size=1, max_delay_ms=0, max_queue=100, timeout_s=1.0)

    async def main() -> None:
        batcher = Batcher(model, settings)
        rng = np.random.default_rng(6)
        await batcher.run_alone(request(rng, 1))  # the warm-up times the model
        batcher.release(batcher.admit(rows=100))  # nothing ahead: admitted whatever its size
        tasks = [asyncio.ensure_future(batcher.submit(request(rng, 1))) for _ in range(5)]
        started = time.perf_counter()
        done = await asyncio.gather(*tasks, return_exceptions=True)
        refused = [r for r in done if isinstance(r, QueueFull)]
        answered = [r for r in done if isinstance(r, np.ndarray)]
        assert len(answered) == 2 and len(refused) == 3, done
        assert all("longer than the 1 s request timeout" in str(r) for r in refused)
        assert time.perf_counter() - started < 1.6  # the two ran; nothing waited for a 504
        await batcher.drain(1)

    run(main())


def test_a_wait_bound_refuses_what_the_timeout_would_still_take() -> None:
    """`max_wait_ms` (the tuned p99 bound by default) bounds the admission instead of the
    timeout: with 0.3 s calls and a 0.5 s bound only the request with nothing ahead fits."""
    model = Model(delay_s=0.3)
    settings = ServeSettings(
        "m", max_batch_size=1, max_delay_ms=0, max_queue=100, timeout_s=30.0, max_wait_ms=500
    )

    async def main() -> None:
        batcher = Batcher(model, settings)
        rng = np.random.default_rng(7)
        await batcher.run_alone(request(rng, 1))  # the warm-up times the model
        tasks = [asyncio.ensure_future(batcher.submit(request(rng, 1))) for _ in range(3)]
        done = await asyncio.gather(*tasks, return_exceptions=True)
        refused = [r for r in done if isinstance(r, QueueFull)]
        assert sum(isinstance(r, np.ndarray) for r in done) == 1 and len(refused) == 2, done
        assert all("longer than the 500 ms wait bound (--max-wait-ms)" in str(r) for r in refused)
        await batcher.drain(1)

    run(main())


def test_a_request_that_breaks_its_batch_fails_alone_and_the_others_are_answered() -> None:
    model = Model(delay_s=0.01)
    settings = ServeSettings("m", max_batch_size=32, max_delay_ms=20)
    rng = np.random.default_rng(5)
    good = [request(rng, 2) for _ in range(5)]
    bad = (np.full((1, 6), np.nan), np.ones(1))

    async def main() -> list[object]:
        batcher = Batcher(model, settings)
        results = await asyncio.gather(
            *(batcher.submit(r) for r in [*good[:2], bad, *good[2:]]), return_exceptions=True
        )
        await batcher.drain(1)
        return list(results)

    results = run(main())
    assert isinstance(results[2], ValueError)
    for inputs, output in zip(good, results[:2] + results[3:], strict=True):
        np.testing.assert_array_equal(output, model(*inputs))


def test_a_request_that_timed_out_while_waiting_is_not_computed() -> None:
    gate = threading.Event()
    model = Model(gate=gate)
    settings = ServeSettings("m", max_batch_size=1, max_delay_ms=0)

    async def main() -> None:
        batcher = Batcher(model, settings)
        rng = np.random.default_rng(6)
        first = asyncio.ensure_future(batcher.submit(request(rng, 1)))
        await asyncio.sleep(0.05)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(batcher.submit(request(rng, 7)), 0.05)
        gate.set()
        await first
        after = await batcher.submit(request(rng, 2))
        assert after.shape == (2, 3)
        await batcher.drain(1)

    run(main())
    assert model.calls == [1, 2]  # the 7-row request that gave up never ran


def test_drain_answers_what_was_accepted_then_refuses_and_gives_up_at_its_timeout() -> None:
    model = Model(delay_s=0.05)
    settings = ServeSettings("m", max_batch_size=2, max_delay_ms=0)

    async def main() -> None:
        batcher = Batcher(model, settings)
        rng = np.random.default_rng(7)
        accepted = [asyncio.ensure_future(batcher.submit(request(rng, 1))) for _ in range(6)]
        await asyncio.sleep(0)
        await batcher.drain(5)
        assert all(f.done() and f.result().shape == (1, 3) for f in accepted)
        with pytest.raises(Draining):
            await batcher.submit(request(rng, 1))

    run(main())

    stuck = Model(gate=threading.Event())  # never released: drain must still end

    async def stuck_main() -> None:
        batcher = Batcher(stuck, settings)
        rng = np.random.default_rng(8)
        pending = [asyncio.ensure_future(batcher.submit(request(rng, 1))) for _ in range(5)]
        await asyncio.sleep(0.05)
        started = time.perf_counter()
        await batcher.drain(0.3)
        assert time.perf_counter() - started < 1.0
        results = await asyncio.gather(*pending, return_exceptions=True)
        assert all(isinstance(r, Draining) for r in results)  # answered, not left hanging

    run(stuck_main())
    stuck.gate.set()  # type: ignore[union-attr]  # let the worker thread end


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("max_batch_size", 0, "--max-batch-size is 0; give a whole number of at least 1"),
        ("max_queue", 2.5, "--max-queue is 2.5"),
        ("max_queue_mb", 0, "--max-queue-mb is 0; give a number above 0"),
        ("max_delay_ms", -1.0, "--max-delay-ms is -1.0; give a number at least 0"),
        ("timeout_s", 0.0, "--timeout-s is 0.0; give a number above 0"),
        ("max_wait_ms", float("nan"), "--max-wait-ms is nan; give a number above 0"),
        ("name", "a/b", "model name 'a/b' cannot be used in URLs"),
    ],
)
def test_settings_refuse_bad_values_in_one_sentence(field: str, value: object, words: str) -> None:
    values: dict[str, object] = {"name": "m", field: value}
    with pytest.raises(ConfigError, match=words.replace("?", r"\?").replace("(", r"\(")):
        ServeSettings(**values)  # type: ignore[arg-type]


def test_an_answer_reaches_its_caller_before_the_batch_is_recorded() -> None:
    """The consumer hands out the answers and yields before its bookkeeping (metrics, the
    call-time average), so a lone request's response is not held up by it."""
    order: list[str] = []
    settings = ServeSettings("m", max_batch_size=4, max_delay_ms=0)

    async def main() -> None:
        batcher = Batcher(Model(), settings, on_batch=lambda _record: order.append("recorded"))

        async def caller() -> None:
            await batcher.submit(request(np.random.default_rng(8), 1))
            order.append("answered")

        await asyncio.gather(caller())
        await asyncio.sleep(0.01)
        await batcher.drain(1)

    run(main())
    assert order == ["answered", "recorded"]
