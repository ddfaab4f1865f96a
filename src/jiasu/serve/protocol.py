"""The Open Inference Protocol (KServe v2) over REST: request bodies to arrays, arrays to
response bodies, with the binary tensor data extension that Triton's clients use.

A request is JSON ``{"id"?, "parameters"?, "inputs": [{"name", "shape", "datatype",
"data"}], "outputs"?: [{"name", "parameters"?: {"binary_data": bool}}]}``; with the binary
extension the JSON header is followed by the raw bytes of the inputs that say
``"parameters": {"binary_data_size": n}``, and the header's length is in the
``Inference-Header-Content-Length`` HTTP header. Responses mirror it. Every problem with
a body is a `RequestError` whose message is one sentence.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np

from jiasu.core.signature import InputSignature

HEADER_LENGTH = "Inference-Header-Content-Length"
# numpy dtype name <-> the protocol's datatype name (BYTES, strings, is not a model input here)
DATATYPES = {
    "bool": "BOOL",
    "uint8": "UINT8",
    "int8": "INT8",
    "int16": "INT16",
    "int32": "INT32",
    "int64": "INT64",
    "uint16": "UINT16",
    "uint32": "UINT32",
    "uint64": "UINT64",
    "float16": "FP16",
    "float32": "FP32",
    "float64": "FP64",
}
NUMPY_OF = {v: k for k, v in DATATYPES.items()}


class RequestError(Exception):
    """A request the server cannot answer as sent: HTTP `status` and one sentence."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclasses.dataclass(frozen=True)
class InferRequest:
    id: str | None
    inputs: dict[str, np.ndarray]  # by name, as sent (checked against the signature later)
    binary_output: bool  # return the output as raw bytes after the JSON header
    output_name: str | None  # the output asked for, None for all


def datatype(dtype: np.dtype[Any] | str) -> str:
    """The protocol's name for a numpy dtype (``float32`` -> ``FP32``)."""
    return DATATYPES[np.dtype(dtype).name]


def shape_of(shape: tuple[int | str, ...]) -> list[int]:
    """A signature shape in the protocol: symbolic axes (B, S) are -1."""
    return [d if isinstance(d, int) else -1 for d in shape]


def parse_infer(
    body: bytes | bytearray, header_length: str | None, signature: InputSignature
) -> InferRequest:
    """The inputs of an infer request body (JSON, or JSON + binary tensors)."""
    length = _header_length(header_length, len(body))
    header, blobs = (body, b"") if length is None else (body[:length], body[length:])
    try:
        request = json.loads(header)
    except (UnicodeDecodeError, ValueError) as exc:
        raise RequestError(
            400,
            f"the request body is not valid JSON ({exc}); send a KServe v2 "
            'infer request: {"inputs": [{"name", "shape", "datatype", "data"}]}',
        ) from None
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list):
        raise RequestError(
            400,
            'the request has no "inputs" list; send {"inputs": [{"name", '
            '"shape", "datatype", "data"}, ...]}',
        )
    inputs: dict[str, np.ndarray] = {}
    offset = 0
    for index, tensor in enumerate(request["inputs"]):
        name, array, used = _tensor(tensor, index, blobs, offset, signature)
        if name in inputs:
            raise RequestError(400, f"input {name!r} is sent twice; send each input once")
        inputs[name] = array
        offset += used
    if offset != len(blobs):
        raise RequestError(
            400,
            f"the body has {len(blobs) - offset} bytes after the inputs' "
            "binary data; binary_data_size must add up to the bytes sent",
        )
    parameters = _object(request.get("parameters"), "parameters")
    binary = bool(parameters.get("binary_data_output", False))
    output_name = None
    outputs = request.get("outputs")
    if outputs is not None:
        if not isinstance(outputs, list) or not all(isinstance(o, dict) for o in outputs):
            raise RequestError(400, '"outputs" must be a list of {"name": ...} objects')
        if outputs:
            first = outputs[0]
            output_name = str(first.get("name"))
            out_parameters = _object(first.get("parameters"), "outputs parameters")
            binary = bool(out_parameters.get("binary_data", binary))
    request_id = request.get("id")
    return InferRequest(
        None if request_id is None else str(request_id), inputs, binary, output_name
    )


def infer_response(
    model: str, request: InferRequest, output_name: str, output: np.ndarray
) -> tuple[bytes, dict[str, str]]:
    """The response body and extra headers for `output` (JSON, or JSON + binary)."""
    tensor: dict[str, Any] = {
        "name": output_name,
        "datatype": datatype(output.dtype),
        "shape": list(output.shape),
    }
    blob = b""
    if request.binary_output:
        blob = np.ascontiguousarray(output).tobytes()
        tensor["parameters"] = {"binary_data_size": len(blob)}
    else:
        tensor["data"] = output.ravel().tolist()
    response: dict[str, Any] = {"model_name": model, "model_version": "1", "outputs": [tensor]}
    if request.id is not None:
        response["id"] = request.id
    header = json.dumps(response, separators=(",", ":")).encode()
    if not blob:
        return header, {}
    return header + blob, {HEADER_LENGTH: str(len(header))}


def _header_length(value: str | None, body_length: int) -> int | None:
    if value is None:
        return None
    try:
        length = int(value)
    except ValueError:
        length = -1
    if not 0 <= length <= body_length:
        raise RequestError(
            400,
            f"{HEADER_LENGTH} is {value!r}; give the JSON header's length "
            f"in bytes, at most the body's {body_length}",
        )
    return length


def _object(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RequestError(400, f'"{what}" must be a JSON object')
    return value


def _tensor(
    tensor: Any, index: int, blobs: bytes | bytearray, offset: int, signature: InputSignature
) -> tuple[str, np.ndarray, int]:
    """One input tensor: its name, its array, and the binary bytes it used."""
    if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
        raise RequestError(
            400, f'input {index} has no name; each input is {{"name", "shape", "datatype", "data"}}'
        )
    name = tensor["name"]
    if name not in signature.names:
        raise RequestError(
            400, f"input {name!r} is not one the model takes; it takes {signature.describe()}"
        )
    kind = tensor.get("datatype")
    if kind not in NUMPY_OF:
        raise RequestError(
            400, f"input {name!r} has datatype {kind!r}; use one of {', '.join(DATATYPES.values())}"
        )
    dtype = np.dtype(NUMPY_OF[kind])
    shape = tensor.get("shape")
    if not (isinstance(shape, list) and all(type(d) is int and d >= 0 for d in shape)):
        raise RequestError(
            400,
            f"input {name!r} has shape {shape!r}; give a list of sizes, "
            "the batch first, e.g. [1, 3, 32, 32]",
        )
    count = int(np.prod(shape, dtype=np.int64))
    parameters = _object(tensor.get("parameters"), f"input {name} parameters")
    size = parameters.get("binary_data_size")
    if size is not None:
        if type(size) is not int or size != count * dtype.itemsize or offset + size > len(blobs):
            raise RequestError(
                400,
                f"input {name!r} says binary_data_size {size!r}, but "
                f"shape {shape} of {kind} is {count * dtype.itemsize} bytes"
                f" and {len(blobs) - offset} were sent",
            )
        flat = np.frombuffer(blobs, dtype=dtype, count=count, offset=offset)
        return name, flat.reshape(shape), size
    data = tensor.get("data")
    if data is None:
        raise RequestError(
            400, f'input {name!r} has no "data" and no binary_data_size; send its values'
        )
    try:
        array = np.asarray(data, dtype=dtype)
    except (TypeError, ValueError, OverflowError):
        raise RequestError(
            400,
            f"input {name!r} has data that are not {kind} numbers; send a "
            "flat or nested list of numbers",
        ) from None
    if array.size != count:
        raise RequestError(
            400,
            f"input {name!r} has {array.size} values, but shape {shape} "
            f"needs {count}; send one value per element",
        )
    return name, array.reshape(shape), 0
