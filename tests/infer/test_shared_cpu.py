"""`jiasu.load(..., shared_cpu=True)`, as `jiasu serve` loads: settings that only pay on an
otherwise idle machine are dropped (ONNX Runtime's spinning pool), the answers unchanged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ..predict_models import save_optimized, tabular_mlp

pytest.importorskip("onnxruntime")
SPIN = "session.intra_op.allow_spinning"


@pytest.fixture(scope="module")
def spinning_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ONNX Runtime artifact of a tabular MLP whose settings ask for a spinning pool of 2
    threads (as `onnxruntime-spin` records them)."""
    folder = save_optimized(
        tabular_mlp(), torch.randn(4, 30), tmp_path_factory.mktemp("spin") / "a", ("onnxruntime",)
    )
    described = folder / "artifact.json"
    meta = json.loads(described.read_text())
    assert meta["candidate"]["backend"] == "onnxruntime"
    meta["candidate"]["settings"].update(spinning=True, threads=2, parallel=1)
    described.write_text(json.dumps(meta))
    return folder


def _loaded_spin(folder: Path, monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> tuple[str, Any]:
    """What the real session was opened with for `allow_spinning`, and the predictor."""
    import jiasu
    from jiasu.infer.backends import onnxruntime

    opened: list[Any] = []
    real = onnxruntime.open_session

    def recording(path: Path, settings: Any) -> Any:
        opened.append(real(path, settings))
        return opened[-1]

    monkeypatch.setattr(onnxruntime, "open_session", recording)
    predictor = jiasu.load(folder, **kwargs)
    (session,) = opened
    return session.get_session_options().get_session_config_entry(SPIN), predictor


def test_a_shared_cpu_load_drops_the_spinning_pool_and_answers_the_same(
    spinning_artifact: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alone, predictor = _loaded_spin(spinning_artifact, monkeypatch)
    shared, shared_predictor = _loaded_spin(spinning_artifact, monkeypatch, shared_cpu=True)
    assert (alone, shared) == ("1", "0")
    x = np.random.default_rng(0).standard_normal((16, 30)).astype(np.float32)
    np.testing.assert_allclose(shared_predictor(x), predictor(x), rtol=1e-6, atol=1e-6)
    # the artifact itself is untouched: it still records what was measured
    described = spinning_artifact / "artifact.json"
    assert json.loads(described.read_text())["candidate"]["settings"]["spinning"]


def test_jiasu_serve_loads_its_model_for_a_shared_cpu(
    spinning_artifact: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server's own loader (`--workers` processes use the same) asks for shared_cpu."""
    pytest.importorskip("fastapi")
    from jiasu.infer import artifact

    seen: list[bool] = []
    real = artifact.load

    def recording(directory: Any, **kwargs: Any) -> Any:
        seen.append(kwargs.get("shared_cpu", False))
        return real(directory, **kwargs)

    monkeypatch.setattr(artifact, "load", recording)
    from jiasu.serve import server

    config = {"directory": str(spinning_artifact), "trust_code": False, "settings": {"name": "m"}}
    monkeypatch.setenv(server.ENVIRONMENT, json.dumps(config))
    server.app_from_environment()
    assert seen == [True]
