"""`read_inputs` / `infer_signature` / `write_outputs`: every input format, against references
built here, and every refusal as one sentence."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from jiasu.core.errors import ConfigError, DataError, MissingExtraError
from jiasu.core.signature import InputSignature
from jiasu.data import write_idx
from jiasu.data.inputs import infer_signature, read_inputs, write_outputs

pd = pytest.importorskip("pandas")
Image = pytest.importorskip("PIL.Image")

TEXT = InputSignature.parse("input_ids:int64[B,16],attention_mask:int64[B,16]")
TABLE = InputSignature.from_shape((30,))
RGB = InputSignature.from_shape((3, 8, 8))


def one_sentence(exc: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(exc.value)
    assert "\n" not in message and "Traceback" not in message
    assert ";" in message or ":" in message  # the problem, then what to do or what was expected
    return message


@pytest.fixture
def table() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((25, 30)).astype(np.float32), rng.integers(0, 2, 25)


def _frame(features: np.ndarray, labels: np.ndarray) -> object:
    frame = pd.DataFrame({f"f{i}": features[:, i] for i in range(features.shape[1])})
    frame.insert(3, "target", labels)  # the label column sits among the features
    return frame


# --- formats ------------------------------------------------------------------------------


def test_two_input_int64_npz_with_labels(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 1000, (6, 16), dtype=np.int64)
    mask = (rng.random((6, 16)) > 0.3).astype(np.int64)
    labels = np.arange(6) % 2
    # the file's order differs from the signature's: names decide
    np.savez(tmp_path / "x.npz", attention_mask=mask, labels=labels, input_ids=ids)
    data = read_inputs(tmp_path / "x.npz", TEXT)
    assert data.names == ("input_ids", "attention_mask") and len(data) == 6
    np.testing.assert_array_equal(data.arrays[0], ids)
    np.testing.assert_array_equal(data.arrays[1], mask)
    assert data.arrays[0].dtype == np.int64
    np.testing.assert_array_equal(data.labels, labels)
    inferred = infer_signature(tmp_path / "x.npz")
    assert inferred.describe() == "attention_mask:int64[B,16], input_ids:int64[B,16]"
    assert inferred.call == "keyword"


def test_npz_single_array_any_key_and_positional_arrays(tmp_path: Path) -> None:
    pixels = np.random.default_rng(2).integers(0, 256, (4, 3, 8, 8), dtype=np.uint8)
    np.savez(tmp_path / "one.npz", whatever=pixels)
    data = read_inputs(tmp_path / "one.npz", RGB)
    np.testing.assert_array_equal(data.arrays[0], pixels.astype(np.float32) / np.float32(255))
    assert data.labels is None
    ids, mask = np.ones((3, 16), np.int32), np.zeros((3, 16), np.int32)
    np.savez(tmp_path / "two.npz", ids, mask)  # arr_0, arr_1: in order, int32 widened
    data = read_inputs(tmp_path / "two.npz", TEXT)
    np.testing.assert_array_equal(data.arrays[1], mask.astype(np.int64))
    assert data.arrays[0].dtype == np.int64


def test_uint8_scales_for_float_inputs_only(tmp_path: Path) -> None:
    ids = np.arange(32, dtype=np.uint8).reshape(2, 16)
    np.save(tmp_path / "ids.npy", ids)
    as_ids = read_inputs(tmp_path / "ids.npy", InputSignature.parse("ids:int64[B,16]"))
    np.testing.assert_array_equal(as_ids.arrays[0], ids.astype(np.int64))  # token ids stay
    as_pixels = read_inputs(tmp_path / "ids.npy", InputSignature.from_shape((16,)))
    np.testing.assert_allclose(as_pixels.arrays[0], ids / 255.0, rtol=1e-6)


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_idx_raw_and_gzip_fill_a_one_channel_image_input(tmp_path: Path, name: str) -> None:
    images = np.random.default_rng(3).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / name, images)
    data = read_inputs(tmp_path / name, InputSignature.from_shape((1, 28, 28)))
    assert data.arrays[0].shape == (5, 1, 28, 28) and data.arrays[0].dtype == np.float32
    np.testing.assert_array_equal(data.arrays[0][:, 0], images.astype(np.float32) / 255)


def test_npy_float_round_trip_and_inferred_signature(tmp_path: Path) -> None:
    x = np.random.default_rng(4).standard_normal((7, 30))  # float64 from numpy
    np.save(tmp_path / "x.npy", x)
    assert infer_signature(tmp_path / "x.npy").describe() == "input:float32[B,30]"
    data = read_inputs(tmp_path / "x.npy", None)
    np.testing.assert_array_equal(data.arrays[0], x.astype(np.float32))


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_tabular_30_features_with_a_label_column(
    tmp_path: Path, table: tuple[np.ndarray, np.ndarray], suffix: str
) -> None:
    features, labels = table
    path = tmp_path / f"rows{suffix}"
    frame = _frame(features, labels)
    if suffix == ".csv":
        frame.to_csv(path, index=False, float_format="%.9g")  # float32 round-trips
    else:
        frame.to_parquet(path, index=False)
    data = read_inputs(path, TABLE, label_column="target")
    np.testing.assert_array_equal(data.arrays[0], features)
    np.testing.assert_array_equal(data.labels, labels)
    inferred = infer_signature(path, label_column="target")
    assert inferred.describe() == "input:float32[B,30]"


def test_csv_without_header_row(tmp_path: Path, table: tuple[np.ndarray, np.ndarray]) -> None:
    features, _ = table
    np.savetxt(tmp_path / "x.csv", features, delimiter=",", fmt="%.9g")
    data = read_inputs(tmp_path / "x.csv", TABLE)
    np.testing.assert_array_equal(data.arrays[0], features)  # the first row is kept


def _image_folder(root: Path) -> tuple[np.ndarray, np.ndarray]:
    """Two classes of RGB images, 8x8, and the reference (N, 3, 8, 8) in [0, 1]."""
    rng = np.random.default_rng(5)
    pixels, labels = [], []
    for label, name in enumerate(["cat", "dog"]):
        (root / name).mkdir(parents=True)
        for i, suffix in enumerate([".png", ".bmp"]):
            array = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
            Image.fromarray(array, "RGB").save(root / name / f"{i}{suffix}")
            pixels.append(array.transpose(2, 0, 1))
            labels.append(label)
    return np.stack(pixels).astype(np.float32) / np.float32(255), np.array(labels)


def test_rgb_image_folder_with_two_classes(tmp_path: Path) -> None:
    expected, labels = _image_folder(tmp_path / "images")
    (tmp_path / "images" / "dog" / "notes.txt").write_text("not an image")  # skipped
    data = read_inputs(tmp_path / "images", RGB)
    np.testing.assert_array_equal(data.arrays[0], expected)
    np.testing.assert_array_equal(data.labels, labels)
    assert data.class_names == ("cat", "dog")
    assert infer_signature(tmp_path / "images").describe() == "input:float32[B,3,8,8]"


def test_flat_image_folder_is_converted_and_resized(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    tmp_path.joinpath("flat").mkdir()
    big = Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8), "RGB")
    big.save(tmp_path / "flat" / "a.png")  # 10 wide, 12 high
    data = read_inputs(tmp_path / "flat", InputSignature.from_shape((1, 6, 5)))
    expected = np.asarray(big.convert("L").resize((5, 6), Image.Resampling.BILINEAR))
    assert data.labels is None and data.arrays[0].shape == (1, 1, 6, 5)
    np.testing.assert_array_equal(data.arrays[0][0, 0], expected.astype(np.float32) / 255)


# --- outputs ------------------------------------------------------------------------------


def test_write_outputs_npy_and_csv_round_trip(tmp_path: Path) -> None:
    logits = np.random.default_rng(7).standard_normal((9, 3)).astype(np.float32)
    np.testing.assert_array_equal(np.load(write_outputs(tmp_path / "o.npy", logits)), logits)
    written = write_outputs(tmp_path / "o.csv", logits)
    assert written.read_text().splitlines()[0] == "out_0,out_1,out_2"
    back = np.loadtxt(written, delimiter=",", skiprows=1, dtype=np.float32)
    np.testing.assert_array_equal(back, logits)
    classes = logits.argmax(axis=1)
    lines = write_outputs(tmp_path / "c.csv", classes).read_text().splitlines()
    assert lines == ["class", *map(str, classes)]
    assert not list(tmp_path.glob(".*"))  # atomic writes leave nothing behind


def test_write_outputs_refuses_other_suffixes(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        write_outputs(tmp_path / "o.txt", np.zeros(2))
    assert ".npy or .csv" in one_sentence(exc)


# --- refusals -----------------------------------------------------------------------------


def test_wrong_number_of_columns(tmp_path: Path, table: tuple[np.ndarray, np.ndarray]) -> None:
    features, labels = table
    _frame(features[:, :29], labels).to_csv(tmp_path / "x.csv", index=False)
    with pytest.raises(ConfigError) as exc:  # 'target' counted as a feature: 30, but 29 real
        read_inputs(tmp_path / "x.csv", TABLE, label_column="target")
    assert "has 29 numeric feature columns, but the model takes 30" in one_sentence(exc)


def test_nan_in_a_csv(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("a,b\n1,2\n3,\n")
    with pytest.raises(DataError) as exc:
        read_inputs(tmp_path / "x.csv", InputSignature.from_shape((2,)))
    assert "row 2, column 'b'" in one_sentence(exc)


def test_non_numeric_column(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("a,colour\n1,red\n3,blue\n")
    with pytest.raises(DataError) as exc:
        read_inputs(tmp_path / "x.csv", InputSignature.from_shape((2,)))
    assert "'colour'" in one_sentence(exc) and "'red'" in str(exc.value)


def test_missing_label_column_and_label_column_on_an_array(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ConfigError) as exc:
        read_inputs(tmp_path / "x.csv", None, label_column="y")
    assert "no column 'y'" in one_sentence(exc) and "a, b" in str(exc.value)
    np.save(tmp_path / "x.npy", np.zeros((2, 2), np.float32))
    with pytest.raises(ConfigError) as exc:
        read_inputs(tmp_path / "x.npy", None, label_column="y")
    assert "--label-column" in one_sentence(exc)


def test_pickled_npz_is_refused_without_unpickling(tmp_path: Path) -> None:
    np.savez(tmp_path / "x.npz", input=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(DataError) as exc:
        read_inputs(tmp_path / "x.npz", None)
    assert "not numbers" in one_sentence(exc) and "'input'" in str(exc.value)


def test_npz_header_declaring_more_than_it_holds(tmp_path: Path) -> None:
    import zipfile

    with zipfile.ZipFile(tmp_path / "x.npz", "w") as archive, archive.open("x.npy", "w") as out:
        header = {"descr": "<f4", "fortran_order": False, "shape": (10**12, 30)}
        np.lib.format.write_array_header_1_0(out, header)
        out.write(bytes(4 * 30))
    with pytest.raises(DataError) as exc:
        read_inputs(tmp_path / "x.npz", TABLE)
    assert "(1000000000000, 30)" in one_sentence(exc)


@pytest.mark.parametrize(
    ("arrays", "expected"),
    [
        ({"input_ids": np.ones((2, 16), np.int64)}, "lacks attention_mask"),
        ({"input_ids": np.ones((2, 16)), "attention_mask": np.ones((2, 8))}, "axis 1 must be 16"),
        ({"input_ids": np.full((2, 16), 0.5), "attention_mask": np.ones((2, 16))}, "fractions"),
    ],
)
def test_arrays_that_do_not_match_the_signature(
    tmp_path: Path, arrays: dict[str, np.ndarray], expected: str
) -> None:
    np.savez(tmp_path / "x.npz", **arrays)
    with pytest.raises(ConfigError) as exc:
        read_inputs(tmp_path / "x.npz", TEXT)
    message = one_sentence(exc)
    assert expected in message and str(tmp_path / "x.npz") in message


def test_table_for_a_two_input_model_and_images_for_a_table_model(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ConfigError) as exc:
        read_inputs(tmp_path / "x.csv", TEXT)
    assert "input_ids:int64[B,16]" in one_sentence(exc)
    _image_folder(tmp_path / "images")
    with pytest.raises(ConfigError) as exc:
        read_inputs(tmp_path / "images", TABLE)
    assert "folder of images" in one_sentence(exc)


def test_a_file_without_rows(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(DataError) as exc:
        read_inputs(tmp_path / "x.csv", None)
    assert "holds no inputs" in one_sentence(exc)


def test_unknown_format_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("1 2 3\n")
    with pytest.raises(DataError) as exc:
        read_inputs(tmp_path / "x.txt", TABLE)
    assert ".npz" in one_sentence(exc) and ".csv" in str(exc.value)
    with pytest.raises(DataError) as exc:
        read_inputs(tmp_path / "nothing.npz", TABLE)
    assert "does not exist" in one_sentence(exc)


def test_missing_pandas_names_the_tabular_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "x.csv").write_text("a\n1\n")
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now fails
    with pytest.raises(MissingExtraError) as exc:
        read_inputs(tmp_path / "x.csv", None)
    assert "jiasu[tabular]" in one_sentence(exc)
