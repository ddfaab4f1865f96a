"""Labelled image folders for training, in memory or streamed from disk.

Two layouts are read (png, jpg, jpeg, bmp; hidden files are skipped):

- ``root/<class>/*.png``: one folder per class; the validation split is drawn from it;
- ``root/train/<class>/...`` with ``root/val/<class>/...`` (or ``validation/``) and an
  optional ``root/test/<class>/...``: the splits as given.

Classes are the class folder names in sorted order (class id i is ``classes[i]``).
Every image header is read first: the channels come from the files (1 when all are grey,
else 3 — RGB, alpha dropped), and images of different sizes are refused unless `resize`
(height, width) is asked for. Pixels are float32 (N, C, H, W) in [0, 1].

When the decoded images would not fit in memory (or `stream=True`), the splits are
`StreamingExamples` that decode one image per sample, so a DataLoader's workers decode
in parallel; a file that is damaged past its header then fails when it is decoded.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
from pathlib import Path
from typing import Any

import torch

from jiasu.core.errors import ConfigError, DataError
from jiasu.core.signature import BATCH, InputSignature, InputSpec
from jiasu.data.examples import Examples, Samples, StreamingExamples
from jiasu.data.images import IMAGE_SUFFIXES, channels_of, images_in, open_image, pillow, pixels
from jiasu.data.images import subfolders as folders_in
from jiasu.hardware.memory import available_memory_bytes, check_fits_in_memory

SPLIT_FOLDERS = {"train": "train", "val": "val", "validation": "val", "test": "test"}
INPUT_NAME = "input"
# Decoded images may take at most this share of the free memory before they are streamed:
# training needs room beside them (model, batches, a device copy).
IN_MEMORY_SHARE = 0.5
# Folders of this many images or more are decoded into memory by worker processes.
PARALLEL_DECODE_FROM = 2048
# ... on machines of this many CPUs or more (measured: with 2 busy CPUs, workers slowed
# the decoding of 5000 PNGs of 32x32 from 3.0-3.6 s to 4.0-4.4 s).
PARALLEL_DECODE_CPUS = 4
MAX_DECODE_WORKERS = 8
DECODE_BATCH = 256
_PURPOSE = "reading a folder of training images"
_KINDS = ", ".join(IMAGE_SUFFIXES)


@dataclasses.dataclass(frozen=True)
class ImageFiles:
    """The image files of each split ("train", maybe "val" and "test"), with class ids."""

    splits: dict[str, tuple[list[Path], list[int]]]
    classes: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class ImageDecoder:
    """Decodes one image file to the inputs of one sample: float32 (C, H, W) in [0, 1].

    A plain dataclass, so it pickles into DataLoader workers."""

    channels: int
    size: tuple[int, int]  # (height, width); images of another size are resized to it

    def __call__(self, path: str) -> tuple[torch.Tensor, ...]:
        image = pillow(_PURPOSE)
        with open_image(Path(path), image) as picture:
            return (torch.from_numpy(pixels(picture, image, self.channels, self.size)),)


def find_image_files(root: Path) -> ImageFiles:
    """The labelled images under `root` in either layout; a folder that cannot train a
    classifier (no images, one class, images outside class folders) is a `DataError`."""
    subs = folders_in(root)
    names = {p.name.lower() for p in subs}
    if "train" in names and names <= set(SPLIT_FOLDERS):
        by_split = {SPLIT_FOLDERS[p.name.lower()]: p for p in subs}
        classes = _classes(by_split["train"])
        splits = {split: _labelled(folder, classes) for split, folder in by_split.items()}
    else:
        classes = _classes(root)
        splits = {"train": _labelled(root, classes)}
    return ImageFiles(splits, classes)


def read_image_splits(
    root: Path, files: ImageFiles, *, resize: tuple[int, int] | None, stream: bool | None
) -> tuple[dict[str, Samples], str]:
    """Each split of `files` as samples — in memory, or streamed when they would not fit
    (`stream` None) or when asked (`stream` True) — and a description for reports."""
    every = [f for paths, _ in files.splits.values() for f in paths]
    channels, size = _layout(every, resize)
    decoder = ImageDecoder(channels, size)
    signature = InputSignature((InputSpec(INPUT_NAME, "float32", (BATCH, channels, *size)),))
    needed = len(every) * channels * size[0] * size[1] * 4  # float32 pixels
    streamed = _should_stream(needed, stream, root)
    out: dict[str, Samples] = {}
    for split, (paths, labels) in files.splits.items():
        stream_split = StreamingExamples([str(p) for p in paths], torch.tensor(labels), signature,
                                         decoder)  # fmt: skip
        out[split] = stream_split if streamed else _decode_all(stream_split)
    how = "streamed from disk" if streamed else "in memory"
    source = (
        f"{root} (image folder, {len(files.classes)} classes, {len(every)} images "
        f"{channels}x{size[0]}x{size[1]}, {how})"
    )
    return out, source


def _classes(folder: Path) -> tuple[str, ...]:
    """The class folders of `folder` that hold images, sorted; at least two."""
    loose = images_in(folder)
    if loose:
        raise DataError(
            f"{folder} holds images outside class folders (such as {loose[0].name}); put each "
            f"image in a folder named after its class: {folder}/<class>/{loose[0].name}"
        )
    classes = tuple(p.name for p in folders_in(folder) if images_in(p))
    if not classes:
        raise DataError(
            f"{folder} holds no images ({_KINDS}) in class folders; put the images in one "
            f"folder per class, {folder}/<class>/*.png"
        )
    if len(classes) == 1:
        raise DataError(
            f"{folder} holds images of one class only ({classes[0]!r}); a classifier needs "
            f"at least two class folders, {folder}/<class>/*.png"
        )
    return classes


def _labelled(folder: Path, classes: tuple[str, ...]) -> tuple[list[Path], list[int]]:
    """The images of `folder`'s class folders, with their class ids in `classes`."""
    files: list[Path] = []
    labels: list[int] = []
    for sub in folders_in(folder):
        found = images_in(sub)
        if not found:
            continue
        if sub.name not in classes:
            raise DataError(
                f"{sub} is a class the training folder lacks (it has {', '.join(classes)}); "
                "give every split the same class folders"
            )
        files += found
        labels += [classes.index(sub.name)] * len(found)
    if not files:
        raise DataError(
            f"{folder} holds no images ({_KINDS}) in class folders; add some or remove it"
        )
    return files, labels


def _layout(files: list[Path], resize: tuple[int, int] | None) -> tuple[int, tuple[int, int]]:
    """Channels and (height, width) from every image's header; mixed sizes without
    `resize` are a `DataError` naming two of them."""
    image = pillow(_PURPOSE)
    channels = 1
    first: tuple[Path, tuple[int, int]] | None = None
    for file in files:
        with open_image(file, image, decode=False) as picture:
            channels = max(channels, channels_of(picture))
            size = (int(picture.size[1]), int(picture.size[0]))  # Pillow says (width, height)
        if first is None:
            first = (file, size)
        elif resize is None and size != first[1]:
            raise DataError(
                f"the images differ in size: {first[0]} is {_hw(first[1])} but {file} is "
                f"{_hw(size)}; resize them to one size, or pass resize=(height, width) to "
                "have jiasu resize them"
            )
    assert first is not None  # find_image_files gives at least two images
    return channels, resize if resize is not None else first[1]


def _should_stream(needed: int, stream: bool | None, root: Path) -> bool:
    if stream is not None:
        if not stream:
            check_fits_in_memory(needed, f"{root} decodes to images of",
                                 "let jiasu stream them from disk (stream=None)")  # fmt: skip
        return stream
    available = available_memory_bytes()
    return available is not None and needed > IN_MEMORY_SHARE * available


def _decode_all(stream: StreamingExamples) -> Examples:
    """Every image of `stream` decoded into one float32 (N, C, H, W) tensor; many images
    are decoded by worker processes (Pillow holds the GIL, so threads would not help)."""
    spec = stream.signature.inputs[0]
    out = torch.empty((len(stream), *(int(d) for d in spec.sample_shape)), dtype=torch.float32)
    workers = _decode_workers(len(stream))
    if workers:
        _decode_in_workers(stream, out, workers)
    else:
        for i, source in enumerate(stream.sources):
            out[i] = stream.decode(source)[0]
    return Examples((out,), stream.targets, stream.signature)


def _decode_in_workers(stream: StreamingExamples, out: torch.Tensor, workers: int) -> None:
    """Decode `stream` into `out` by `workers` processes. A file that fails is decoded
    again here, to raise its one-sentence DataError (a worker's error would carry the
    worker's traceback in its message)."""
    loader = torch.utils.data.DataLoader(
        _DecodedOrNot(stream, tuple(out.shape[1:])), batch_size=DECODE_BATCH, num_workers=workers
    )
    start, failed = 0, None
    for pixels_batch, decoded in loader:
        out[start : start + len(decoded)] = pixels_batch
        if not bool(decoded.all()):
            failed = start + int(torch.nonzero(~decoded)[0])
            break  # ends the workers before the error is raised
        start += len(decoded)
    if failed is not None:
        stream.decode(stream.sources[failed])  # raises the file's DataError


@dataclasses.dataclass(frozen=True)
class _DecodedOrNot(torch.utils.data.Dataset[tuple[torch.Tensor, bool]]):
    """A stream's images, each with whether it decoded (zeros when it did not)."""

    stream: StreamingExamples
    shape: tuple[int, ...]  # (C, H, W)

    def __len__(self) -> int:
        return len(self.stream)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, bool]:
        try:
            return self.stream.decode(self.stream.sources[i])[0], True
        except DataError:
            return torch.zeros(self.shape), False


def _decode_workers(images: int) -> int:
    """Worker processes for decoding `images` into memory: none for a few images (starting
    workers costs more) or inside a daemon process (which may not start any)."""
    if images < PARALLEL_DECODE_FROM or multiprocessing.current_process().daemon:
        return 0
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cpus = cpus or 1
    return min(MAX_DECODE_WORKERS, cpus - 1) if cpus >= PARALLEL_DECODE_CPUS else 0


def _hw(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]} (height x width)"


def check_resize(resize: Any) -> tuple[int, int] | None:
    """`resize` as (height, width) of whole numbers >= 1, or None; else a `ConfigError`."""
    if resize is None:
        return None
    try:
        height, width = (int(v) for v in resize)
        ok = all(float(v) == int(v) for v in resize) and height >= 1 and width >= 1
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ConfigError(f"resize {resize!r} is invalid; give (height, width), e.g. (224, 224)")
    return height, width
