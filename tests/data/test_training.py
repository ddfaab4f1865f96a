"""read_training_data: image folders, .npz and tables as TrainingData, and their bad input."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from jiasu.core.errors import ConfigError, DataError
from jiasu.core.task import Task
from jiasu.data import training_images
from jiasu.data.examples import Examples, StreamingExamples
from jiasu.data.training import read_training_data


def _image(path: Path, size: tuple[int, int], mode: str = "RGB", seed: int = 0) -> np.ndarray:
    """Write a random image of (height, width) `size`; return its pixels (C, H, W) in [0, 1]."""
    rng = np.random.default_rng(seed)
    shape = size if mode == "L" else (*size, 3)
    values = rng.integers(0, 256, shape, dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(values, mode).save(path)
    pixels = values.astype(np.float32) / 255
    return pixels[None] if mode == "L" else pixels.transpose(2, 0, 1)


def _folder(root: Path, classes: dict[str, int], size: tuple[int, int] = (6, 8)) -> dict:
    """`classes[name]` PNG images per class folder; {(class, file name): pixels}."""
    made = {}
    for c, (name, count) in enumerate(classes.items()):
        for i in range(count):
            made[(name, f"{i}.png")] = _image(root / name / f"{i}.png", size, seed=10 * c + i)
    return made


def _one(examples: object) -> Examples:
    assert isinstance(examples, Examples)
    return examples


# --- image folders ------------------------------------------------------------------------


def test_image_folder_classes_pixels_and_seeded_val_split(tmp_path: Path) -> None:
    made = _folder(tmp_path / "photos", {"cat": 3, "dog": 3, "eel": 2})
    data = read_training_data(tmp_path / "photos", val_split=0.25, seed=3)
    assert data.classes == ("cat", "dog", "eel")
    assert data.task == Task("classification", "accuracy", 3)
    assert data.signature.describe() == "input:float32[B,3,6,8]"
    train, val = _one(data.train), _one(data.val)
    assert (len(train), len(val), data.test) == (6, 2, None)
    # every image appears once, with its pixels and its class folder's id
    expected = {(c, tuple(p.reshape(-1)[:4].tolist())) for (c, _), p in made.items()}
    seen = set()
    for part in (train, val):
        for x, y in zip(part.inputs[0], part.targets, strict=True):
            seen.add((data.classes[int(y)], tuple(x.reshape(-1)[:4].tolist())))
    assert seen == expected
    pixels = made[("cat", "0.png")]
    all_x = torch.cat([train.inputs[0], val.inputs[0]])
    assert any(torch.allclose(x, torch.from_numpy(pixels)) for x in all_x)
    again = read_training_data(tmp_path / "photos", val_split=0.25, seed=3)
    assert torch.equal(_one(again.val).targets, val.targets)
    assert torch.equal(_one(again.val).inputs[0], val.inputs[0])
    assert "3 classes" in data.source


def test_train_val_test_folders_are_kept_and_grey_gives_one_channel(tmp_path: Path) -> None:
    root = tmp_path / "digits"
    for split, n in (("train", 3), ("val", 1), ("test", 2)):
        for c in ("a", "b"):
            for i in range(n):
                _image(root / split / c / f"{i}.png", (5, 5), mode="L", seed=i)
    data = read_training_data(root)
    assert data.signature.describe() == "input:float32[B,1,5,5]"
    assert [len(s) for s in (data.train, data.val, data.test) if s is not None] == [6, 2, 4]
    assert _one(data.test).targets.tolist() == [0, 0, 1, 1]


def test_mixed_sizes_are_refused_unless_resized(tmp_path: Path) -> None:
    _image(tmp_path / "p" / "a" / "0.png", (6, 8))
    _image(tmp_path / "p" / "b" / "0.png", (7, 8))
    _image(tmp_path / "p" / "b" / "1.jpg", (6, 8))
    with pytest.raises(DataError, match=r"differ in size.*resize=") as exc:
        read_training_data(tmp_path / "p")
    assert "\n" not in str(exc.value)
    data = read_training_data(tmp_path / "p", resize=(4, 5), val_split=0)
    assert _one(data.train).inputs[0].shape == (3, 3, 4, 5)
    with pytest.raises(ConfigError, match="resize"):
        read_training_data(tmp_path / "p", resize=(0, 5))


@pytest.mark.parametrize("parallel_decode", [False, True])
def test_streaming_gives_what_memory_gives_through_worker_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parallel_decode: bool
) -> None:
    _folder(tmp_path / "p", {"x": 3, "y": 2, "z": 2})
    if parallel_decode:  # decode into memory by worker processes, as for a large folder
        monkeypatch.setattr(training_images, "PARALLEL_DECODE_FROM", 1)
        monkeypatch.setattr(training_images, "PARALLEL_DECODE_CPUS", 1)
        monkeypatch.setattr(training_images, "DECODE_BATCH", 2)
    memory = read_training_data(tmp_path / "p", val_split=0.3, seed=1)
    stream = read_training_data(tmp_path / "p", val_split=0.3, seed=1, stream=True)
    assert isinstance(stream.train, StreamingExamples) and "streamed" in stream.source
    assert stream.signature == memory.signature and stream.task == memory.task
    for streamed, loaded in ((stream.train, memory.train), (stream.val, memory.val)):
        assert isinstance(streamed, StreamingExamples)
        copy = pickle.loads(pickle.dumps(streamed))
        loader = torch.utils.data.DataLoader(copy, batch_size=2, num_workers=2)
        xs, ys = zip(*((x[0], y) for x, y in loader), strict=True)
        assert torch.equal(torch.cat(xs), _one(loaded).inputs[0])
        assert torch.equal(torch.cat(ys), _one(loaded).targets)


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ({}, "no images"),
        ({"only": 2}, "one class only"),
        ({"loose.png": 0}, "outside class folders"),
    ],
)
def test_image_folders_that_cannot_train(tmp_path: Path, layout: dict, message: str) -> None:
    root = tmp_path / "p"
    root.mkdir()
    (root / "empty_class").mkdir()
    for name, count in layout.items():
        if name.endswith(".png"):
            _image(root / name, (4, 4))
        for i in range(count):
            _image(root / name / f"{i}.png", (4, 4))
    with pytest.raises(DataError, match=message) as exc:
        read_training_data(root)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("parallel_decode", [False, True])
def test_unreadable_image_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parallel_decode: bool
) -> None:
    if parallel_decode:
        monkeypatch.setattr(training_images, "PARALLEL_DECODE_FROM", 1)
        monkeypatch.setattr(training_images, "PARALLEL_DECODE_CPUS", 1)
    _folder(tmp_path / "p", {"a": 1, "b": 1})
    (tmp_path / "p" / "b" / "broken.png").write_bytes(b"not an image at all")
    with pytest.raises(DataError, match=r"broken\.png is not a readable image.*replace or remove"):
        read_training_data(tmp_path / "p")
    (tmp_path / "p" / "b" / "broken.png").unlink()
    whole = (tmp_path / "p" / "a" / "0.png").read_bytes()
    (tmp_path / "p" / "a" / "cut.png").write_bytes(whole[: len(whole) // 2])  # header intact
    with pytest.raises(DataError, match=r"cut\.png is not a readable image") as exc:
        read_training_data(tmp_path / "p")
    assert "\n" not in str(exc.value)


# --- .npz ---------------------------------------------------------------------------------


def test_npz_named_inputs_test_split_and_class_ids(tmp_path: Path) -> None:
    ids = np.arange(40, dtype=np.int64).reshape(10, 4)
    mask = np.ones((10, 4), dtype=np.int64)
    y = np.array([0, 2] * 5)
    np.savez(tmp_path / "d.npz", input_ids=ids, attention_mask=mask, y=y,
             test_input_ids=ids[:3], test_attention_mask=mask[:3], test_y=y[:3])  # fmt: skip
    data = read_training_data(tmp_path / "d.npz", val_split=0.2)
    assert data.signature.describe() == "input_ids:int64[B,4], attention_mask:int64[B,4]"
    assert data.signature.call == "keyword"
    assert data.task == Task("classification", "accuracy", 3) and data.classes is None
    train, val, test = _one(data.train), _one(data.val), _one(data.test)
    assert (len(train), len(val), len(test)) == (8, 2, 3)
    assert torch.equal(test.inputs[0], torch.from_numpy(ids[:3]))
    rows = torch.cat([train.inputs[0], val.inputs[0]])[:, 0].sort().values
    assert rows.tolist() == ids[:, 0].tolist()


def test_npz_pixels_labels_key_and_regression(tmp_path: Path) -> None:
    x = np.full((4, 1, 2, 2), 255, dtype=np.uint8)
    np.savez(tmp_path / "c.npz", images=x, labels=np.array([1, 0, 1, 0]))
    data = read_training_data(tmp_path / "c.npz", val_split=0)
    assert data.signature.describe() == "images:float32[B,1,2,2]"
    assert float(_one(data.train).inputs[0].max()) == 1.0
    np.savez(tmp_path / "r.npz", x=np.zeros((4, 3)), y=np.array([0.5, 1.5, 2.0, 3.0]))
    reg = read_training_data(tmp_path / "r.npz", val_split=0.25)
    assert reg.task == Task("regression", "mse") and reg.classes is None
    assert _one(reg.train).targets.dtype == torch.float32
    mae = read_training_data(tmp_path / "r.npz", task=Task("regression", "mae"))
    assert mae.task.metric == "mae"


def test_npz_without_targets_or_with_mismatched_rows(tmp_path: Path) -> None:
    np.savez(tmp_path / "a.npz", x=np.zeros((3, 2)))
    with pytest.raises(DataError, match=r"no targets.*named y"):
        read_training_data(tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", a=np.zeros((3, 2)), b=np.zeros((4, 2)), y=np.zeros(3))
    with pytest.raises(DataError, match=r"different numbers of samples \(a 3, b 4, y 3\)"):
        read_training_data(tmp_path / "b.npz")
    np.savez(tmp_path / "c.npz", x=np.zeros((3, 2)), y=np.zeros(3), test_y=np.zeros(1))
    with pytest.raises(DataError, match="lacks test_x"):
        read_training_data(tmp_path / "c.npz")


# --- tables -------------------------------------------------------------------------------


def test_csv_text_target_is_classification_with_sorted_class_names(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text(
        "size,weight,kind\n1,2.5,pear\n2,3.5,apple\n3,1.0,pear\n4,0.5,fig\n5,1.5,apple\n"
    )
    data = read_training_data(tmp_path / "t.csv", target_column="kind", val_split=0)
    assert data.classes == ("apple", "fig", "pear")
    assert data.task == Task("classification", "accuracy", 3)
    train = _one(data.train)
    assert data.signature.describe() == "features:float32[B,2]"
    assert train.targets.tolist() == [2, 0, 2, 1, 0]
    assert train.inputs[0][1].tolist() == [2.0, 3.5]


def test_table_target_kinds_and_task_override(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("a,q,price\n1,3,1.5\n2,5,2.25\n3,3,0.5\n4,8,9.0\n")
    q = read_training_data(tmp_path / "t.csv", target_column="q", val_split=0)
    assert q.classes == ("3", "5", "8") and _one(q.train).targets.tolist() == [0, 1, 0, 2]
    assert q.signature.describe() == "features:float32[B,2]"
    price = read_training_data(tmp_path / "t.csv", target_column="price", val_split=0)
    assert price.task.kind == "regression"
    assert _one(price.train).targets.tolist() == [1.5, 2.25, 0.5, 9.0]
    q_reg = read_training_data(tmp_path / "t.csv", target_column="q", task="regression")
    assert q_reg.task.kind == "regression"
    with pytest.raises(ConfigError, match=r"fractional values such as 1.5.*task regression"):
        read_training_data(tmp_path / "t.csv", target_column="price", task="classification")


def test_many_distinct_integers_are_a_regression(tmp_path: Path) -> None:
    rows = "\n".join(f"{i},{i * 7}" for i in range(150))
    (tmp_path / "t.csv").write_text(f"a,count\n{rows}\n")
    data = read_training_data(tmp_path / "t.csv", target_column="count")
    assert data.task.kind == "regression" and data.classes is None
    forced = read_training_data(tmp_path / "t.csv", target_column="count", task="classification")
    assert forced.task.classes == 150


def test_parquet_table(tmp_path: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame({"f0": [0.1, 0.2, 0.3], "f1": [1, 2, 3], "y": [0, 1, 1]})
    frame.to_parquet(tmp_path / "t.parquet")
    data = read_training_data(tmp_path / "t.parquet", target_column="y", val_split=0)
    assert data.task.classes == 2 and len(data.train) == 3
    assert np.allclose(_one(data.train).inputs[0].numpy(), frame[["f0", "f1"]].to_numpy())


def test_bad_tables_are_one_sentence(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("a,b,city,colour\n1,2,Oslo,red\n3,4,Rome,blue\n")
    with pytest.raises(ConfigError, match=r"no column 'price'.*a, b, city, colour"):
        read_training_data(tmp_path / "t.csv", target_column="price")
    with pytest.raises(DataError, match=r"columns 'city', 'colour' hold.*encode them.*drop them"):
        read_training_data(tmp_path / "t.csv", target_column="a")
    with pytest.raises(ConfigError, match="--target-column"):
        read_training_data(tmp_path / "t.csv")
    (tmp_path / "empty.csv").write_text("a,y\n")
    with pytest.raises(DataError, match="no rows"):
        read_training_data(tmp_path / "empty.csv", target_column="y")
    (tmp_path / "one.csv").write_text("a,y\n1,0\n2,0\n")
    with pytest.raises(DataError, match="one class only"):
        read_training_data(tmp_path / "one.csv", target_column="y")


def test_bad_options(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 2)), y=np.array([0, 1, 0, 1]))
    with pytest.raises(ConfigError, match="val_split"):
        read_training_data(tmp_path / "d.npz", val_split=1.0)
    with pytest.raises(ConfigError, match="target-column"):
        read_training_data(tmp_path / "d.npz", target_column="y")
    with pytest.raises(ConfigError, match="task 'ranking' is unknown"):
        read_training_data(tmp_path / "d.npz", task="ranking")
    with pytest.raises(DataError, match="does not exist"):
        read_training_data(tmp_path / "nope.npz")
    (tmp_path / "x.txt").write_text("1")
    with pytest.raises(DataError, match="not training data"):
        read_training_data(tmp_path / "x.txt")
