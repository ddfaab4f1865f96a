"""`jiasu serve --tune`: the batching settings measured against the real server, recorded
in the artifact, and used by `jiasu serve` by default."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from jiasu.core.errors import CheckpointError, ConfigError

from ..predict_models import tabular_artifact
from .servers import running

pytest.importorskip("fastapi")


@pytest.fixture
def artifact(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the tabular MLP's artifact (tuning writes into it)."""
    built, _ = tabular_artifact(tmp_path_factory)
    return Path(shutil.copytree(built, tmp_path / "mlp"))


def test_tune_records_the_best_measured_settings_and_serve_uses_them(
    artifact: Path, tmp_path: Path
) -> None:
    from jiasu.infer.artifact import load
    from jiasu.serve.tune import TIE, recorded_settings, tune

    before = json.loads((artifact / "artifact.json").read_text())
    result = tune(
        artifact, p99_ms=5000, batch_sizes=(1, 8), delays_ms=(0.0,), concurrencies=(1, 4),
        seconds=0.4,
    )  # fmt: skip
    pairs = [(t.max_batch_size, t.max_delay_ms, t.concurrency) for t in result.trials]
    assert pairs == [(1, 0.0, 1), (1, 0.0, 4), (8, 0.0, 1), (8, 0.0, 4)]
    assert all(t.failed == 0 and t.rps > 0 and t.p50_ms <= t.p99_ms for t in result.trials)
    best = max(result.trials, key=lambda t: t.rps)
    assert result.goodput_rps >= (1 - TIE) * best.rps  # the pick: the fastest within TIE
    chosen = {"max_batch_size": result.max_batch_size, "max_delay_ms": result.max_delay_ms}
    assert recorded_settings(artifact) == chosen
    after = json.loads((artifact / "artifact.json").read_text())
    assert after.pop("serve")["trials"][0]["concurrency"] == 1
    assert after == before  # nothing else in the description changed
    load(artifact)  # still an artifact jiasu loads
    assert "chosen: --max-batch-size" in result.text()

    with running(artifact, "--no-access-log", log=tmp_path / "serve.log") as server:
        announced = server.log_text()
    expected = (
        f"max batch {result.max_batch_size}, max delay {result.max_delay_ms:g} ms, "
        "refusing waits over 30000 ms"  # the request timeout: no --max-wait-ms given
    )
    assert expected in announced


def test_a_bound_no_setting_meets_is_one_sentence_and_records_nothing(artifact: Path) -> None:
    from jiasu.serve.tune import tune

    description = (artifact / "artifact.json").read_bytes()
    with pytest.raises(ConfigError, match=r"no setting kept p99 within 1e-06 ms .* raise --p99-ms"):
        tune(artifact, p99_ms=1e-6, batch_sizes=(4,), delays_ms=(0.0,), concurrencies=(2,),
             seconds=0.2)  # fmt: skip
    assert (artifact / "artifact.json").read_bytes() == description


def test_only_a_folder_jiasu_wrote_is_tuned(tmp_path: Path) -> None:
    from jiasu.serve.tune import tune

    folder = tmp_path / "theirs"
    folder.mkdir()
    (folder / "artifact.json").write_text('{"format": "not-jiasu"}')
    with pytest.raises(ConfigError, match="not an inference artifact or model directory jiasu"):
        tune(folder, p99_ms=50)
    assert (folder / "artifact.json").read_text() == '{"format": "not-jiasu"}'


def test_the_pick_is_the_highest_rate_within_the_bound_then_shorter_delay_larger_batch() -> None:
    from jiasu.serve.tune import Trial, _pick

    trials = [
        Trial(1, 0.0, 16, 100.0, 5.0, 9.0, 0),
        Trial(8, 0.0, 16, 300.0, 5.0, 9.0, 0),
        Trial(8, 4.0, 16, 325.0, 6.0, 9.5, 0),  # within 10% of the best: the shorter delay wins
        Trial(32, 0.0, 64, 900.0, 40.0, 80.0, 0),  # faster, but over the bound
        Trial(32, 0.0, 16, 250.0, 5.0, 9.0, 0),
        Trial(64, 0.0, 16, 990.0, 2.0, 5.0, 3),  # failed requests never count
    ]
    assert _pick(trials, p99_ms=10.0) == ((8, 0.0), 300.0)
    # 13% above: a delay that buys this much wins
    bought = [Trial(8, 0.0, 16, 300.0, 5.0, 9.0, 0), Trial(8, 4.0, 16, 340.0, 6.0, 9.5, 0)]
    assert _pick(bought, p99_ms=10.0) == ((8, 4.0), 340.0)
    assert _pick(trials, p99_ms=100.0) == ((32, 0.0), 900.0)
    assert _pick(trials, p99_ms=1.0) is None
    # equal rates at one client (batching cannot show there): the larger batch, for load
    alone = [Trial(8, 0.0, 1, 100.0, 2.0, 3.0, 0), Trial(32, 0.0, 1, 99.0, 2.0, 3.0, 0)]
    assert _pick(alone, p99_ms=10.0) == ((32, 0.0), 99.0)


def test_unreadable_recorded_settings_are_one_sentence(artifact: Path) -> None:
    from jiasu.cli.main import main
    from jiasu.serve.tune import recorded_settings

    meta = json.loads((artifact / "artifact.json").read_text())
    meta["serve"] = {"max_batch_size": "lots", "max_delay_ms": 1}
    (artifact / "artifact.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="records serve settings jiasu cannot read"):
        recorded_settings(artifact)
    assert main(["serve", str(artifact), "--port", "0"]) == 2
