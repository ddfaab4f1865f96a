"""Reports to TensorBoard and MLflow through their own libraries, read back from disk."""

from __future__ import annotations

import builtins
import json
from pathlib import Path
from typing import Any

import pytest

from jiasu.core.errors import MissingExtraError
from jiasu.report import build_report, from_demo
from jiasu.report.model import Report

DEMO = Path(__file__).resolve().parents[1] / "report" / "data" / "demo_mnist_quick.json"


@pytest.fixture
def report() -> Report:
    data: dict[str, Any] = json.loads(DEMO.read_text())
    return build_report([from_demo(data, flops_per_sample=4.09e5)], peak=None)


def test_tensorboard_events_read_back(report: Report, tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason="tensorboard is not installed: jiasu[track]")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from jiasu.track import to_tensorboard

    folders = to_tensorboard(report, tmp_path)
    assert [f.name for f in folders] == ["baseline", "accelerated"]
    run = report.runs[0]
    for folder, entry in zip(folders, run.entries, strict=True):
        events = EventAccumulator(str(folder))
        events.Reload()
        tags = set(events.Tags()["scalars"])
        assert {"curve/accuracy", "curve/loss", "summary/speedup", "summary/accuracy"} <= tags
        (point,) = events.Scalars("curve/accuracy")
        assert point.step == 1 and point.value == pytest.approx(entry.curve[0].accuracy)
        (speedup,) = events.Scalars("summary/speedup")
        assert speedup.value == pytest.approx(entry.speedup)
    # curve points carry real wall time: the accelerated side got there sooner
    base, fast = (EventAccumulator(str(f)) for f in folders)
    base.Reload()
    fast.Reload()
    assert fast.Scalars("curve/accuracy")[0].wall_time < base.Scalars("curve/accuracy")[0].wall_time


def test_mlflow_run_read_back(
    report: Report, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mlflow = pytest.importorskip("mlflow", reason="mlflow is not installed: jiasu[track]")
    from jiasu.track import to_mlflow
    from jiasu.track.common import TrackingError

    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    with pytest.raises(TrackingError, match="refused"):
        to_mlflow(report, (tmp_path / "refused").as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # mlflow-skinny has no sqlite store

    uri = (tmp_path / "mlruns").as_uri()
    (run_id,) = to_mlflow(report, uri)
    client = mlflow.MlflowClient(tracking_uri=uri)
    logged = client.get_run(run_id)
    assert logged.info.status == "FINISHED"
    assert logged.data.params["kind"] == "demo"
    assert logged.data.params["baseline"] == "baseline"
    entry = report.runs[0].entries[1]
    assert logged.data.metrics["accelerated.speedup"] == pytest.approx(entry.speedup)
    history = client.get_metric_history(run_id, "accelerated.curve.accuracy")
    assert [m.step for m in history] == [1]
    artefacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"report.json", "report.html"} <= artefacts
    local = client.download_artifacts(run_id, "report.json", str(tmp_path / "dl"))
    assert json.loads(Path(local).read_text())["runs"][0]["kind"] == "demo"


def test_missing_package_names_the_extra(
    report: Report, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_import = builtins.__import__

    def no_trackers(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.split(".")[0] in ("mlflow", "tensorboard"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_trackers)
    monkeypatch.setattr("importlib.import_module", lambda name: no_trackers(name))
    from jiasu.track import to_mlflow, to_tensorboard

    with pytest.raises(MissingExtraError, match=r"jiasu\[track\]"):
        to_tensorboard(report, tmp_path)
    with pytest.raises(MissingExtraError, match=r"jiasu\[track\]"):
        to_mlflow(report, "file:///nowhere")
