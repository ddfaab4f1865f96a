"""Fixtures for the data tests: isolated environment, real MNIST, fake MNIST, loopback mirrors."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from jiasu.data import DatasetSplits, load_mnist, write_idx

SHARED_MNIST = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "mnist"
MNIST_NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dead_url: str) -> Path:
    """Keep every test off the real cache, the user's data folder and the internet."""
    cache_parent = tmp_path / "jiasu-cache"
    monkeypatch.setenv("JIASU_CACHE_DIR", str(cache_parent))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("JIASU_DATA_DIR", raising=False)
    monkeypatch.setenv("JIASU_MNIST_MIRRORS", dead_url)
    return cache_parent / "mnist"


@pytest.fixture(scope="session")
def shared_mnist() -> Path:
    """The real MNIST .gz files shipped beside the repository."""
    if not all((SHARED_MNIST / f"{name}.gz").is_file() for name in MNIST_NAMES):
        pytest.skip(f"real MNIST files not found at {SHARED_MNIST.resolve()}")
    return SHARED_MNIST.resolve()


@pytest.fixture(scope="session")
def real_splits(shared_mnist: Path) -> DatasetSplits:
    """Real MNIST loaded once for the whole session."""
    return load_mnist(shared_mnist)


@pytest.fixture(scope="session")
def shared_gz_bytes(shared_mnist: Path) -> dict[str, bytes]:
    """The bytes of the four real .gz files, keyed by their served names."""
    return {f"{n}.gz": (shared_mnist / f"{n}.gz").read_bytes() for n in MNIST_NAMES}


def link_real_mnist(shared: Path, folder: Path) -> Path:
    """Fill `folder` with symlinks to the real .gz files."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in MNIST_NAMES:
        (folder / f"{name}.gz").symlink_to(shared / f"{name}.gz")
    return folder


@pytest.fixture
def link_mnist(shared_mnist: Path) -> Callable[[Path], Path]:
    return lambda folder: link_real_mnist(shared_mnist, folder)


FakeMnist = Callable[..., Path]


@pytest.fixture
def make_fake_mnist() -> FakeMnist:
    """Return a writer of small MNIST-format folders (valid IDX, not the real data)."""

    def make(
        folder: Path,
        n_train: int = 6,
        n_test: int = 4,
        *,
        gz: bool = True,
        train_labels: np.ndarray | None = None,
        train_images: np.ndarray | None = None,
    ) -> Path:
        rng = np.random.default_rng(n_train * 1000 + n_test)
        suffix = ".gz" if gz else ""
        for prefix, n in (("train", n_train), ("t10k", n_test)):
            images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
            labels = (np.arange(n) % 10).astype(np.uint8)
            if prefix == "train" and train_images is not None:
                images = train_images
            if prefix == "train" and train_labels is not None:
                labels = train_labels
            write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images)
            write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
        return folder

    return make


@pytest.fixture(scope="session")
def dead_url() -> str:
    """A loopback URL whose port was just closed, so connections are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist/"


@dataclass
class Mirror:
    """A running loopback mirror: its base URL and the paths it was asked for."""

    url: str
    requests: list[str] = field(default_factory=list)


MirrorFactory = Callable[[Mapping[str, bytes]], Mirror]


@pytest.fixture
def serve_mirror() -> Iterator[MirrorFactory]:
    """Start loopback HTTP mirrors serving `{file name: bytes}` under /mnist/; stop them after."""
    servers: list[tuple[ThreadingHTTPServer, threading.Thread]] = []

    def start(files: Mapping[str, bytes]) -> Mirror:
        mirror = Mirror(url="")
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with lock:
                    mirror.requests.append(self.path)
                body = files.get(self.path.removeprefix("/mnist/"))
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/gzip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        servers.append((server, thread))
        mirror.url = f"http://127.0.0.1:{server.server_address[1]}/mnist/"
        return mirror

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
