"""`jiasu serve --engine ray`: the app in Ray Serve replicas on a 2-node Ray cluster.

`ray.cluster_utils.Cluster` starts a head node and a second node on loopback, 1 CPU each,
with their own raylets: a replica takes 1 CPU, so two running replicas are one per node.
The module's fixture stops exactly that cluster; each test stops the server it started
(by PID: SIGTERM, which deletes its application, else SIGKILL).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ..predict_models import text_artifact, text_inputs, text_logits
from ..ray_cluster import two_node_cluster

ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")
cluster_utils = pytest.importorskip("ray.cluster_utils")
pytest.importorskip("fastapi")


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    """The module's 2-node cluster (`tests/ray_cluster.py`), stopped when it ends."""
    with two_node_cluster() as address:
        yield address


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _post_json(url: str, payload: dict) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read())


@pytest.mark.timeout(300)
def test_jiasu_serve_on_two_nodes_answers_like_the_model_and_stops_on_sigterm(
    ray_address: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """`jiasu serve --engine ray --replicas 2 --address A`: both replicas run (1 CPU each
    on 1-CPU nodes: one per node), answers equal the eager model's, and SIGTERM deletes
    the application and exits 0."""
    artifact, model = text_artifact(tmp_path_factory)
    port = _free_port()
    command = [
        sys.executable, "-m", "jiasu.cli.main", "serve", str(artifact), "--name", "text",
        "--engine", "ray", "--replicas", "2", "--address", ray_address, "--port", str(port),
        "--max-batch-size", "8", "--max-delay-ms", "5",
    ]  # fmt: skip
    log = tmp_path / "serve.log"
    with open(log, "wb") as sink:  # the environment carries the cluster's token
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 240
        while "serving text (Ray Serve)" not in log.read_text(errors="replace"):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        replicas = serve.status().applications["text"].deployments["text"].replica_states
        assert replicas == {"RUNNING": 2}
        assert len([n for n in ray.nodes() if n["Alive"]]) == 2
        assert ray.available_resources().get("CPU", 0) == 0  # both 1-CPU nodes hold one

        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{base}/v2/health/ready", timeout=30) as answer:
            assert json.loads(answer.read()) == {"ready": True}
        ids, mask = text_inputs(6)
        answers = []
        for row in range(6):  # one request per sample, spread by Ray over the replicas
            inputs = [
                {"name": "input_ids", "datatype": "INT64", "shape": [1, ids.shape[1]],
                 "data": ids[row].tolist()},
                {"name": "attention_mask", "datatype": "INT64", "shape": [1, ids.shape[1]],
                 "data": mask[row].tolist()},
            ]  # fmt: skip
            out = _post_json(f"{base}/v2/models/text/infer", {"inputs": inputs})["outputs"][0]
            answers.append(np.asarray(out["data"], dtype=np.float32).reshape(out["shape"]))
        np.testing.assert_allclose(
            np.concatenate(answers), text_logits(model, ids, mask), rtol=1e-5, atol=1e-5
        )
        os.kill(process.pid, signal.SIGTERM)
        assert process.wait(120) == 0, log.read_text()
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
    assert "text" not in serve.status().applications  # the app went with the server
