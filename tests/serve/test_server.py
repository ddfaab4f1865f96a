"""`jiasu serve` as users run it: a real server process per model, Triton's own HTTP
client for the protocol, plain HTTP for everything a client can get wrong.

Each test names what it proves; every server is stopped by its PID (tests/serve/servers.py).
"""

from __future__ import annotations

import collections
import http.client
import io
import json
import re
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import jiasu
from jiasu.cli.main import main

from .servers import Server, running, stop

tritonclient_http = pytest.importorskip("tritonclient.http")


@pytest.fixture(scope="module")
def bert_server(bert_artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("logs") / "bert.log"
    with running(bert_artifact, "--max-delay-ms", "30", "--max-batch-size", "16", log=log) as s:
        yield s


@pytest.fixture(scope="module")
def image_server(image_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("logs") / "cnn.log"
    with running(image_model, "--name", "digits", "--max-body-mb", "0.05", log=log) as s:
        yield s


def _infer_json(
    server: Server, inputs: dict[str, np.ndarray], model: str | None = None
) -> tuple[int, dict]:
    payload = {
        "inputs": [
            {
                "name": k,
                "shape": list(v.shape),
                "datatype": "INT64" if v.dtype.kind == "i" else "FP32",
                "data": v.ravel().tolist(),
            }
            for k, v in inputs.items()
        ]
    }
    return server.json("POST", f"/v2/models/{model or server.name}/infer", payload)


def _output(response: dict) -> np.ndarray:
    tensor = response["outputs"][0]
    return np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"])


def _tokens(rng: np.random.Generator, rows: int, length: int) -> dict[str, np.ndarray]:
    ids = rng.integers(0, 100, (rows, length)).astype(np.int64)
    mask = np.ones_like(ids)
    mask[:, length - 2 :] = rng.integers(0, 2, (rows, 2))  # some padding
    return {"input_ids": ids, "attention_mask": mask}


def test_tritonclient_reads_the_metadata_and_infers_with_named_int64_inputs(
    bert_server: Server, bert_artifact: Path
) -> None:
    client = tritonclient_http.InferenceServerClient(bert_server.url)
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("bert")
    meta = client.get_model_metadata("bert")
    assert [(i["name"], i["datatype"], i["shape"]) for i in meta["inputs"]] == [
        ("input_ids", "INT64", [-1, -1]),
        ("attention_mask", "INT64", [-1, -1]),
    ]
    assert meta["outputs"] == [{"name": "output", "datatype": "FP32", "shape": [-1, 3]}]
    predictor = jiasu.load(bert_artifact)
    tokens = _tokens(np.random.default_rng(0), 3, 10)
    expected = predictor(tokens)
    for binary in (True, False):  # Triton's binary tensor extension, and plain JSON
        inputs = []
        for name, array in tokens.items():
            tensor = tritonclient_http.InferInput(name, list(array.shape), "INT64")
            tensor.set_data_from_numpy(array, binary_data=binary)
            inputs.append(tensor)
        wanted = [tritonclient_http.InferRequestedOutput("output", binary_data=binary)]
        result = client.infer("bert", inputs, outputs=wanted, request_id="r1")
        np.testing.assert_allclose(result.as_numpy("output"), expected, rtol=1e-5, atol=1e-6)
        assert result.get_response()["id"] == "r1"
    with pytest.raises(tritonclient_http.InferenceServerException, match="not served here"):
        client.get_model_metadata("nope")
    client.close()


def test_concurrent_requests_are_batched_and_each_equals_the_predictor_on_it_alone(
    bert_server: Server, bert_artifact: Path
) -> None:
    predictor = jiasu.load(bert_artifact)
    rng = np.random.default_rng(1)
    # two sequence lengths: only requests of equal length share a batch
    requests = [_tokens(rng, int(rng.integers(1, 4)), int(rng.choice([8, 12]))) for _ in range(24)]
    before = _histogram(bert_server.metrics(), "jiasu_batch_size")
    # Every request is sent, each on its own connection, before any answer is read, so all
    # are in flight together (client threads released by a barrier can trickle in one at a
    # time on a busy machine).
    connections = [
        http.client.HTTPConnection("127.0.0.1", bert_server.port, timeout=60) for _ in requests
    ]
    for connection, tokens in zip(connections, requests, strict=True):
        body = json.dumps({"inputs": [
            {"name": k, "shape": list(v.shape), "datatype": "INT64", "data": v.ravel().tolist()}
            for k, v in tokens.items()
        ]}).encode()  # fmt: skip
        connection.request("POST", f"/v2/models/{bert_server.name}/infer", body=body)
    answers = []
    for connection in connections:
        response = connection.getresponse()
        answers.append((response.status, json.loads(response.read())))
        connection.close()
    for tokens, answer in zip(requests, answers, strict=True):
        assert answer[0] == 200, answer
        np.testing.assert_allclose(_output(answer[1]), predictor(tokens), rtol=1e-5, atol=1e-6)
    after = _histogram(bert_server.metrics(), "jiasu_batch_size")
    calls, samples = after[0] - before[0], after[1] - before[1]
    assert samples == sum(len(t["input_ids"]) for t in requests)  # every row computed once
    assert calls < len(requests) / 2  # in batches, not one call per request


def test_an_image_model_answers_tritonclient_npy_png_and_multipart_uploads(
    image_server: Server, image_model: Path
) -> None:
    from PIL import Image

    predictor = jiasu.load(image_model)
    images = np.random.default_rng(2).random((2, 1, 28, 28), dtype=np.float32)
    client = tritonclient_http.InferenceServerClient(image_server.url)
    tensor = tritonclient_http.InferInput("input", [2, 1, 28, 28], "FP32")
    tensor.set_data_from_numpy(images)
    result = client.infer("digits", [tensor])
    np.testing.assert_allclose(result.as_numpy("output"), predictor(images), rtol=1e-5, atol=1e-6)
    client.close()

    buffer = io.BytesIO()
    np.save(buffer, images)
    status, _, body = image_server.request(
        "POST",
        "/v1/models/digits/predict",
        buffer.getvalue(),
        {"Content-Type": "application/x-npy", "Accept": "application/x-npy"},
    )
    assert status == 200
    np.testing.assert_allclose(np.load(io.BytesIO(body)), predictor(images), rtol=1e-5, atol=1e-6)

    pixels = (images[0, 0] * 255).round().astype(np.uint8)
    png = io.BytesIO()
    Image.fromarray(pixels).save(png, format="PNG")
    expected = predictor((pixels.astype(np.float32) / 255)[None, None])
    status, _, body = image_server.request(
        "POST", "/v1/models/digits/predict", png.getvalue(), {"Content-Type": "image/png"}
    )
    assert status == 200
    np.testing.assert_allclose(json.loads(body)["predictions"], expected, rtol=1e-5, atol=1e-6)
    boundary = "jiasuboundary"
    form = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
            f"Content-Type: image/png\r\n\r\n"
        ).encode()
        + png.getvalue()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    status, _, body = image_server.request(
        "POST",
        "/v1/models/digits/predict",
        form,
        {"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert status == 200, body
    np.testing.assert_allclose(json.loads(body)["predictions"], expected, rtol=1e-5, atol=1e-6)


def test_bad_requests_get_a_json_sentence_and_4xx_and_the_server_keeps_serving(
    image_server: Server,
) -> None:
    path = "/v2/models/digits/infer"
    good = np.zeros((1, 1, 28, 28), np.float32)
    cases = [
        (b"{not json", 400, "not valid JSON"),
        (b'{"inputs": 3}', 400, 'no "inputs" list'),
        (
            json.dumps(
                {
                    "inputs": [
                        {
                            "name": "input",
                            "shape": [1, 28, 28, 1],
                            "datatype": "FP32",
                            "data": [0.0] * 784,
                        }
                    ]
                }
            ).encode(),
            400,
            "has shape (1, 28, 28, 1)",
        ),
        (
            json.dumps(
                {
                    "inputs": [
                        {
                            "name": "input",
                            "shape": [1, 1, 28, 28],
                            "datatype": "BYTES",
                            "data": ["a"],
                        }
                    ]
                }
            ).encode(),
            400,
            "datatype 'BYTES'",
        ),
        (
            json.dumps(
                {
                    "inputs": [
                        {
                            "name": "input",
                            "shape": [1, 1, 28, 28],
                            "datatype": "FP32",
                            "data": [0.0] * 5,
                        }
                    ]
                }
            ).encode(),
            400,
            "has 5 values",
        ),
        (
            json.dumps(
                {"inputs": [{"name": "pixels", "shape": [1], "datatype": "FP32", "data": [0.0]}]}
            ).encode(),
            400,
            "not one the model takes",
        ),
    ]
    for body, code, words in cases:
        status, _, data = image_server.request("POST", path, body)
        assert status == code and words in json.loads(data)["error"], (body[:40], data)
    status, answer = _infer_json(image_server, {"input": good}, model="other")
    assert status == 404 and "model 'other' is not served here" in answer["error"]
    status, answer = image_server.json("GET", "/v2/nowhere")
    assert status == 404 and "no such endpoint" in answer["error"]
    status, answer = image_server.json("GET", path)
    assert status == 405 and "takes POST" in answer["error"]
    status, _, data = image_server.request(
        "POST", "/v1/models/digits/predict", b"hello", {"Content-Type": "text/plain"}
    )
    assert status == 415 and "'text/plain' is not taken" in json.loads(data)["error"]
    status, answer = _infer_json(image_server, {"input": good}, model="digits/versions/2")
    assert status == 404 and "version '2'" in answer["error"]
    status, answer = _infer_json(image_server, {"input": good}, model="digits/versions/1")
    assert status == 200 and _output(answer).shape == (1, 10)
    too_big = np.zeros((32, 1, 28, 28), np.float32)  # 100 kB of binary data > --max-body-mb 0.05
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": list(too_big.shape),
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": too_big.nbytes},
                }
            ]
        }
    ).encode()
    status, _, data = image_server.request(
        "POST",
        path,
        header + too_big.tobytes(),
        {"Inference-Header-Content-Length": str(len(header))},
    )
    assert status == 413 and "larger than" in json.loads(data)["error"]
    status, answer = _infer_json(image_server, {"input": good})
    assert status == 200 and _output(answer).shape == (1, 10)  # still serving


def test_a_wrong_dtype_for_token_ids_is_a_400_sentence(bert_server: Server) -> None:
    payload = {
        "inputs": [
            {"name": "input_ids", "shape": [1, 4], "datatype": "FP32", "data": [1.5, 2, 3, 4]},
            {"name": "attention_mask", "shape": [1, 4], "datatype": "INT64", "data": [1, 1, 1, 1]},
        ]
    }
    status, answer = bert_server.json("POST", "/v2/models/bert/infer", payload)
    assert status == 400 and "fractions" in answer["error"] and "int64" in answer["error"]
    del payload["inputs"][1]
    status, answer = bert_server.json("POST", "/v2/models/bert/infer", payload)
    assert status == 400 and "lacks attention_mask" in answer["error"]


def test_metrics_count_what_was_sent(image_server: Server) -> None:
    before = image_server.metrics()
    images = np.zeros((3, 1, 28, 28), np.float32)
    for _ in range(4):
        assert _infer_json(image_server, {"input": images})[0] == 200
    for _ in range(2):
        assert image_server.request("POST", "/v2/models/digits/infer", b"{")[0] == 400
    after = image_server.metrics()

    def delta(name: str, labels: str) -> float:
        return _sample(after, name, labels) - _sample(before, name, labels)

    assert delta("jiasu_requests_total", 'code="200",endpoint="infer"') == 4
    assert delta("jiasu_requests_total", 'code="400",endpoint="infer"') == 2
    assert delta("jiasu_request_failures_total", 'code="400",endpoint="infer"') == 2
    calls = _histogram(after, "jiasu_batch_size")[0] - _histogram(before, "jiasu_batch_size")[0]
    samples = _histogram(after, "jiasu_batch_size")[1] - _histogram(before, "jiasu_batch_size")[1]
    assert samples == 12 and 1 <= calls <= 4
    queued = (
        _histogram(after, "jiasu_queue_seconds")[0] - _histogram(before, "jiasu_queue_seconds")[0]
    )
    assert queued == 4  # one queue time per accepted request
    assert _sample(after, "jiasu_in_flight", "") == 0


def _closed_by_server(connection: http.client.HTTPConnection, wait_s: float) -> bool:
    """Whether the server closes the idle `connection` within `wait_s` (EOF readable)."""
    assert connection.sock is not None
    readable, _, _ = select.select([connection.sock], [], [], wait_s)
    return bool(readable) and connection.sock.recv(1, socket.MSG_PEEK) == b""


def test_idle_keep_alive_connections_stay_open_past_uvicorns_5_s_and_close_when_told(
    image_server: Server, image_model: Path, tmp_path: Path
) -> None:
    # uvicorn's default closed idle connections after 5 s, under clients about to reuse them
    # (paced load: wrk read errors). By default jiasu keeps them 75 s.
    connection = http.client.HTTPConnection("127.0.0.1", image_server.port, timeout=10)
    try:
        connection.request("GET", "/v2/health/live")
        assert connection.getresponse().read() is not None
        assert not _closed_by_server(connection, 6.0)
        connection.request("GET", "/v2/health/live")  # the same connection, reused
        assert connection.getresponse().status == 200
    finally:
        connection.close()
    with running(image_model, "--keep-alive-s", "1", log=tmp_path / "serve.log") as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            connection.request("GET", "/v2/health/live")
            response = connection.getresponse()
            # read the body: bytes left unread on the socket would look like "not closed"
            assert response.status == 200 and response.read() is not None
            assert _closed_by_server(connection, 4.0)
        finally:
            connection.close()


def test_metrics_of_several_workers_count_every_request_whichever_answers_the_scrape(
    image_model: Path, tmp_path: Path
) -> None:
    """With --workers 2 the requests are spread over two processes; every scrape, answered
    by either, counts all of them, and the folder of counts jiasu made is removed after."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    log = tmp_path / "workers.log"
    with running(image_model, "--workers", "2", log=log, env={"TMPDIR": str(temp)}) as server:
        deadline = time.monotonic() + 120
        ready = 0
        while ready < 10 and time.monotonic() < deadline:  # both workers warmed up
            ready = ready + 1 if server.request("GET", "/v2/health/ready")[0] == 200 else 0
        folders = [p.name for p in temp.iterdir()]
        assert len(folders) == 1 and folders[0].startswith("jiasu-serve-metrics-"), folders
        images = np.zeros((1, 1, 28, 28), np.float32)
        statuses: list[int] = []

        def send(_: int) -> None:  # each request on a new connection: either worker takes it
            statuses.extend(_infer_json(server, {"input": images})[0] for _ in range(10))

        def answered_by() -> set[int]:
            lines = [json.loads(x) for x in server.log_text().splitlines() if '"pid"' in x]
            return {x["pid"] for x in lines if x["path"].endswith("/infer")}

        while len(answered_by()) < 2 and len(statuses) < 400:  # until both have answered
            _in_threads(send, 8)
        assert len(answered_by()) == 2 and statuses == [200] * len(statuses)
        sent = len(statuses)
        for _ in range(4):  # each scrape lands on either worker
            metrics = server.metrics()
            assert _sample(metrics, "jiasu_requests_total", 'code="200",endpoint="infer"') == sent
            assert _sample(metrics, "jiasu_in_flight", "") == 0
    assert list(temp.iterdir()) == []


def test_a_busy_server_answers_503_with_retry_after_at_once_and_a_slow_request_504(
    slow_model: Path, tmp_path: Path
) -> None:
    args = (
        "--trust-code",
        "--max-batch-size",
        "1",
        "--max-delay-ms",
        "0",
        "--max-queue",
        "2",
        "--timeout-s",
        "0.3",
    )
    env = {"PYTHONPATH": str(slow_model.parent)}
    with running(slow_model, *args, log=tmp_path / "slow.log", env=env) as server:
        count = 8
        barrier = threading.Barrier(count)
        outcomes: list[tuple[int, dict[str, str], float, bytes] | None] = [None] * count
        refused = threading.Event()
        malformed: list[tuple[int, bytes]] = []

        def send_malformed() -> None:
            # While the model is busy, a body that is not even JSON is refused before it
            # is read (503, not 400): a refusal under overload costs the server little.
            if refused.wait(5):
                status, _, data = server.request("POST", "/v2/models/slow/infer", b"{not json")
                malformed.append((status, data))

        spy = threading.Thread(target=send_malformed)
        spy.start()

        def send(i: int) -> None:
            body = json.dumps(
                {
                    "inputs": [
                        {"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [i, 1, 2, 3]}
                    ]
                }
            ).encode()
            barrier.wait()
            started = time.perf_counter()
            status, headers, data = server.request("POST", "/v2/models/slow/infer", body)
            outcomes[i] = (status, headers, time.perf_counter() - started, data)
            if status == 503:
                refused.set()

        _in_threads(send, count)
        spy.join()
        assert [m[0] for m in malformed] == [503], malformed
        statuses = collections.Counter(o[0] for o in outcomes if o is not None)
        # The first is run and outlasts the 0.3 s timeout (the model takes 0.4 s): 504. The
        # others would wait behind it longer than the timeout (the warm-up timed the
        # model), so they are refused at once, as they would be by a full queue.
        assert statuses == {504: 1, 503: 7}, outcomes  # every request got an answer
        for status, headers, seconds, data in filter(None, outcomes):
            if status == 503:
                error = json.loads(data)["error"]
                assert int(headers["retry-after"]) >= 1 and "server is busy" in error
                assert "longer than the 0.3 s request timeout" in error
                assert seconds < 0.35  # at once: before the model's first call (0.4 s) ends
            if status == 504:
                assert "not answered within 0.3 s" in json.loads(data)["error"]
        metrics = server.metrics()
        assert _sample(metrics, "jiasu_requests_total", 'code="503",endpoint="infer"') == 8


def test_sigterm_during_load_turns_away_new_work_and_loses_no_accepted_request(
    slow_model: Path, tmp_path: Path
) -> None:
    log = tmp_path / "drain.log"
    args = ("--trust-code", "--max-batch-size", "8", "--max-delay-ms", "5", "--drain-s", "5")
    env = {"PYTHONPATH": str(slow_model.parent)}
    with running(slow_model, *args, log=log, env=env) as server:
        stop_sending = threading.Event()
        results: list[tuple[str, object]] = []
        lock = threading.Lock()

        def client(i: int) -> None:
            while not stop_sending.is_set():
                x = [float(i), 1.0, 2.0, 3.0]
                body = json.dumps(
                    {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": x}]}
                ).encode()
                try:
                    status, _, data = server.request(
                        "POST", "/v2/models/slow/infer", body, timeout=15
                    )
                except OSError as exc:  # refused or reset: the server no longer accepts
                    with lock:
                        results.append(("error", type(exc).__name__))
                    return
                with lock:
                    results.append(("status", status))
                if status == 200:
                    assert json.loads(data)["outputs"][0]["data"] == [2 * v for v in x]

        threads = [threading.Thread(target=client, args=(i,)) for i in range(12)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)  # two or three batches in
        signalled = time.monotonic()
        code = stop(server.process, timeout_s=15)
        exited_s = time.monotonic() - signalled
        stop_sending.set()
        for thread in threads:
            thread.join(20)
    assert code == 0, server.log_text()
    assert exited_s < 5 + 3  # --drain-s 5, plus the interpreter's own exit
    statuses = collections.Counter(v for k, v in results if k == "status")
    assert set(statuses) <= {200, 503} and statuses[200] >= 8, results
    errors = {v for k, v in results if k == "error"}
    assert errors <= {
        "ConnectionRefusedError",
        "ConnectionResetError",
        "RemoteDisconnected",
        "BrokenPipeError",
    }, errors
    # Every request the server accepted (logged) reached its client, with its answer.
    logged = collections.Counter(
        line["status"]
        for line in map(json.loads, re.findall(r"^\{.*\}$", log.read_text(), re.M))
        if line["path"] == "/v2/models/slow/infer"
    )
    assert logged == statuses, (logged, statuses)


def test_a_draining_model_turns_unready_before_it_finishes_its_requests() -> None:
    import asyncio

    from jiasu.core.signature import InputSignature
    from jiasu.serve.app import ServedModel
    from jiasu.serve.settings import ServeSettings

    class Slow:
        signature = InputSignature.parse("x:float32[B,2]")

        def __call__(self, x: np.ndarray) -> np.ndarray:
            time.sleep(0.2)
            return x + 1

    async def scenario() -> None:
        model = ServedModel(Slow(), ServeSettings("slow", max_delay_ms=0), metrics=False)
        await model.wait_ready()
        assert model.ready
        answer = asyncio.ensure_future(model.infer((np.zeros((1, 2), np.float32),)))
        await asyncio.sleep(0.05)
        stopping = asyncio.ensure_future(model.stop(5))
        await asyncio.sleep(0)
        assert not model.ready and not answer.done()  # unready first, the request in flight
        await stopping
        np.testing.assert_array_equal(answer.result(), np.ones((1, 2), np.float32))

    asyncio.run(scenario())


def test_a_request_shape_that_fit_once_is_taken_again_and_a_misfit_is_still_refused() -> None:
    """`ServedModel.check` remembers the (shape, dtype) of one-array requests that fit as
    sent; the outcome for any other request is the signature's own."""
    from jiasu.core.signature import InputSignature
    from jiasu.serve.app import ServedModel
    from jiasu.serve.protocol import RequestError
    from jiasu.serve.settings import ServeSettings

    class Tabular:  # not an image: 5 features a row
        signature = InputSignature.parse("x:float32[B,5]")

        def __call__(self, x: np.ndarray) -> np.ndarray:
            return x.sum(axis=1, keepdims=True)

    class Counted:  # the signature, counting its checks
        def __init__(self, signature: InputSignature) -> None:
            self.signature = signature
            self.checks = 0

        def check(self, given: object) -> tuple[np.ndarray, ...]:
            self.checks += 1
            return self.signature.check(given)

    model = ServedModel(Tabular(), ServeSettings("tabular"), metrics=False)
    model.signature = counted = Counted(Tabular.signature)
    rows = np.ones((3, 5), np.float32)
    for _ in range(2):
        (checked,) = model.check(rows)
        assert checked is rows
    assert counted.checks == 1  # the second time without the signature
    for _ in range(2):  # converted, never remembered: each time a new float32 array
        (converted,) = model.check(rows.astype(np.float64))
        assert converted.dtype == np.float32 and converted is not rows
    assert counted.checks == 3
    strided = np.ones((3, 10), np.float32)[:, ::2]  # the same shape and dtype, not C order
    (contiguous,) = model.check(strided)
    assert contiguous.flags.c_contiguous and contiguous is not strided
    for bad in (np.ones((3, 4), np.float32), np.ones((0, 5), np.float32), {"y": rows}):
        with pytest.raises(RequestError) as refused:
            model.check(bad)
        assert refused.value.status == 400
    checks = counted.checks
    for _ in range(2):  # by name, as KServe requests come
        (named,) = model.check({"x": rows})
        assert named is rows
    assert counted.checks == checks + 1


def test_not_an_artifact_a_port_in_use_and_bad_options_are_one_sentence(
    image_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("hello")
    assert main(["serve", str(tmp_path / "notes")]) == 2
    assert _one_error_line(capsys).startswith("error: ")
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        port = holder.getsockname()[1]
        assert main(["serve", str(image_model), "--port", str(port)]) == 2
        assert f"port {port} on 127.0.0.1 is in use" in _one_error_line(capsys)
    finally:
        holder.close()
    for args, words in [
        (["--replicas", "2"], "--replicas and --address apply to --engine ray"),
        (["--p99-ms", "50"], "--p99-ms is the bound for --tune"),
        (["--max-batch-size", "0"], "--max-batch-size is 0"),
        (["--host", "no.such.host.invalid"], "is not an address of this machine"),
    ]:
        assert main(["serve", str(image_model), "--port", "0", *args]) == 2
        assert words in _one_error_line(capsys)


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    return err


def _in_threads(work: object, count: int) -> None:
    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]  # type: ignore[arg-type]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)


def _sample(text: str, name: str, labels: str) -> float:
    """The value of one sample in Prometheus text (0 when absent)."""
    wanted = f"{name}{{{labels}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.split()[-1])
    return 0.0


def _histogram(text: str, name: str) -> tuple[float, float]:
    """(count, sum) of a histogram in Prometheus text."""
    return _sample(text, f"{name}_count", ""), _sample(text, f"{name}_sum", "")
