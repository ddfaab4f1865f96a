"""The served model as a FastAPI app: the KServe v2 REST endpoints, a plain ``.npy`` and
image endpoint, Prometheus metrics, structured access logs.

This module imports FastAPI: import it after `jiasu.serve.server.require_extra` has
checked the ``serve`` extra. One app serves both engines: uvicorn runs it on one machine
(`jiasu.serve.server`), Ray Serve mounts it in each replica (``@serve.ingress(app)``).
The two inference endpoints
are answered below the access log by `_Inference`, raw ASGI that parses bytes itself (no
per-request pydantic models or framework layers: they cost time at batch 1); FastAPI
routes the rest.
Every error is JSON ``{"error": "one sentence"}`` with a 4xx/5xx status.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import json
import logging
import os
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

import numpy as np
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException

from jiasu import __version__
from jiasu.core.errors import ConfigError, one_line
from jiasu.core.extras import require
from jiasu.serve.batcher import Batcher, Draining, QueueFull, Reservation
from jiasu.serve.metrics import ServeMetrics
from jiasu.serve.npy import read_npy, write_npy
from jiasu.serve.protocol import (
    HEADER_LENGTH,
    RequestError,
    datatype,
    infer_response,
    parse_infer,
    shape_of,
)
from jiasu.serve.settings import ServeSettings

ACCESS_LOG = logging.getLogger("jiasu.serve.access")
JSON = "application/json"
LOG = logging.getLogger("jiasu.serve")
NPY_TYPES = ("application/x-npy", "application/octet-stream", "application/npy")
IMAGE_TYPES = ("image/png", "image/jpeg", "image/jpg")
CACHED_FITS = 64  # distinct (shape, dtype) of requests remembered as fitting the signature
WARMUP_ROUNDS = 3  # model calls per warm-up batch size (first calls allocate and compile)


class ServedModel:
    """A predictor behind a batcher, with its readiness and metrics.

    `start` warms the model up (a few calls at batch 1 and at max_batch_size) and then
    turns ready; `stop` turns readiness false first, then drains accepted requests.
    """

    batcher: Batcher

    def __init__(self, predictor: Any, settings: ServeSettings, *, metrics: bool = True) -> None:
        self.predictor = predictor
        self.settings = settings
        self.signature = predictor.signature
        self.output_name = str(getattr(predictor, "output", None) or "output")
        self.metrics = ServeMetrics(lambda: self.batcher.stats) if metrics else None
        on_batch = self.metrics.observe_batch if self.metrics is not None else None
        self.batcher = Batcher(predictor, settings, on_batch=on_batch)
        self.ready = False
        self.stopping = False
        self.warmup_error: str | None = None
        self.drain_deadline: float | None = None  # time.monotonic() by which to have drained
        self.output_sample: tuple[tuple[int, ...], str] | None = None  # (shape, dtype)
        self._warmup: asyncio.Task[None] | None = None
        self.names = tuple(self.signature.names)
        # Shapes and dtypes (and names) of requests that the signature took as they were:
        # the next such request skips the check, whose outcome depends on nothing else.
        # After a long model call every function on a request's path runs with cold caches
        # (the check: ~6 us warm, ~40 us then; ResNet-50 int8 behind one client).
        self._fitting: set[Any] = set()

    async def start(self) -> None:
        """Start the batcher and the warm-up; the model is ready when the warm-up ends."""
        await self.batcher.start()
        if self._warmup is None:
            self._warmup = asyncio.get_running_loop().create_task(self._warm_up())

    async def wait_ready(self) -> None:
        """Start if needed and wait for the warm-up (Ray Serve replicas call this)."""
        await self.start()
        assert self._warmup is not None
        await self._warmup

    async def stop(self, drain_s: float | None = None) -> None:
        """Readiness false, then answer every accepted request within `drain_s`."""
        self.ready = False
        self.stopping = True
        if self._warmup is not None and not self._warmup.done():
            self._warmup.cancel()
        if drain_s is None:
            drain_s = self.settings.drain_s
            if self.drain_deadline is not None:  # SIGTERM began the drain this long ago
                drain_s = max(0.1, self.drain_deadline - time.monotonic())
        await self.batcher.drain(drain_s)

    async def _warm_up(self) -> None:
        try:
            for batch in (1, self.settings.max_batch_size):
                inputs = self.signature.generate(batch)
                for _ in range(WARMUP_ROUNDS):
                    output = await self.batcher.run_alone(inputs)
                self.output_sample = (tuple(output.shape[1:]), output.dtype.name)
        except Exception as exc:  # the model cannot run: stay live, never ready, say why
            self.warmup_error = (
                f"the model failed its warm-up ({one_line(exc)}); check the artifact"
            )
            LOG.error(self.warmup_error)
            return
        if not self.stopping:
            self.ready = True
            LOG.info("model %s is ready", self.settings.name)

    def admit(self, nbytes: int = 0) -> Reservation:
        """A place in the queue for a request whose body is yet to be read (`_Inference`), or
        `RequestError` 503 at once if a one-sample request would be refused now (queue
        full, the wait past the bound, shutting down)."""
        try:
            return self.batcher.admit(nbytes=nbytes)
        except (QueueFull, Draining) as exc:
            raise _refusal(exc) from None

    async def infer(
        self, inputs: tuple[np.ndarray, ...], reservation: Reservation | None = None
    ) -> np.ndarray:
        """The output rows for checked `inputs`, batched with concurrent requests (in the
        queue place `reservation` holds, that `_Inference` took); `RequestError` 503 (queue
        full, shutting down) or 504 (timeout)."""
        try:
            # wait_for runs submit in a task of its own: the handlers of requests that came
            # together then all take their places (admit) before the first is queued, so the
            # batcher sees them together (awaited in this task instead, each request was
            # queued and run alone before the next was admitted: 24 requests, 24 calls).
            return await asyncio.wait_for(
                self.batcher.submit(inputs, reservation), self.settings.timeout_s
            )
        except (QueueFull, Draining) as exc:
            raise _refusal(exc) from None
        except asyncio.TimeoutError:
            raise RequestError(
                504,
                f"the request was not answered within {self.settings.timeout_s:g} s "
                "(--timeout-s); retry, or send fewer samples per request",
            ) from None

    def check(self, inputs: Any) -> tuple[np.ndarray, ...]:
        """`inputs` (by name, or one array) as the model's arrays; 400 if they do not fit."""
        key = _fit_key(inputs)
        if key is not None and key in self._fitting:
            return self._as_given(inputs)
        try:
            arrays: tuple[np.ndarray, ...] = self.signature.check(inputs)
        except ConfigError as exc:
            raise RequestError(400, str(exc)) from None
        if arrays[0].shape[0] == 0:
            raise RequestError(
                400, "the request has no samples (batch axis 0 is empty); send at least one"
            )
        if (
            key is not None  # only then is `_as_given` defined for `inputs`
            and len(self._fitting) < CACHED_FITS
            and all(a is b for a, b in zip(arrays, self._as_given(inputs), strict=True))
        ):
            self._fitting.add(key)
        return arrays

    def _as_given(self, inputs: Any) -> tuple[np.ndarray, ...]:
        """The arrays of a request `_fit_key` took (one array, or a dict by name), in order."""
        if type(inputs) is np.ndarray:
            return (inputs,)
        return tuple(inputs[name] for name in self.names)

    def check_name(self, name: str, version: str | None = None) -> None:
        if name != self.settings.name or version not in (None, "", "1"):
            served = self.settings.name
            what = f"model {name!r}" + (f" version {version!r}" if version else "")
            raise RequestError(
                404,
                f"{what} is not served here; this server serves {served!r} "
                f"version 1 (GET /v2/models/{served})",
            )

    def metadata(self) -> dict[str, Any]:
        inputs = [
            {"name": s.name, "datatype": datatype(s.dtype), "shape": shape_of(s.shape)}
            for s in self.signature.inputs
        ]
        shape, dtype = self.output_sample or ((), "float32")
        output_shape = [-1, *shape] if self.output_sample else [-1]
        return {
            "name": self.settings.name,
            "versions": ["1"],
            "platform": f"jiasu_{getattr(self.predictor, 'backend', 'model')}",
            "inputs": inputs,
            "outputs": [
                {"name": self.output_name, "datatype": datatype(dtype), "shape": output_shape}
            ],
        }


def _fit_key(inputs: Any) -> Any:
    """What `ServedModel.check`'s outcome depends on for C-contiguous numpy arrays, one or
    a dict by name (the .npy and KServe requests); None for anything else."""
    if type(inputs) is np.ndarray:
        return (inputs.shape, inputs.dtype.str) if inputs.flags.c_contiguous else None
    if type(inputs) is dict and all(
        type(a) is np.ndarray and a.flags.c_contiguous for a in inputs.values()
    ):
        return tuple((name, a.shape, a.dtype.str) for name, a in inputs.items())
    return None


class _Busy(RequestError):
    def __init__(self, retry_after_s: int, why: str) -> None:
        super().__init__(
            503,
            f"the server is busy ({why}); retry after {retry_after_s} s, or add replicas "
            "(--max-queue bounds the queue, --timeout-s the wait)",
        )
        self.retry_after_s = retry_after_s


def build_app(predictor: Any, settings: ServeSettings, *, metrics: bool = True) -> Any:
    """A FastAPI app serving `predictor` (a `jiasu.infer.artifact.Predictor`, or anything
    with a `signature` that is called as ``predictor(*arrays) -> output``).

    Routes: ``GET /v2``, ``/v2/health/live``, ``/v2/health/ready``, ``/v2/models/NAME``
    (and ``/ready``, ``/versions/1``...), ``POST /v2/models/NAME/infer`` (KServe v2),
    ``POST /v1/models/NAME/predict`` (an .npy/.npz body or a PNG/JPEG image), and
    ``GET /metrics`` when `metrics`. ``app.state.model`` is the `ServedModel`; its lifespan
    starts the warm-up and, on shutdown, drains accepted requests within ``drain_s``.
    """
    model = ServedModel(predictor, settings, metrics=metrics)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        await model.start()
        yield
        await model.stop()

    app = _App(
        title=f"jiasu serve {settings.name}",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.model = model
    # inside the access log: all are counted
    app.front = _AccessLog(_Inference(app.routes_asgi, model), metrics=model.metrics)

    def error(exc: RequestError) -> Any:
        headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, _Busy) else None
        return JSONResponse({"error": str(exc)}, status_code=exc.status, headers=headers)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Any, exc: Any) -> Any:
        message = {
            404: f"there is no such endpoint; see GET /v2 and /v2/models/{settings.name}",
            405: "this endpoint does not take that method",
        }
        text = message.get(exc.status_code, str(exc.detail))
        return JSONResponse({"error": text}, status_code=exc.status_code)

    def answer(handler: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        """Turn `RequestError`s and model failures into JSON errors."""

        @functools.wraps(handler)  # FastAPI reads the handler's parameters through this
        async def wrapped(*args: Any, **kwargs: Any) -> Any:
            try:
                return await handler(*args, **kwargs)
            except RequestError as exc:
                return error(exc)
            except Exception as exc:  # the model broke on this request; the server goes on
                LOG.exception("request failed")
                return error(
                    RequestError(500, f"the model failed on this request ({one_line(exc)})")
                )

        return wrapped

    @app.get("/v2")
    async def server_metadata() -> Any:
        return {"name": "jiasu", "version": __version__, "extensions": ["binary_tensor_data"]}

    @app.get("/v2/health/live")
    async def live() -> Any:
        return {"live": True}

    @app.get("/v2/health/ready")
    async def ready() -> Any:
        if model.ready:
            return {"ready": True}
        reason = model.warmup_error or ("shutting down" if model.stopping else "warming up")
        return JSONResponse({"ready": False, "error": reason}, status_code=503)

    @app.get("/v2/models/{name}")
    @app.get("/v2/models/{name}/versions/{version}")
    @answer
    async def metadata(name: str, version: str | None = None) -> Any:
        model.check_name(name, version)
        return model.metadata()

    @app.get("/v2/models/{name}/ready")
    @app.get("/v2/models/{name}/versions/{version}/ready")
    @answer
    async def model_ready(name: str, version: str | None = None) -> Any:
        model.check_name(name, version)
        return JSONResponse(
            {"name": name, "ready": model.ready}, status_code=200 if model.ready else 503
        )

    if model.metrics is not None:
        scrape = model.metrics

        @app.get("/metrics")
        async def metrics_text() -> Any:
            body, kind = scrape.render()
            return Response(body, media_type=kind)

    return app


async def _uploaded_file(headers: Headers, body: bytes | bytearray) -> tuple[bytes, str]:
    """The first file of a multipart/form-data upload (`body`, already read) and its
    content type."""
    require("multipart", extra="serve", purpose="image uploads to jiasu serve")
    from starlette.datastructures import UploadFile
    from starlette.formparsers import MultiPartException, MultiPartParser

    async def chunks() -> AsyncGenerator[bytes, None]:
        yield bytes(body)  # the server's body is a bytearray

    try:
        form = await MultiPartParser(headers, chunks()).parse()
    except MultiPartException as exc:
        raise RequestError(
            400,
            f"the form cannot be read ({exc.message}); upload the image "
            "as a file field, e.g. curl -F file=@cat.png",
        ) from None
    for value in form.values():
        if isinstance(value, UploadFile):
            data = await value.read()
            kind = (value.content_type or "").split(";")[0].strip().lower()
            return data, kind if kind and kind != "application/octet-stream" else "image/"
    raise RequestError(
        400, "the form has no file; upload the image as a file field, e.g. curl -F file=@cat.png"
    )


def _npy_input(body: bytes | bytearray, signature: Any) -> Any:
    """An .npy body (one input) or .npz body (inputs by name); unsigned bytes for a float
    input are pixels, scaled to [0, 1] as `jiasu predict` does (jiasu.data.inputs)."""
    try:
        loaded = read_npy(body)
        if loaded is None:  # an .npz, or an .npy that the fast path leaves to numpy
            loaded = np.load(io.BytesIO(body), allow_pickle=False)
    except Exception as exc:
        raise RequestError(
            400, f"the body is not an .npy or .npz file ({one_line(exc)}); send np.save's bytes"
        ) from None
    if isinstance(loaded, np.ndarray):
        named = {signature.inputs[0].name: loaded} if len(signature.inputs) == 1 else None
        if named is None:
            raise RequestError(
                400,
                f"one array was sent, but the model takes "
                f"{signature.describe()}; send an .npz by name",
            )
    else:
        with loaded:
            named = {key: loaded[key] for key in loaded.files}
    specs = {spec.name: spec for spec in signature.inputs}
    for key, array in named.items():
        if array.dtype == np.uint8 and key in specs and specs[key].is_float:
            named[key] = array.astype(np.float32) / np.float32(255.0)
    return named


def _image_input(body: bytes | bytearray, signature: Any) -> np.ndarray:
    """One image as a batch of one, (1, C, H, W) in [0, 1], for a model of one image input."""
    from jiasu.data.images import pillow, pixels

    shape = signature.single_float_shape()
    if shape is None or len(shape) != 3 or shape[0] not in (1, 3):
        raise RequestError(
            415, f"the model takes {signature.describe()}, not one image; send an .npy body instead"
        )
    image = pillow("image uploads to jiasu serve")
    try:
        picture = image.open(io.BytesIO(body))
        picture.load()
    except image.DecompressionBombError:
        raise RequestError(413, "the image is too large; resize it first") from None
    except (OSError, ValueError) as exc:
        raise RequestError(
            400, f"the body is not a readable image ({one_line(exc)}); send a PNG or JPEG file"
        ) from None
    return pixels(picture, image, shape[0], (shape[1], shape[2]))[None]


def _refusal(exc: QueueFull | Draining) -> RequestError:
    """The 503 for a request the batcher refused: busy (with Retry-After) or shutting down."""
    if isinstance(exc, QueueFull):
        return _Busy(exc.retry_after_s, exc.why)
    return RequestError(503, str(exc))


def _declared_size(scope: Any) -> int:
    """The body's Content-Length in bytes (0 when absent or unreadable: chunked bodies are
    counted once decoded)."""
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                return max(0, int(value))
            except ValueError:
                return 0
    return 0


class _App(FastAPI):
    """FastAPI whose requests meet `front` first (the access log over `_Inference`), ahead of
    FastAPI's own middleware stack, which serves the other routes. As middleware added
    with `add_middleware` they sat below FastAPI's and Starlette's layers (server errors,
    telemetry, body limit: each a call and a wrapped `send` per request), ~0.1 ms of a lone
    ResNet-50 request's path after its model call, caches cold (py-spy, 2000 Hz)."""

    front: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.front(scope, receive, send)

    async def routes_asgi(self, scope: Any, receive: Any, send: Any) -> None:
        """FastAPI's own handling: its middleware stack and routes."""
        await super().__call__(scope, receive, send)


class _Inference:
    """ASGI middleware that answers the two inference endpoints itself, below the access log
    and above FastAPI's routing: ``POST /v2/models/NAME[/versions/V]/infer`` (KServe v2)
    and ``POST /v1/models/NAME/predict`` (.npy/.npz, PNG/JPEG). Every other request goes on
    to the FastAPI routes.

    Why not FastAPI routes: its layers below this one (exception middleware, exit stack,
    router, request/response wrappers) held the GIL ~0.3 ms of every request (py-spy --gil,
    ResNet-50 int8 behind one client, ~1,100 requests in 10 s), about a fifth of the ~1.5 ms
    the server added to the model call. And a request the batcher would refuse now (queue full, the
    wait past the bound, shutting down) is answered 503 before its body is decoded: under
    overload the refusals are half the traffic, and each one that went through the framework
    cost the event loop about as much as an accepted request (the MNIST CNN, max batch 64,
    4000 req/s offered over 512 connections for 15 s: 708 req/s accepted when refused in the
    handler, 896 here)."""

    def __init__(self, app: Any, model: ServedModel) -> None:
        self.app = app
        self.model = model
        self.settings = model.settings

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        route = _ROUTE.match(scope.get("path", "")) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        if scope.get("method") != "POST":
            await _send_error(
                send, RequestError(405, "this endpoint does not take that method; it takes POST")
            )
            return
        declared = _declared_size(scope)
        try:
            reservation = self.model.admit(declared)  # until released
        except RequestError as exc:
            # Read (and drop) the body first: answered with it unread, the connection is
            # reset under the client's upload (ResNet-50's 600 kB bodies: 821 wrk read
            # errors in 60 s of overload).
            await _drain(receive)
            await _send_error(send, exc)
            return
        try:
            name, version = route.group("name") or route.group("pname"), route.group("version")
            headers = Headers(scope=scope)
            self.model.check_name(name, version)
            body = await _read_body(receive, declared, self.settings.max_body_bytes)
            if route.group("name"):
                answer = await self._infer(headers, body, reservation)
            else:
                answer = await self._predict(headers, body, reservation)
        except _ClientGone:
            return  # no one to answer
        except RequestError as exc:
            await _send_error(send, exc)
            return
        except Exception as exc:  # the model broke on this request; the server goes on
            LOG.exception("request failed")
            failed = RequestError(500, f"the model failed on this request ({one_line(exc)})")
            await _send_error(send, failed)
            return
        finally:
            self.model.batcher.release(reservation)  # a no-op once it was queued
        await _send(send, 200, *answer)

    async def _infer(
        self, headers: Headers, body: bytes | bytearray, reservation: Reservation
    ) -> tuple[bytes, str, dict[str, str]]:
        model = self.model
        parsed = parse_infer(body, headers.get(HEADER_LENGTH), model.signature)
        if parsed.output_name not in (None, model.output_name):
            raise RequestError(
                400,
                f"output {parsed.output_name!r} is not one the model has; "
                f"it has {model.output_name!r}",
            )
        output = await model.infer(model.check(parsed.inputs), reservation)
        content, extra = infer_response(self.settings.name, parsed, model.output_name, output)
        return content, "application/octet-stream" if extra else JSON, extra

    async def _predict(
        self, headers: Headers, body: bytes | bytearray, reservation: Reservation
    ) -> tuple[bytes, str, dict[str, str]]:
        model = self.model
        kind = headers.get("content-type", "").split(";")[0].strip().lower()
        if kind.startswith("multipart/form-data"):
            body, kind = await _uploaded_file(headers, body)
        if kind in IMAGE_TYPES or kind.startswith("image/"):
            inputs: Any = _image_input(body, model.signature)
        elif kind in NPY_TYPES or kind == "":
            inputs = _npy_input(body, model.signature)
        else:
            raise RequestError(
                415,
                f"content type {kind!r} is not taken here; send an .npy "
                "or .npz body (application/x-npy) or a PNG/JPEG image",
            )
        output = await model.infer(model.check(inputs), reservation)
        if "application/x-npy" in headers.get("accept", ""):
            return write_npy(output), "application/x-npy", {}
        payload = {
            "model_name": self.settings.name,
            "output": model.output_name,
            "shape": list(output.shape),
            "predictions": output.tolist(),
        }
        return json.dumps(payload).encode(), JSON, {}


# The inference endpoints, under any prefix (Ray Serve's route prefix); path parameters as
# FastAPI's routes took them (one path segment each).
_ROUTE = re.compile(
    r".*/(?:v2/models/(?P<name>[^/]+)(?:/versions/(?P<version>[^/]+))?/infer"
    r"|v1/models/(?P<pname>[^/]+)/predict)$"
)


class _ClientGone(Exception):
    """The client disconnected before its request's body was read."""


async def _read_body(receive: Any, declared: int, limit: int) -> bytearray:
    """The request body, or 413 as soon as it is known to exceed `limit` bytes. A
    bytearray, copied once out of the server's chunks: arrays read from it are views that
    the model may write to, with no second copy (`read_npy`)."""
    too_big = RequestError(
        413,
        f"the request body is larger than {limit} bytes "
        "(--max-body-bytes); send fewer samples per request",
    )
    if declared > limit:
        raise too_big
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
        if not message.get("more_body", False):
            return bytearray(chunks[0]) if len(chunks) == 1 else bytearray().join(chunks)


async def _drain(receive: Any) -> None:
    """Read and drop the rest of the request body."""
    while True:
        message = await receive()
        if message.get("type") != "http.request" or not message.get("more_body"):
            return


async def _send(send: Any, status: int, body: bytes, kind: str, extra: dict[str, str]) -> None:
    headers = [(b"content-type", kind.encode()), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in extra.items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_error(send: Any, exc: RequestError) -> None:
    """`exc` as JSON ``{"error": "..."}``, with Retry-After when the server is busy."""
    extra = {"retry-after": str(exc.retry_after_s)} if isinstance(exc, _Busy) else {}
    await _send(send, exc.status, json.dumps({"error": str(exc)}).encode(), JSON, extra)


class _AccessLog:
    """ASGI middleware: one JSON access-log line and one metrics count per HTTP request."""

    ENDPOINTS = (
        ("/infer", "infer"),
        ("/predict", "predict"),
        ("/ready", "ready"),
        ("/live", "live"),
        ("/metrics", "metrics"),
    )

    def __init__(self, app: Any, metrics: ServeMetrics | None) -> None:
        self.app = app
        self.metrics = metrics
        self.pid = os.getpid()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def send_status(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            path = scope.get("path", "")
            endpoint = next((e for s, e in self.ENDPOINTS if path.endswith(s)), "other")
            if path.startswith("/v2/models/") and endpoint == "other":
                endpoint = "metadata"
            if self.metrics is not None:
                self.metrics.observe_request(endpoint, status[0])
            if ACCESS_LOG.isEnabledFor(logging.INFO):
                client = scope.get("client")
                ACCESS_LOG.info(
                    json.dumps(
                        {
                            "time": round(time.time(), 3),
                            "pid": self.pid,  # which --workers process answered
                            "client": client[0] if client else None,
                            "method": scope.get("method"),
                            "path": path,
                            "status": status[0],
                            "ms": round((time.perf_counter() - started) * 1000, 3),
                        }
                    )
                )
