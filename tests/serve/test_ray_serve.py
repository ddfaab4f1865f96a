"""`jiasu serve --engine ray`: the app in Ray Serve replicas on a 2-node Ray cluster.

`ray.cluster_utils.Cluster` starts a head node and a second node on loopback, 1 CPU each,
with their own raylets: a replica takes 1 CPU, so two running replicas are one per node.
The module's fixture stops exactly that cluster; each test stops the server it started
(its application is deleted by `serve_on_ray` on the way out).
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator

import numpy as np
import pytest

from jiasu.serve.settings import ServeSettings

from ..predict_models import text_artifact, text_inputs, text_logits

ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")
cluster_utils = pytest.importorskip("ray.cluster_utils")
pytest.importorskip("fastapi")

NODE = {"num_cpus": 1, "object_store_memory": 100 * 1024**2}


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    """A 2-node cluster on loopback with token authentication, as a local run has it."""
    from jiasu.engines.ray_local import loopback_only

    with loopback_only():
        cluster = cluster_utils.Cluster(
            initialize_head=True, head_node_args={**NODE, "include_dashboard": False}
        )
        try:
            cluster.add_node(**NODE)
            cluster.wait_for_nodes()
            ray.init(address=cluster.address)
            yield cluster.address
        finally:
            ray.shutdown()
            cluster.shutdown()


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
def test_two_replicas_on_two_nodes_answer_like_the_model(
    ray_address: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from jiasu.serve.ray_engine import serve_on_ray

    artifact, model = text_artifact(tmp_path_factory)
    settings = ServeSettings("text", max_batch_size=8, max_delay_ms=5.0)
    port = _free_port()
    ready = threading.Event()
    stop = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            serve_on_ray(
                artifact, settings, replicas=2, address=ray_address, port=port,
                on_ready=lambda _url: ready.set(), stop=stop,
            )  # fmt: skip
        except BaseException as exc:  # reported by the test's thread below
            failure.append(exc)
            ready.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        assert ready.wait(240) and not failure, failure
        status = serve.status().applications["text"]
        replicas = status.deployments["text"].replica_states
        assert replicas == {"RUNNING": 2}  # 1 CPU each on 1-CPU nodes: one per node
        assert len([n for n in ray.nodes() if n["Alive"]]) == 2
        assert ray.available_resources().get("CPU", 0) == 0

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
    finally:
        stop.set()
        thread.join(120)
    assert not thread.is_alive() and not failure, failure
    assert "text" not in serve.status().applications  # the app is gone with the server
