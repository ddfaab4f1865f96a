"""Any model in: a CIFAR-style CNN, a Hugging Face BERT classifier (two int64 inputs,
a ModelOutput), a tabular regressor on a CSV, a GRU on sequences — through `jiasu
optimize`, `jiasu.optimize`, `jiasu.load` and `jiasu predict`, each checked against the
model's own eager output. Small models and short timings: these test behaviour, not speed."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import jiasu
from jiasu.cli.main import main
from jiasu.core.errors import ConfigError

FAST = ["--backends", "torch,onnxruntime", "--no-isolate", "--measure-s", "0.2", "--quiet"]
API_FAST = {"backends": ("torch", "onnxruntime"), "isolate": False, "measure_s": 0.2}

FACTORIES = textwrap.dedent(
    '''
    import torch
    from torch import nn


    def resnet_like():
        """A small residual CNN for 3x32x32 images (CIFAR-10 style), 10 classes."""
        torch.manual_seed(0)

        class Block(nn.Module):
            def __init__(self, c):
                super().__init__()
                self.conv = nn.Conv2d(c, c, 3, padding=1)
                self.bn = nn.BatchNorm2d(c)

            def forward(self, x):
                return torch.relu(x + self.bn(self.conv(x)))

        return nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), Block(8), nn.AdaptiveAvgPool2d(1),
            nn.Flatten(), nn.Linear(8, 10),
        ).eval()


    def tiny_bert():
        """A real BertForSequenceClassification, random weights, tiny sizes."""
        from transformers import BertConfig, BertForSequenceClassification

        torch.manual_seed(0)
        config = BertConfig(
            vocab_size=100, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
            intermediate_size=64, max_position_embeddings=64, num_labels=3,
        )
        return BertForSequenceClassification(config).eval()


    def regressor():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(30, 32), nn.ReLU(), nn.Linear(32, 1)).eval()


    class Pair(nn.Module):
        """Returns a dict with no 'logits': the output is named on the command line."""

        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(4, 2)

        def forward(self, x):
            return {"score": self.linear(x), "hidden": x}


    def pair():
        torch.manual_seed(0)
        return Pair().eval()


    def no_tensor():
        class Words(nn.Module):
            def forward(self, x):
                return ["not", "a", "tensor"]

        return Words()
    '''
)


@pytest.fixture
def factories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The module `user_zoo` on sys.path; returns its name."""
    (tmp_path / "user_zoo.py").write_text(FACTORIES)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "user_zoo"


def _weights(factory: object, path: Path) -> Path:
    from safetensors.torch import save_file

    model = factory()  # type: ignore[operator]
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


def _run(*args: object) -> int:
    return main([str(a) for a in args])


def test_a_cifar_cnn_is_optimized_with_input_shape_and_verified_on_its_own_data(
    factories: str, tmp_path: Path
) -> None:
    import user_zoo  # type: ignore[import-not-found]

    weights = _weights(user_zoo.resnet_like, tmp_path / "w.safetensors")
    rng = np.random.default_rng(0)
    images = rng.random((48, 3, 32, 32), dtype=np.float32)
    with torch.no_grad():
        labels = user_zoo.resnet_like()(torch.from_numpy(images)).argmax(1).numpy()
    np.savez(tmp_path / "data.npz", input=images, labels=labels)
    out, report = tmp_path / "art", tmp_path / "r.json"
    code = _run(
        "optimize", f"{factories}:resnet_like", "--weights", weights, "--input-shape", "3,32,32",
        "--data", tmp_path / "data.npz", "--out", out, "--json", report, *FAST,
    )  # fmt: skip
    assert code == 0
    data = json.loads(report.read_text())
    assert data["verified"] and data["task"]["metric"] == "accuracy"
    assert data["signature"]["inputs"][0]["shape"] == ["B", 3, 32, 32]
    predictor = jiasu.load(out)
    with torch.no_grad():
        expected = user_zoo.resnet_like()(torch.from_numpy(images[:5])).numpy()
    np.testing.assert_allclose(predictor(images[:5]), expected, rtol=1e-3, atol=1e-4)
    with pytest.raises(ConfigError, match=r"input:float32\[B,3,32,32\]"):
        predictor(np.zeros((2, 1, 28, 28), np.float32))  # MNIST images for a CIFAR model


def test_a_bert_classifier_takes_named_int64_inputs_and_returns_its_logits(
    factories: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import user_zoo

    cwd = tmp_path / "cwd"  # ONNX Runtime's shape inference once littered the working folder
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    weights = _weights(user_zoo.tiny_bert, tmp_path / "w.safetensors")
    spec = "input_ids:int64[B,16],attention_mask:int64[B,16]"
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 100, (32, 16)).astype(np.int64)
    mask = np.ones_like(ids)
    mask[::2, 12:] = 0  # padding on half the rows
    np.savez(tmp_path / "tokens.npz", input_ids=ids, attention_mask=mask)
    out, report = tmp_path / "art", tmp_path / "r.json"
    code = _run(
        "optimize", f"{factories}:tiny_bert", "--weights", weights, "--input-spec", spec,
        "--data", tmp_path / "tokens.npz", "--out", out, "--json", report, *FAST,
    )  # fmt: skip
    assert code == 0
    assert list(cwd.iterdir()) == []  # nothing written beside the user's files
    data = json.loads(report.read_text())
    assert data["task"]["metric"] == "agreement" and data["verified"]  # no labels given
    assert data["onnx_export"]["exporter"] == "dynamo"
    by_name = {c["name"]: c for c in data["candidates"]}
    assert by_name["onnxruntime"]["verdict"] == "accepted", by_name["onnxruntime"]["reason"]
    assert by_name["onnxruntime-int8-dynamic"]["verdict"] in ("accepted", "rejected")
    assert data["phase_seconds"]["total"] >= sum(
        v for k, v in data["phase_seconds"].items() if k != "total"
    )
    predictor = jiasu.load(out)
    assert predictor.signature.names == ("input_ids", "attention_mask")
    with torch.no_grad():
        expected = user_zoo.tiny_bert()(
            input_ids=torch.from_numpy(ids[:4]), attention_mask=torch.from_numpy(mask[:4])
        ).logits.numpy()
    got = predictor({"input_ids": ids[:4], "attention_mask": mask[:4]})
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(predictor(ids[:4], mask[:4]), got)  # positional, in order
    with pytest.raises(ConfigError, match="lacks attention_mask"):
        predictor({"input_ids": ids[:4]})
    with pytest.raises(ConfigError, match="fractions"):
        predictor(ids[:4] + 0.5, mask[:4])  # float ids cannot be token ids
    # jiasu predict on the same .npz writes the logits
    assert (
        _run("predict", out, "--input", tmp_path / "tokens.npz", "--output", tmp_path / "p.npy")
        == 0
    )
    np.testing.assert_allclose(np.load(tmp_path / "p.npy")[:4], expected, rtol=1e-3, atol=1e-4)


def test_a_tabular_regressor_is_verified_on_mse_from_a_csv(factories: str, tmp_path: Path) -> None:
    import pandas as pd
    import user_zoo

    model = user_zoo.regressor()
    x = np.random.default_rng(0).standard_normal((200, 30)).astype(np.float32)
    with torch.no_grad():
        y = model(torch.from_numpy(x)).numpy()[:, 0] + 0.1
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(30)])
    frame["target"] = y
    frame.to_csv(tmp_path / "table.csv", index=False)
    result = jiasu.optimize(model, data=tmp_path / "table.csv", label_column="target", **API_FAST)
    report = result.report
    assert report.task.metric == "mse" and report.budget.kind == "relative"  # 1% more error
    assert report.signature.describe() == "input:float32[B,30]"
    base = report.baseline.verification
    assert base is not None and base.value == pytest.approx(0.01, rel=1e-3)  # (0.1)² each
    for c in report.candidates:  # int8 may be accepted only within 1% more MSE
        if c.verdict == "accepted" and c.verification is not None:
            assert c.verification.value <= base.value * 1.01 + 1e-9
    preds = result.predictor(x[:3])
    np.testing.assert_allclose(preds[:, 0], y[:3] - 0.1, rtol=1e-4, atol=1e-5)


def test_without_data_only_exact_candidates_are_accepted_and_the_report_says_so(
    factories: str, tmp_path: Path
) -> None:
    import user_zoo

    gru = nn.GRU(8, 16, batch_first=True)

    class Classifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gru, self.head = gru, nn.Linear(16, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.gru(x)[0][:, -1])

    model = Classifier().eval()
    result = jiasu.optimize(model, torch.randn(2, 12, 8), **API_FAST)
    report = result.report
    assert not report.verified
    for c in report.candidates:
        if c.candidate.exactness.value == "approximate":
            assert c.verdict != "accepted", c.name
    assert "not verified" in " ".join(c.reason for c in report.candidates)
    x = torch.randn(3, 12, 8)
    with torch.no_grad():
        np.testing.assert_allclose(
            result.predictor(x).numpy(), model(x).numpy(), rtol=1e-4, atol=1e-5
        )
    del user_zoo


def test_the_output_is_chosen_by_name_and_bad_inputs_are_one_sentence(
    factories: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import user_zoo

    x = torch.randn(4, 4)
    result = jiasu.optimize(user_zoo.pair(), x, output="score", **API_FAST)
    np.testing.assert_allclose(
        result.predictor(x).numpy(), user_zoo.pair()(x)["score"].detach().numpy(), rtol=1e-5
    )
    with pytest.raises(ConfigError, match="no output 'nope'; its outputs are score, hidden"):
        jiasu.optimize(user_zoo.pair(), x, output="nope", **API_FAST)
    with pytest.raises(ConfigError, match="no tensor"):
        jiasu.optimize(user_zoo.no_tensor(), x, **API_FAST)
    with pytest.raises(ConfigError, match="fails on inputs input:float32"):
        jiasu.optimize(user_zoo.regressor(), torch.randn(2, 7), **API_FAST)  # takes 30 features
    weights = _weights(user_zoo.regressor, tmp_path / "w.safetensors")
    cases = {
        "does not parse": ["--input-spec", "x:float32"],
        "fails on inputs": ["--input-spec", "x:float32[B,7]"],
        "names a column of --data": ["--input-shape", "30", "--label-column", "y"],
        "pass one": ["--input-shape", "30", "--input-spec", "x:float32[B,30]"],
    }
    for message, extra in cases.items():
        code = _run("optimize", f"{factories}:regressor", "--weights", weights, *extra, *FAST)
        err = capsys.readouterr().err
        assert code == 2 and message in err and "Traceback" not in err, (message, err)
        assert len(err.strip().splitlines()) == 1, err


def test_an_onnx_file_of_two_int64_inputs_says_its_own_signature(
    factories: str, tmp_path: Path
) -> None:
    import user_zoo

    from jiasu.core.signature import InputSignature
    from jiasu.infer.export import export_onnx

    spec = InputSignature.parse("input_ids:int64[B,S],attention_mask:int64[B,S]")
    path = export_onnx(user_zoo.tiny_bert(), spec, tmp_path / "bert.onnx").path
    ids = np.random.default_rng(1).integers(0, 100, (16, 10)).astype(np.int64)
    tokens = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    result = jiasu.optimize(path, data=tokens, backends=("onnxruntime",), isolate=False,
                            measure_s=0.2)  # fmt: skip
    assert result.report.signature.names == ("input_ids", "attention_mask")
    assert result.report.signature.inputs[0].shape == ("B", "S")  # the file names its axes
    assert result.report.baseline_name == "onnxruntime-reference"
    with torch.no_grad():
        expected = user_zoo.tiny_bert()(**{k: torch.from_numpy(v) for k, v in tokens.items()})
    np.testing.assert_allclose(
        result.predictor(tokens), expected.logits.numpy(), rtol=1e-3, atol=1e-4
    )


def test_a_model_directory_refuses_an_input_spec_that_contradicts_its_own(
    factories: str, tmp_path: Path
) -> None:
    """A two-input model directory checks every input of --input-spec, not only a float one."""
    import user_zoo  # type: ignore[import-not-found]

    from jiasu.core.signature import InputSignature
    from jiasu.core.task import Task
    from jiasu.infer import resolve_model
    from jiasu.models.saved import FactoryRef, save_model_dir

    own = InputSignature.parse("input_ids:int64[B,16],attention_mask:int64[B,16]")
    saved = save_model_dir(
        tmp_path / "bert", user_zoo.tiny_bert(), FactoryRef(f"{factories}:tiny_bert"),
        signature=own, task=Task("classification", "accuracy", 3),
    )  # fmt: skip
    for wrong in (
        "input_ids:int64[B,64],attention_mask:int64[B,64]",  # another fixed length
        "input_ids:float32[B,16],attention_mask:int64[B,16]",  # another dtype
        "input_ids:int64[B,16]",  # one input fewer
    ):
        with pytest.raises(ConfigError, match="drop the option"):
            resolve_model(str(saved), signature=InputSignature.parse(wrong), trust_code=True)
    open_axes = InputSignature.parse("input_ids:int64[B,S],attention_mask:int64[B,S]")
    same = resolve_model(str(saved), signature=open_axes, trust_code=True)
    assert same.signature == own
