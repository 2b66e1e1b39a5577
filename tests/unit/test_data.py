"""Tests of the dataset loaders: digits, synthetic, IDX parsing, downloads, CIFAR-10 archives.

No test reaches the network: downloads are served by an http.server on 127.0.0.1 or read through
``file://`` URLs, from small files that the tests write themselves, with the mirror table of
``data.REGISTRY`` pointed at them.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import http.server
import io
import math
import socket
import sys
import tarfile
import threading
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from infoplane.errors import DataError, InvalidParameterError, InvalidTypeError
from infoplane.experiments import data
from infoplane.experiments.data import (
    DatasetSource,
    DatasetSplits,
    FileSpec,
    available_datasets,
    default_data_dir,
    download_file,
    load_dataset,
    parse_idx,
    verify_file,
)
from infoplane.experiments.data import verify as verify_module

IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


# --------------------------------------------------------------------------------------------------
# Helpers and fixtures
# --------------------------------------------------------------------------------------------------


def md5(blob: bytes) -> str:
    return hashlib.md5(blob).hexdigest()


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode an array as an IDX file (big-endian header and data)."""
    codes = {np.dtype(np.uint8): 0x08, np.dtype(np.int16): 0x0B, np.dtype(np.float32): 0x0D}
    code = codes[array.dtype]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def flip_bytes(blob: bytes, at: int) -> bytes:
    out = bytearray(blob)
    out[at] ^= 0xFF
    return bytes(out)


class TinyIdx:
    """A tiny MNIST-like dataset written as four gzip IDX files into ``folder``."""

    def __init__(self, folder: Path, n_train: int = 20, n_test: int = 8, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.arrays = {
            "train_images": rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8),
            "train_labels": (np.arange(n_train) % 10).astype(np.uint8),
            "test_images": rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8),
            "test_labels": (np.arange(n_test) % 10).astype(np.uint8),
        }
        self.raw = {role: idx_bytes(a) for role, a in self.arrays.items()}
        self.gz = {role: gzip.compress(b, mtime=0) for role, b in self.raw.items()}
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        for role, blob in self.gz.items():
            (folder / IDX_NAMES[role]).write_bytes(blob)

    def source(self, mirrors: tuple[str, ...], *, content_sha: bool = False) -> DatasetSource:
        files = {
            role: FileSpec(
                filename=IDX_NAMES[role],
                md5=md5(self.gz[role]),
                content_sha256=(hashlib.sha256(self.raw[role]).hexdigest(),) if content_sha else (),
                shape=self.arrays[role].shape,
                max_label=9 if role.endswith("labels") else None,
            )
            for role in IDX_NAMES
        }
        return DatasetSource(mirrors=mirrors, files=files)

    def check(self, splits: DatasetSplits, *, scale: float = 255.0) -> None:
        expect_x = torch.from_numpy(self.arrays["train_images"]).float()[:, None] / scale
        assert torch.equal(splits.x_train, expect_x)
        assert torch.equal(
            splits.x_test, torch.from_numpy(self.arrays["test_images"]).float()[:, None] / scale
        )
        assert torch.equal(splits.y_train, torch.from_numpy(self.arrays["train_labels"]).long())
        assert torch.equal(splits.y_test, torch.from_numpy(self.arrays["test_labels"]).long())
        assert splits.x_train.dtype == torch.float32 and splits.y_train.dtype == torch.int64
        assert splits.input_shape == (1, 28, 28)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the default cache at a fresh folder so that no test reads or writes ~/.cache."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("INFOPLANE_DATA", str(cache))
    return cache


@contextlib.contextmanager
def local_server(handler: Callable[..., http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` on 127.0.0.1 in a thread; yield the base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """An HTTP server on 127.0.0.1 serving ``tmp_path / "www"``; yields (folder, base URL)."""
    root = tmp_path / "www"
    root.mkdir()
    with local_server(functools.partial(_QuietHandler, directory=str(root))) as base:
        yield root, base


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --------------------------------------------------------------------------------------------------
# Names, cache folder
# --------------------------------------------------------------------------------------------------


def test_available_datasets_lists_every_name() -> None:
    assert available_datasets() == ["cifar10", "digits", "fashion-mnist", "mnist", "synthetic"]


def test_default_data_dir_uses_env_then_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("INFOPLANE_DATA", str(tmp_path / "root"))
    assert default_data_dir("mnist") == tmp_path / "root" / "mnist"
    monkeypatch.delenv("INFOPLANE_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    expected = tmp_path / "home" / ".cache" / "infoplane" / "datasets" / "cifar10"
    assert default_data_dir("cifar10") == expected


# --------------------------------------------------------------------------------------------------
# digits
# --------------------------------------------------------------------------------------------------


def test_digits_shapes_dtypes_and_range() -> None:
    d = load_dataset("digits")
    assert d.name == "digits" and d.num_classes == 10 and d.input_shape == (1, 8, 8)
    assert d.x_train.shape == (1347, 1, 8, 8) and d.x_test.shape == (450, 1, 8, 8)
    assert d.y_train.shape == (1347,) and d.y_test.shape == (450,)
    assert d.x_train.dtype == torch.float32 and d.y_train.dtype == torch.int64
    assert float(d.x_train.min()) == 0.0 and float(d.x_train.max()) == 1.0
    assert d.classes == tuple(str(i) for i in range(10))
    # Values are multiples of 1/16 (the raw digits are integers 0..16).
    assert torch.equal(d.x_test * 16, (d.x_test * 16).round())


def test_digits_split_is_deterministic_under_seed_and_changes_with_it() -> None:
    a, b = load_dataset("digits", seed=3), load_dataset("digits", seed=3)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    c = load_dataset("digits", seed=4)
    assert not torch.equal(a.y_train, c.y_train)


def test_digits_split_is_stratified_and_a_partition() -> None:
    from sklearn.datasets import load_digits

    d = load_dataset("digits", seed=1, test_size=0.25)
    full = load_digits()
    counts = np.bincount(full.target, minlength=10)
    test_counts = d.y_test.bincount(minlength=10).numpy()
    assert np.all(np.abs(test_counts - 0.25 * counts) <= 1)
    assert np.array_equal(d.y_train.bincount(minlength=10).numpy() + test_counts, counts)
    # Train and test together are exactly the 1797 samples: no sample is in both or missing.
    rows = torch.cat([d.x_train, d.x_test]).reshape(-1, 64).numpy() * 16
    with_labels = np.concatenate([rows, torch.cat([d.y_train, d.y_test]).numpy()[:, None]], 1)
    original = np.concatenate([full.data, full.target[:, None]], 1)
    assert np.array_equal(np.unique(with_labels, axis=0), np.unique(original, axis=0))
    assert len(with_labels) == len(original)


# --------------------------------------------------------------------------------------------------
# synthetic
# --------------------------------------------------------------------------------------------------


def test_synthetic_shapes_balance_determinism_and_separability() -> None:
    opts = {"n_train": 60, "n_test": 30, "num_classes": 3, "input_shape": (2, 6, 5), "noise": 0.1}
    s = load_dataset("synthetic", seed=7, **opts)
    assert s.x_train.shape == (60, 2, 6, 5) and s.x_test.shape == (30, 2, 6, 5)
    assert s.input_shape == (2, 6, 5) and s.num_classes == 3 and s.name == "synthetic"
    assert s.y_train.dtype == torch.int64 and s.x_train.dtype == torch.float32
    assert s.y_train.bincount().tolist() == [20, 20, 20]
    assert 0.0 <= float(s.x_train.min()) and float(s.x_train.max()) <= 1.0
    again = load_dataset("synthetic", seed=7, **opts)
    assert torch.equal(s.x_train, again.x_train) and torch.equal(s.y_test, again.y_test)
    assert not torch.equal(s.x_train, load_dataset("synthetic", seed=8, **opts).x_train)
    # Class-structured: a nearest-class-mean rule fitted on train classifies test well.
    means = torch.stack([s.x_train[s.y_train == k].flatten(1).mean(0) for k in range(3)])
    pred = torch.cdist(s.x_test.flatten(1), means).argmin(1)
    assert (pred == s.y_test).float().mean() > 0.9


def test_synthetic_defaults() -> None:
    s = load_dataset("synthetic")
    assert s.x_train.shape == (1000, 1, 8, 8) and s.x_test.shape == (250, 1, 8, 8)
    assert s.y_test.bincount().tolist() == [25] * 10


# --------------------------------------------------------------------------------------------------
# IDX parsing
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "array",
    [
        np.arange(24, dtype=np.uint8).reshape(2, 3, 4),
        np.array([-300, 5, 1000], dtype=np.int16),
        np.linspace(-1, 1, 6, dtype=np.float32).reshape(3, 2),
    ],
)
def test_parse_idx_round_trip(array: np.ndarray) -> None:
    parsed = parse_idx(idx_bytes(array), expected_shape=array.shape)
    assert parsed.dtype == array.dtype and np.array_equal(parsed, array)
    assert parsed.dtype.isnative


@pytest.mark.parametrize(
    ("blob", "fragment"),
    [
        (b"", "IDX magic"),
        (b"\x01\x00\x08\x01" + b"\x00" * 8, "IDX magic"),
        (b"\x00\x00\x07\x01\x00\x00\x00\x01\x05", "type code"),
        (b"\x00\x00\x08\x00", "at least 1 dimension"),
        (b"\x00\x00\x08\x03\x00\x00", "header"),
        (idx_bytes(np.zeros((4, 28, 28), np.uint8))[:-1], "truncated"),
        (idx_bytes(np.zeros((4,), np.uint8)) + b"\x00", "trailing bytes"),
    ],
)
def test_parse_idx_rejects_malformed_data(blob: bytes, fragment: str) -> None:
    with pytest.raises(DataError, match=fragment):
        parse_idx(blob, what="test data")


def test_parse_idx_checks_expected_shape_and_type() -> None:
    with pytest.raises(DataError, match=r"shape \(5,\)"):
        parse_idx(idx_bytes(np.zeros(4, np.uint8)), expected_shape=(5,))
    with pytest.raises(InvalidTypeError, match="bytes"):
        parse_idx("not bytes")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# download_file
# --------------------------------------------------------------------------------------------------


def test_download_file_http_with_a_404_mirror_first(
    served: tuple[Path, str], tmp_path: Path
) -> None:
    root, base = served
    blob = b"payload " * 1000
    (root / "f.bin").write_bytes(blob)
    dest = tmp_path / "out" / "f.bin"
    got = download_file(
        [f"{base}/missing/f.bin", f"{base}/f.bin"], dest, checksum=f"md5:{md5(blob)}"
    )
    assert got == dest and dest.read_bytes() == blob
    assert leftovers(dest.parent) == ["f.bin"]  # no temporary file left behind


def test_download_file_file_url_and_bare_sha256(tmp_path: Path) -> None:
    blob = bytes(range(256)) * 10
    src = tmp_path / "src.bin"
    src.write_bytes(blob)
    dest = tmp_path / "dst" / "copy.bin"
    download_file(src.as_uri(), dest, checksum=hashlib.sha256(blob).hexdigest())
    assert dest.read_bytes() == blob


def test_download_file_rejects_corrupted_copy_and_leaves_nothing(
    served: tuple[Path, str], tmp_path: Path
) -> None:
    root, base = served
    blob = b"good data" * 100
    (root / "f.bin").write_bytes(flip_bytes(blob, 10))
    dest = tmp_path / "out" / "f.bin"
    with pytest.raises(DataError, match=r"Download f\.bin manually into .*out") as info:
        download_file([f"{base}/f.bin", f"{base}/nope/f.bin"], dest, checksum=md5(blob))
    message = str(info.value)
    assert "\n" not in message and "HTTP 404" in message and f"md5 {md5(blob)}" in message
    assert not dest.exists() and leftovers(dest.parent) == []


def test_download_file_existing_file_is_replaced_only_by_a_valid_one(
    served: tuple[Path, str], tmp_path: Path
) -> None:
    root, base = served
    good = b"fresh" * 50
    (root / "f.bin").write_bytes(good)
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"old")
    with pytest.raises(DataError):
        download_file(f"{base}/f.bin", dest, checksum=md5(b"something else"))
    assert dest.read_bytes() == b"old"
    download_file(f"{base}/f.bin", dest, checksum=md5(good))
    assert dest.read_bytes() == good


def test_download_file_timeout(tmp_path: Path) -> None:
    # A listening socket that never answers: the connection is queued but no byte comes back.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/f.bin"
        with pytest.raises(DataError, match="timed out"):
            download_file(url, tmp_path / "f.bin", checksum="0" * 32, timeout=0.2)
    assert not (tmp_path / "f.bin").exists()


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"urls": "ftp://example.invalid/f"}, "file:// URLs"),
        ({"urls": []}, "non-empty list"),
        ({"checksum": "sha999:00"}, "checksum"),
        ({"checksum": 12}, "checksum"),
        ({"timeout": 0}, "timeout > 0"),
    ],
)
def test_download_file_bad_arguments(tmp_path: Path, kwargs: dict, fragment: str) -> None:
    args = {"urls": (tmp_path / "x").as_uri(), "checksum": "0" * 32, **kwargs}
    urls = args.pop("urls")
    with pytest.raises(InvalidParameterError, match=fragment):
        download_file(urls, tmp_path / "out", **args)


# --------------------------------------------------------------------------------------------------
# MNIST-style IDX datasets through load_dataset
# --------------------------------------------------------------------------------------------------


def test_mnist_download_over_http_returns_the_written_arrays(
    served: tuple[Path, str], monkeypatch: pytest.MonkeyPatch, isolated_cache: Path
) -> None:
    root, base = served
    tiny = TinyIdx(root / "mnist")
    monkeypatch.setitem(
        data.REGISTRY, "mnist", tiny.source((f"{base}/does-not-exist/", f"{base}/mnist/"))
    )
    splits = load_dataset("mnist")
    tiny.check(splits)
    assert splits.name == "mnist" and splits.num_classes == 10
    cache = isolated_cache / "mnist"
    assert leftovers(cache) == sorted(IDX_NAMES.values())
    for role, name in IDX_NAMES.items():
        assert (cache / name).read_bytes() == tiny.gz[role]
    # Second load: everything is on disk, so no mirror is needed any more.
    monkeypatch.setitem(data.REGISTRY, "mnist", tiny.source(()))
    tiny.check(load_dataset("mnist", download=False, scale="raw"), scale=1.0)


def test_fashion_mnist_download_via_file_urls_and_mirrors_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny = TinyIdx(tmp_path / "upstream", seed=5)
    monkeypatch.setitem(data.REGISTRY, "fashion-mnist", tiny.source(("http://127.0.0.1:9/",)))
    target = tmp_path / "mine"
    splits = load_dataset(
        "fashion_mnist", data_dir=target, mirrors=[(tmp_path / "upstream").as_uri()]
    )
    tiny.check(splits)
    assert splits.name == "fashion-mnist" and splits.classes is not None
    assert splits.classes[0] == "T-shirt/top"
    assert leftovers(target) == sorted(IDX_NAMES.values())


def test_corrupted_server_file_is_rejected_and_never_lands(
    served: tuple[Path, str], monkeypatch: pytest.MonkeyPatch, isolated_cache: Path
) -> None:
    root, base = served
    tiny = TinyIdx(root / "mnist")
    monkeypatch.setitem(data.REGISTRY, "mnist", tiny.source((f"{base}/mnist/",)))
    bad = root / "mnist" / IDX_NAMES["test_images"]
    bad.write_bytes(flip_bytes(bad.read_bytes(), 100))
    with pytest.raises(DataError, match="manually into") as info:
        load_dataset("mnist")
    assert "\n" not in str(info.value)
    cache = isolated_cache / "mnist"
    assert IDX_NAMES["test_images"] not in leftovers(cache)
    assert not [n for n in leftovers(cache) if n.endswith(".part")]


def test_corrupted_cached_file_is_detected_and_refetched(
    served: tuple[Path, str], monkeypatch: pytest.MonkeyPatch, isolated_cache: Path
) -> None:
    root, base = served
    tiny = TinyIdx(root / "mnist")
    monkeypatch.setitem(data.REGISTRY, "mnist", tiny.source((f"{base}/mnist/",)))
    cache = isolated_cache / "mnist"
    TinyIdx(cache)  # the same files in the cache...
    cached = cache / IDX_NAMES["train_images"]
    cached.write_bytes(flip_bytes(cached.read_bytes(), 50))  # ...one of them damaged
    with pytest.raises(DataError, match=r"MD5 .*or allow download \(download=False was given\)\.$"):
        load_dataset("mnist", download=False)
    tiny.check(load_dataset("mnist"))
    assert cached.read_bytes() == tiny.gz["train_images"]


def test_truncated_gz_idx_with_matching_md5_is_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny = TinyIdx(tmp_path / "srv")
    truncated = gzip.compress(tiny.raw["train_images"][:-28], mtime=0)
    (tmp_path / "srv" / IDX_NAMES["train_images"]).write_bytes(truncated)
    source = tiny.source(((tmp_path / "srv").as_uri(),))
    spec = source.files["train_images"]
    files = {**source.files, "train_images": FileSpec(**{**spec.__dict__, "md5": md5(truncated)})}
    monkeypatch.setitem(data.REGISTRY, "mnist", DatasetSource(source.mirrors, files))
    target = tmp_path / "dl"
    with pytest.raises(DataError, match="truncated"):
        load_dataset("mnist", data_dir=target)
    assert IDX_NAMES["train_images"] not in leftovers(target)


def test_data_dir_with_decompressed_idx_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny = TinyIdx(tmp_path / "unused")
    folder = tmp_path / "plain"
    folder.mkdir()
    for role, name in IDX_NAMES.items():
        (folder / name.removesuffix(".gz")).write_bytes(tiny.raw[role])
    monkeypatch.setitem(data.REGISTRY, "mnist", tiny.source(()))
    tiny.check(load_dataset("mnist", data_dir=folder, download=False))
    # Without a content digest, the structural check is what guards a plain file.
    spec = data.REGISTRY["mnist"].files["train_labels"]
    assert verify_file(folder / "train-labels-idx1-ubyte", spec) == "structure"
    labels = folder / "train-labels-idx1-ubyte"
    labels.write_bytes(tiny.raw["train_labels"][:-3])
    with pytest.raises(DataError, match="truncated"):
        load_dataset("mnist", data_dir=folder, download=False)
    labels.write_bytes(tiny.raw["train_labels"][:-1] + b"\x0c")  # label 12 > 9
    with pytest.raises(DataError, match=r"labels in \[0, 9\]"):
        load_dataset("mnist", data_dir=folder, download=False)


def test_content_sha256_accepts_recompressed_gz_and_rejects_damage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny = TinyIdx(tmp_path / "up")
    source = tiny.source((), content_sha=True)
    folder = tmp_path / "repacked"
    folder.mkdir()
    for role, name in IDX_NAMES.items():  # other gzip bytes, same content (as Debian's files)
        blob = gzip.compress(tiny.raw[role], compresslevel=1, mtime=123)
        assert md5(blob) != md5(tiny.gz[role])
        (folder / name).write_bytes(blob)
    spec = source.files["train_images"]
    assert verify_file(folder / spec.filename, spec) == "content-sha256"
    assert verify_file(tiny.folder / spec.filename, spec) == "md5"
    monkeypatch.setitem(data.REGISTRY, "fashion-mnist", source)
    tiny.check(load_dataset("fashion-mnist", data_dir=folder, download=False))
    damaged = gzip.compress(flip_bytes(tiny.raw["train_images"], 500), mtime=0)
    (folder / spec.filename).write_bytes(damaged)
    with pytest.raises(DataError, match="content SHA-256"):
        verify_file(folder / spec.filename, spec)
    (folder / spec.filename).write_bytes(damaged[: len(damaged) // 2])
    with pytest.raises(DataError, match="gzip"):
        load_dataset("fashion-mnist", data_dir=folder, download=False)


def test_fashion_mnist_looks_in_system_dir_when_cache_is_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_cache: Path
) -> None:
    tiny = TinyIdx(tmp_path / "system")
    source = tiny.source((), content_sha=True)
    monkeypatch.setitem(
        data.REGISTRY,
        "fashion-mnist",
        DatasetSource(mirrors=(), files=source.files, system_dirs=(str(tmp_path / "system"),)),
    )
    tiny.check(load_dataset("fashion-mnist", download=False))
    assert not (isolated_cache / "fashion-mnist").exists()  # read in place, nothing copied
    # An explicit data_dir is the only place searched.
    with pytest.raises(DataError, match="no such file"):
        load_dataset("fashion-mnist", data_dir=tmp_path / "empty", download=False)


@pytest.mark.skipif(
    not all((DEBIAN_FASHION / n).is_file() for n in IDX_NAMES.values()),
    reason="Debian's package is missing (apt-get install dataset-fashion-mnist)",
)
def test_debian_fashion_mnist(isolated_cache: Path) -> None:
    specs = data.REGISTRY["fashion-mnist"].files
    # Debian recompressed the files: the upstream MD5 cannot match, the content digest does.
    for spec in specs.values():
        path = DEBIAN_FASHION / spec.filename
        assert md5(path.read_bytes()) != spec.md5
        assert verify_file(path, spec) == "content-sha256"
    d = load_dataset("fashion-mnist", download=False)
    assert d.x_train.shape == (60000, 1, 28, 28) and d.x_test.shape == (10000, 1, 28, 28)
    assert d.y_train.bincount(minlength=10).tolist() == [6000] * 10
    assert d.y_test.bincount(minlength=10).tolist() == [1000] * 10
    assert d.x_train.dtype == torch.float32 and 0.0 <= float(d.x_train.min())
    assert float(d.x_train.max()) == 1.0
    assert not (isolated_cache / "fashion-mnist").exists()


# --------------------------------------------------------------------------------------------------
# CIFAR-10 binary archive
# --------------------------------------------------------------------------------------------------

CIFAR_MEMBERS = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]


def cifar_batches(n: int, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return {
        m: (
            rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8),
            rng.integers(0, 10, size=n, dtype=np.uint8),
        )
        for m in CIFAR_MEMBERS
    }


def cifar_record_bytes(images: np.ndarray, labels: np.ndarray) -> bytes:
    return b"".join(bytes([int(y)]) + img.tobytes() for img, y in zip(images, labels, strict=True))


def cifar_tarball(
    path: Path, batches: dict[str, tuple[np.ndarray, np.ndarray]], extra: list[tarfile.TarInfo] = ()
) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        folder = tarfile.TarInfo("cifar-10-batches-bin")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        for member, (images, labels) in batches.items():
            blob = cifar_record_bytes(images, labels)
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{member}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
        for info in extra:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    blob = buffer.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob)
    return blob


def cifar_source(blob: bytes, n: int, mirrors: tuple[str, ...]) -> DatasetSource:
    spec = FileSpec("cifar-10-binary.tar.gz", md5=md5(blob), shape=(n, 3, 32, 32), max_label=9)
    return DatasetSource(mirrors=mirrors, files={"archive": spec})


def test_cifar10_tiny_archive_layout_and_scaling(
    served: tuple[Path, str], monkeypatch: pytest.MonkeyPatch, isolated_cache: Path
) -> None:
    root, base = served
    batches = cifar_batches(4)
    blob = cifar_tarball(root / "cifar-10-binary.tar.gz", batches)
    monkeypatch.setitem(data.REGISTRY, "cifar10", cifar_source(blob, 4, (f"{base}/",)))
    raw = load_dataset("cifar10", scale="raw")
    assert raw.x_train.shape == (20, 3, 32, 32) and raw.x_test.shape == (4, 3, 32, 32)
    assert raw.input_shape == (3, 32, 32) and raw.classes is not None
    assert raw.classes[0] == "airplane" and raw.x_train.dtype == torch.float32
    train_x = np.concatenate([batches[m][0] for m in CIFAR_MEMBERS[:5]])
    train_y = np.concatenate([batches[m][1] for m in CIFAR_MEMBERS[:5]])
    assert torch.equal(raw.x_train, torch.from_numpy(train_x).float())
    assert torch.equal(raw.y_train, torch.from_numpy(train_y).long())
    assert torch.equal(raw.x_test, torch.from_numpy(batches["test_batch.bin"][0]).float())
    # CHW: in a record, byte 1 + c*1024 + h*32 + w is channel c, row h, column w.
    record = cifar_record_bytes(*batches["test_batch.bin"])[: 1 + 3072]
    assert raw.x_test[0, 2, 5, 7].item() == record[1 + 2 * 1024 + 5 * 32 + 7]
    assert raw.y_test[0].item() == record[0]
    assert float(raw.x_train.max()) > 1.0
    unit = load_dataset("cifar10", download=False)  # from the cache now
    assert torch.allclose(unit.x_train, raw.x_train / 255.0)
    assert 0.0 <= float(unit.x_train.min()) and float(unit.x_train.max()) <= 1.0
    assert leftovers(isolated_cache / "cifar10") == ["cifar-10-binary.tar.gz"]


def test_cifar10_extracted_folder_in_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches = cifar_batches(3, seed=2)
    folder = tmp_path / "cifar" / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    for member, (images, labels) in batches.items():
        (folder / member).write_bytes(cifar_record_bytes(images, labels))
    monkeypatch.setitem(data.REGISTRY, "cifar10", cifar_source(b"", 3, ()))
    d = load_dataset("cifar10", data_dir=tmp_path / "cifar", download=False, scale="raw")
    assert torch.equal(d.x_test, torch.from_numpy(batches["test_batch.bin"][0]).float())
    (folder / "data_batch_3.bin").write_bytes(b"\x00" * 100)
    with pytest.raises(DataError, match="records of 3073 bytes"):
        load_dataset("cifar10", data_dir=tmp_path / "cifar", download=False)


def _member(name: str, kind: bytes = tarfile.REGTYPE, size: int = 3) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    if kind == tarfile.SYMTYPE:
        info.linkname = "/etc/passwd"
    else:
        info.size = size
    return info


@pytest.mark.parametrize(
    "evil",
    [
        _member("../evil.bin"),
        _member("cifar-10-batches-bin/../../evil.bin"),
        _member("/tmp/evil.bin"),
        _member("cifar-10-batches-bin/link", tarfile.SYMTYPE),
    ],
    ids=["dotdot", "nested-dotdot", "absolute", "symlink"],
)
def test_cifar10_unsafe_archive_member_is_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, evil: tarfile.TarInfo
) -> None:
    folder = tmp_path / "cifar"
    blob = cifar_tarball(folder / "cifar-10-binary.tar.gz", cifar_batches(2), extra=[evil])
    monkeypatch.setitem(data.REGISTRY, "cifar10", cifar_source(blob, 2, ()))
    with pytest.raises(DataError, match="unsafe member"):
        load_dataset("cifar10", data_dir=folder, download=False)
    assert leftovers(folder) == ["cifar-10-binary.tar.gz"]  # nothing extracted
    assert not (tmp_path / "evil.bin").exists()


def test_cifar10_archive_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "cifar"
    archive = folder / "cifar-10-binary.tar.gz"
    batches = cifar_batches(2)
    incomplete = dict(list(batches.items())[:-1])
    blob = cifar_tarball(archive, incomplete)
    monkeypatch.setitem(data.REGISTRY, "cifar10", cifar_source(blob, 2, ()))
    with pytest.raises(DataError, match=r"test_batch\.bin"):
        load_dataset("cifar10", data_dir=folder, download=False)
    blob = cifar_tarball(archive, batches)
    monkeypatch.setitem(data.REGISTRY, "cifar10", cifar_source(blob, 3, ()))  # wrong batch size
    with pytest.raises(DataError, match="9219 bytes"):
        load_dataset("cifar10", data_dir=folder, download=False)
    monkeypatch.setitem(data.REGISTRY, "cifar10", cifar_source(b"other", 2, ()))
    with pytest.raises(DataError, match="MD5"):
        load_dataset("cifar10", data_dir=folder, download=False)


# --------------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kwargs", "error", "fragment"),
    [
        ("imagenet", {}, InvalidParameterError, "'cifar10', 'digits', 'fashion-mnist'"),
        (3, {}, InvalidTypeError, "name as a string"),
        ("digits", {"scale": "raw"}, InvalidParameterError, "options of 'digits'"),
        ("digits", {"test_size": 1.5}, InvalidParameterError, "test_size in"),
        ("digits", {"seed": -1}, InvalidParameterError, "seed as an integer"),
        ("digits", {"seed": 1.5}, InvalidParameterError, "seed as an integer"),
        ("mnist", {"download": "yes"}, InvalidParameterError, "download as True or False"),
        ("mnist", {"scale": "percent"}, InvalidParameterError, "scale in"),
        ("mnist", {"timeout": -1}, InvalidParameterError, "timeout > 0"),
        ("mnist", {"mirrors": ["ftp://x/"]}, InvalidParameterError, "file:// URLs"),
        ("mnist", {"data_dir": 5}, InvalidTypeError, "data_dir as a path"),
        ("synthetic", {"num_classes": 1}, InvalidParameterError, "num_classes >= 2"),
        ("synthetic", {"n_train": 0}, InvalidParameterError, "n_train"),
        ("synthetic", {"n_test": 3}, InvalidParameterError, "at least one sample per class"),
        ("synthetic", {"input_shape": (8, 8)}, InvalidParameterError, r"\(C, H, W\)"),
        ("synthetic", {"noise": -0.1}, InvalidParameterError, "noise >= 0"),
    ],
)
def test_bad_input(name: object, kwargs: dict, error: type[Exception], fragment: str) -> None:
    with pytest.raises(error, match=fragment) as info:
        load_dataset(name, **kwargs)  # type: ignore[arg-type]
    assert str(info.value).startswith("load_dataset: expected") and "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist", "cifar10"])
def test_download_false_with_nothing_on_disk_says_what_to_do(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = data.REGISTRY[name]
    monkeypatch.setitem(data.REGISTRY, name, DatasetSource(source.mirrors, source.files))
    with pytest.raises(DataError) as info:
        load_dataset(name, data_dir=tmp_path / "nothing", download=False)
    message = str(info.value)
    assert message.startswith("load_dataset: expected") and "\n" not in message
    assert "Download it from http" in message and str(tmp_path / "nothing") in message
    assert "--data-dir" in message
    assert not (tmp_path / "nothing").exists()


def test_all_mirrors_failing_gives_one_line_with_the_fix(
    served: tuple[Path, str], monkeypatch: pytest.MonkeyPatch, isolated_cache: Path
) -> None:
    _, base = served
    tiny = TinyIdx(isolated_cache.parent / "elsewhere")
    monkeypatch.setitem(data.REGISTRY, "mnist", tiny.source((f"{base}/a/", f"{base}/b/")))
    with pytest.raises(DataError) as info:
        load_dataset("mnist")
    message = str(info.value)
    assert "\n" not in message and message.count("HTTP 404") == 2
    assert f"manually into {isolated_cache / 'mnist'}" in message and "--data-dir" in message


# --------------------------------------------------------------------------------------------------
# Bounds: nothing is read, decompressed or downloaded past the size a valid copy has
# --------------------------------------------------------------------------------------------------

FASHION_SHAPE = (60000, 28, 28)
FASHION_IMAGES = IDX_NAMES["train_images"]
ZERO_CHUNK = b"\x00" * (1 << 20)


def idx_header(shape: tuple[int, ...], code: int = 0x08) -> bytes:
    return bytes([0, 0, code, len(shape)]) + np.asarray(shape, dtype=">u4").tobytes()


def gzip_bomb(header: bytes, zero_chunks: int) -> bytes:
    """A valid gzip file of ``header`` followed by ``zero_chunks`` MiB of zeros, built without
    compressing them all: after a full flush deflate restarts from an empty state, so every
    flushed chunk of zeros compresses to the same bytes and is repeated as such."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = deflate.compress(header) + deflate.flush(zlib.Z_FULL_FLUSH)
    block = deflate.compress(ZERO_CHUNK) + deflate.flush(zlib.Z_FULL_FLUSH)
    tail = deflate.flush(zlib.Z_FINISH)
    crc = zlib.crc32(header)
    for _ in range(zero_chunks):
        crc = zlib.crc32(ZERO_CHUNK, crc)
    size = len(header) + zero_chunks * len(ZERO_CHUNK)
    trailer = crc.to_bytes(4, "little") + (size % 2**32).to_bytes(4, "little")
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + head + block * zero_chunks + tail + trailer


class CountingGzipFile(gzip.GzipFile):
    """A ``gzip.GzipFile`` that counts the decompressed bytes handed out (``readinto`` and
    ``read1`` of ``GzipFile`` both go through ``read``/``read1``)."""

    total = 0

    def read(self, size: int = -1) -> bytes:
        out = super().read(size)
        CountingGzipFile.total += len(out)
        return out

    def read1(self, size: int = -1) -> bytes:
        out = super().read1(size)
        CountingGzipFile.total += len(out)
        return out


@pytest.fixture
def count_gunzip(monkeypatch: pytest.MonkeyPatch) -> type[CountingGzipFile]:
    CountingGzipFile.total = 0
    monkeypatch.setattr(gzip, "GzipFile", CountingGzipFile)
    return CountingGzipFile


class CountingReader:
    """A binary stream that counts the bytes read through it."""

    def __init__(self, stream: io.RawIOBase) -> None:
        self.stream, self.total = stream, 0

    def read(self, n: int = -1) -> bytes:
        out = self.stream.read(n)
        self.total += len(out)
        return out

    def readinto(self, buffer: memoryview) -> int:
        k = self.stream.readinto(buffer)
        self.total += k
        return k


@pytest.fixture
def count_opened(monkeypatch: pytest.MonkeyPatch) -> list[CountingReader]:
    """Count the bytes the verification module reads from every file it opens."""
    opened: list[CountingReader] = []

    def counting_open(path: object, mode: str = "r", *args: object, **kwargs: object):
        handle = open(path, mode, *args, **kwargs)
        reader = CountingReader(handle)
        opened.append(reader)

        class Managed:
            def __enter__(self) -> CountingReader:
                return reader

            def __exit__(self, *exc: object) -> None:
                handle.close()

        return Managed()

    monkeypatch.setattr(verify_module, "open", counting_open, raising=False)
    return opened


def test_gzip_bomb_builder_is_a_valid_gzip_of_the_stated_content() -> None:
    header = idx_header((3, 2))
    blob = gzip_bomb(header, 3)
    assert gzip.decompress(blob) == header + b"\x00" * (3 << 20)
    assert len(gzip_bomb(header, 1024)) < 1100 * 1024  # ~1 GiB of content in ~1 MiB


def test_read_idx_stops_a_gzip_bomb_after_the_declared_bytes() -> None:
    shape = (2000, 28, 28)
    header = idx_header(shape)
    bomb = gzip_bomb(header, 1024)  # 1 GiB of zeros after the header
    reader = CountingReader(gzip.GzipFile(fileobj=io.BytesIO(bomb)))
    with pytest.raises(DataError, match="trailing bytes"):
        data.read_idx(reader, expected_shape=shape, what="bomb.gz")
    assert reader.total == len(header) + math.prod(shape) + 1
    # The same stream cut at the right length is accepted: the stop is what rejects the bomb.
    good = gzip.compress(header + bytes(math.prod(shape)), mtime=0)
    array = data.read_idx(gzip.GzipFile(fileobj=io.BytesIO(good)), expected_shape=shape)
    assert array.shape == shape and not array.any()


@pytest.fixture(scope="module")
def fashion_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1 MiB gzip whose content is a valid Fashion-MNIST header and ~1 GiB of zeros."""
    folder = tmp_path_factory.mktemp("bomb")
    (folder / FASHION_IMAGES).write_bytes(gzip_bomb(idx_header(FASHION_SHAPE), 1024))
    return folder


def test_gzip_bomb_named_as_fashion_mnist_is_refused_after_the_expected_size(
    fashion_bomb: Path, count_gunzip: type[CountingGzipFile]
) -> None:
    spec = data.REGISTRY["fashion-mnist"].files["train_images"]
    bomb = fashion_bomb / FASHION_IMAGES
    assert bomb.stat().st_size <= spec.stored_limit  # small enough to pass the size check
    with pytest.raises(DataError, match="trailing bytes") as info:
        load_dataset("fashion-mnist", data_dir=fashion_bomb, download=False)
    expected = 16 + math.prod(FASHION_SHAPE)
    assert count_gunzip.total <= expected + 1  # 47 MB read of the 1 GiB the file holds
    message = str(info.value)
    assert "\n" not in message and str(bomb) in message and "download" in message


def test_gzip_bomb_with_a_huge_header_is_refused_from_the_header(
    tmp_path: Path, count_gunzip: type[CountingGzipFile]
) -> None:
    (tmp_path / FASHION_IMAGES).write_bytes(gzip_bomb(idx_header((1_000_000, 28, 28)), 64))
    with pytest.raises(DataError, match=r"shape \(60000, 28, 28\), got \(1000000, 28, 28\)"):
        load_dataset("fashion-mnist", data_dir=tmp_path, download=False)
    assert count_gunzip.total <= 16


def test_gzip_larger_than_any_valid_copy_is_refused_from_its_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, count_gunzip: type[CountingGzipFile]
) -> None:
    tiny = TinyIdx(tmp_path / "tiny")
    monkeypatch.setitem(data.REGISTRY, "mnist", tiny.source(()))
    spec = data.REGISTRY["mnist"].files["train_images"]
    bomb = gzip_bomb(idx_header(spec.shape), 256)
    assert len(bomb) > spec.stored_limit
    (tiny.folder / spec.filename).write_bytes(bomb)
    with pytest.raises(DataError, match=rf"at most {spec.stored_limit} bytes"):
        load_dataset("mnist", data_dir=tiny.folder, download=False)
    assert count_gunzip.total == 0


@pytest.mark.parametrize("content", [b"", b"\x00" * 1000, bytes(range(256)) * 400])
def test_gzip_bound_holds_for_incompressible_and_empty_content(content: bytes) -> None:
    # Random bytes are the worst case of deflate; gzip of them must fit under the bound.
    rng = np.random.default_rng(1)
    for blob in (content, rng.integers(0, 256, size=len(content) + 70000, dtype=np.uint8)):
        raw = bytes(blob)
        assert len(gzip.compress(raw, compresslevel=9)) <= data.registry.gzip_bound(len(raw))
        assert len(gzip.compress(raw, compresslevel=0)) <= data.registry.gzip_bound(len(raw))


def sparse_file(path: Path, head: bytes, size: int) -> Path:
    """A file of ``size`` bytes that starts with ``head`` and takes no disk space after it."""
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(size)
    return path


def test_sparse_4gb_idx_is_refused_from_its_size_before_reading(
    tmp_path: Path, count_opened: list[CountingReader]
) -> None:
    sparse_file(tmp_path / "train-images-idx3-ubyte", idx_header(FASHION_SHAPE), 4 << 30)
    with pytest.raises(DataError, match=r"got 4294967296\. Delete") as info:
        load_dataset("fashion-mnist", data_dir=tmp_path, download=False)
    assert sum(r.total for r in count_opened) == 0
    assert str(tmp_path / "train-images-idx3-ubyte") in str(info.value)


def test_plain_idx_with_a_wide_element_type_is_refused_from_its_header(
    tmp_path: Path, count_opened: list[CountingReader]
) -> None:
    # The right dims in float64 would be 8x the data: refused on the header, data never read.
    path = sparse_file(tmp_path / "t.idx", idx_header((4000, 28, 28), 0x0E), 16 + 4000 * 784)
    spec = FileSpec("t.idx", shape=(4000, 28, 28))
    with pytest.raises(DataError, match="exactly"):
        verify_file(path, spec)
    assert sum(r.total for r in count_opened) <= 2 + 16  # the gzip magic test, the header
    with open(path, "rb") as f:  # and from a stream of unknown size, by max_bytes
        with pytest.raises(DataError, match=r"at most 3136000 data bytes"):
            data.read_idx(f, expected_shape=(4000, 28, 28), max_bytes=3136000)


def test_sparse_cifar_batch_is_refused_from_its_size_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, count_opened: list[CountingReader]
) -> None:
    folder = tmp_path / "cifar" / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    for member, (images, labels) in cifar_batches(2).items():
        (folder / member).write_bytes(cifar_record_bytes(images, labels))
    sparse_file(folder / "test_batch.bin", b"\x01" * 3073, 4 << 30)
    monkeypatch.setitem(data.REGISTRY, "cifar10", cifar_source(b"", 2, ()))
    with pytest.raises(DataError, match=r"\(6146 bytes\), got 4294967296 bytes"):
        load_dataset("cifar10", data_dir=tmp_path / "cifar", download=False)
    assert count_opened[-1].total == 0  # the sparse batch: its size refused it
    assert sum(r.total for r in count_opened) == 5 * 2 * 3073  # the five good batches


def test_sparse_cifar_archive_is_refused_from_its_size(
    tmp_path: Path, count_opened: list[CountingReader]
) -> None:
    spec = data.REGISTRY["cifar10"].files["archive"]
    sparse_file(tmp_path / spec.filename, b"\x1f\x8b", 4 << 30)
    with pytest.raises(DataError, match=rf"at most {spec.stored_limit} bytes"):
        load_dataset("cifar10", data_dir=tmp_path, download=False)
    assert sum(r.total for r in count_opened) == 0


def test_cifar_member_with_a_huge_declared_size_is_refused_from_its_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A tar header claiming 2 GiB for a batch, with no data behind it: refused on the header.
    info = tarfile.TarInfo("cifar-10-batches-bin/data_batch_1.bin")
    info.size = 2 << 30
    archive = tmp_path / "cifar-10-binary.tar.gz"
    archive.write_bytes(gzip.compress(info.tobuf(format=tarfile.GNU_FORMAT) + b"\x00" * 512))
    monkeypatch.setitem(data.REGISTRY, "cifar10", cifar_source(b"", 2, ()))
    files = {"archive": FileSpec(archive.name, shape=(2, 3, 32, 32), max_label=9)}
    monkeypatch.setitem(data.REGISTRY, "cifar10", DatasetSource((), files))
    with pytest.raises(DataError, match=r"got 2147483648 by") as error:
        load_dataset("cifar10", data_dir=tmp_path, download=False)
    assert "\n" not in str(error.value) and "download cifar-10-binary.tar.gz" in str(error.value)


def test_cifar_archive_with_too_many_members_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = [_member(f"cifar-10-batches-bin/x{i}") for i in range(40)]
    blob = cifar_tarball(tmp_path / "cifar-10-binary.tar.gz", cifar_batches(2), extra=extra)
    monkeypatch.setitem(data.REGISTRY, "cifar10", cifar_source(blob, 2, ()))
    with pytest.raises(DataError, match="at most 32 members"):
        load_dataset("cifar10", data_dir=tmp_path, download=False)


def test_size_limits_of_the_registry_admit_the_real_files() -> None:
    # Upstream sizes (the bytes the mirrors serve) must fit under every limit derived for them,
    # and each decompressed IDX size is the header plus one byte per element.
    for source in data.REGISTRY.values():
        for spec in source.files.values():
            assert spec.size is not None and spec.size <= spec.stored_limit
            assert spec.size < spec.download_limit <= spec.size * 1.01 + 65536
    fashion = data.REGISTRY["fashion-mnist"].files
    assert [fashion[r].content_bytes for r in fashion] == [47040016, 60008, 7840016, 10008]
    cifar = data.REGISTRY["cifar10"].files["archive"]
    assert cifar.content_bytes >= 6 * 10000 * 3073


def test_cifar_content_bound_covers_a_written_archive(tmp_path: Path) -> None:
    blob = cifar_tarball(tmp_path / "c.tar.gz", cifar_batches(3), extra=[_member("readme.html")])
    spec = cifar_source(blob, 3, ()).files["archive"]
    assert len(gzip.decompress(blob)) <= spec.content_bytes
    assert verify_file(tmp_path / "c.tar.gz", spec) == "md5"


# --------------------------------------------------------------------------------------------------
# Download caps
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def count_downloaded(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the bytes every response hands to the downloader."""
    counts: list[int] = []
    real = urllib.request.urlopen

    def counting(*args: object, **kwargs: object):
        response = real(*args, **kwargs)
        counts.append(0)
        index = len(counts) - 1
        read = response.read

        def counted_read(n: int = -1) -> bytes:
            out = read(n)
            counts[index] += len(out)
            return out

        response.read = counted_read
        return response

    monkeypatch.setattr(urllib.request, "urlopen", counting)
    return counts


def test_download_from_dev_zero_is_capped(tmp_path: Path, count_downloaded: list[int]) -> None:
    dest = tmp_path / "out" / "f.bin"
    with pytest.raises(DataError, match=r"at most 1048576 bytes, got more") as info:
        download_file("file:///dev/zero", dest, checksum="0" * 32, max_bytes=1 << 20)
    assert "\n" not in str(info.value)
    assert count_downloaded == [(1 << 20) + 1]
    assert leftovers(dest.parent) == []


def test_load_dataset_mirror_pointing_at_dev_zero_is_capped_at_the_known_size(
    tmp_path: Path, isolated_cache: Path, count_downloaded: list[int]
) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / FASHION_IMAGES).symlink_to("/dev/zero")
    spec = data.REGISTRY["fashion-mnist"].files["train_images"]
    with pytest.raises(DataError, match=rf"at most {spec.download_limit} bytes") as info:
        load_dataset("fashion-mnist", mirrors=[mirror.as_uri()], data_dir=tmp_path / "d")
    assert "\n" not in str(info.value) and "manually into" in str(info.value)
    assert count_downloaded == [spec.download_limit + 1]
    assert leftovers(tmp_path / "d") == []


def test_download_with_too_large_content_length_is_refused_before_reading(
    served: tuple[Path, str], tmp_path: Path, count_downloaded: list[int]
) -> None:
    root, base = served
    (root / "big.bin").write_bytes(b"x" * 5000)
    with pytest.raises(DataError, match=r"at most 4096 bytes, got a Content-Length of 5000"):
        download_file(f"{base}/big.bin", tmp_path / "big.bin", checksum="0" * 32, max_bytes=4096)
    assert count_downloaded == [0]
    got = download_file(
        f"{base}/big.bin",
        tmp_path / "big.bin",
        checksum=f"md5:{md5(b'x' * 5000)}",
        max_bytes=5000,
    )
    assert got.read_bytes() == b"x" * 5000


class _EndlessHandler(_QuietHandler):
    """Serves zeros without a Content-Length until the client hangs up."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        try:
            while True:
                self.wfile.write(b"\x00" * 65536)
        except OSError:
            pass


def test_endless_http_body_without_length_is_capped(
    tmp_path: Path, count_downloaded: list[int]
) -> None:
    with local_server(_EndlessHandler) as base:
        with pytest.raises(DataError, match=r"at most 300000 bytes, got more"):
            download_file(f"{base}/zeros", tmp_path / "z", checksum="0" * 32, max_bytes=300000)
    assert count_downloaded[0] <= 300001
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("max_bytes", [0, -5, 1.5, "10"])
def test_download_file_bad_max_bytes(tmp_path: Path, max_bytes: object) -> None:
    with pytest.raises(InvalidParameterError, match="max_bytes as an integer >= 1"):
        download_file(
            (tmp_path / "x").as_uri(), tmp_path / "y", checksum="0" * 32, max_bytes=max_bytes
        )  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# Progress bar
# --------------------------------------------------------------------------------------------------


def test_download_progress_bar_shows_bytes_and_total(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blob = bytes(range(256)) * 40  # 10240 bytes = 10.0 KiB
    (tmp_path / "f.bin").write_bytes(blob)
    download_file(
        (tmp_path / "f.bin").as_uri(), tmp_path / "o.bin", checksum=md5(blob), progress=True
    )
    err = capsys.readouterr().err
    assert "f.bin" in err and "10.0k/10.0k" in err and "100%" in err
    download_file((tmp_path / "f.bin").as_uri(), tmp_path / "p.bin", checksum=md5(blob))
    assert capsys.readouterr().err == ""  # off by default


def test_download_progress_is_silent_without_tqdm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # import raises ImportError
    blob = b"abc" * 100
    (tmp_path / "f.bin").write_bytes(blob)
    got = download_file(
        (tmp_path / "f.bin").as_uri(), tmp_path / "o.bin", checksum=md5(blob), progress=True
    )
    assert got.read_bytes() == blob and capsys.readouterr().err == ""


def test_load_dataset_progress_reports_each_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tiny = TinyIdx(tmp_path / "upstream")
    monkeypatch.setitem(data.REGISTRY, "mnist", tiny.source(((tmp_path / "upstream").as_uri(),)))
    tiny.check(load_dataset("mnist", data_dir=tmp_path / "d", progress=True))
    err = capsys.readouterr().err
    for name in IDX_NAMES.values():
        assert name in err
    tiny.check(load_dataset("mnist", data_dir=tmp_path / "d", progress=True))
    assert capsys.readouterr().err == ""  # nothing downloaded, nothing shown


# --------------------------------------------------------------------------------------------------
# Padding to 32 x 32
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", ["unit", "raw"])
def test_pad_gives_zero_bordered_32x32_images(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scale: str
) -> None:
    tiny = TinyIdx(tmp_path / "f")
    monkeypatch.setitem(data.REGISTRY, "fashion-mnist", tiny.source(()))
    plain = load_dataset("fashion-mnist", data_dir=tiny.folder, download=False, scale=scale)
    padded = load_dataset("fashion-mnist", data_dir=tiny.folder, download=False, scale=scale, pad=2)
    assert padded.input_shape == (1, 32, 32) and padded.x_train.shape == (20, 1, 32, 32)
    assert padded.x_test.shape == (8, 1, 32, 32) and padded.x_train.dtype == torch.float32
    for a, b in ((plain.x_train, padded.x_train), (plain.x_test, padded.x_test)):
        assert torch.equal(torch.nn.functional.pad(a, (2, 2, 2, 2)), b)
        assert torch.equal(b[..., 2:30, 2:30], a)
    border = padded.x_train.clone()
    border[..., 2:30, 2:30] = 0
    assert not border.any()
    assert torch.equal(padded.y_train, plain.y_train) and torch.equal(padded.y_test, plain.y_test)
    zero = load_dataset("fashion-mnist", data_dir=tiny.folder, download=False, scale=scale, pad=0)
    assert torch.equal(zero.x_train, plain.x_train) and zero.input_shape == (1, 28, 28)


@pytest.mark.parametrize(
    ("name", "kwargs", "error", "fragment"),
    [
        ("mnist", {"pad": -1}, InvalidParameterError, "pad as an integer >= 0"),
        ("mnist", {"pad": 1.5}, InvalidParameterError, "pad as an integer >= 0"),
        ("mnist", {"pad": "2"}, InvalidParameterError, "pad as an integer >= 0"),
        ("mnist", {"pad": True}, InvalidParameterError, "pad as an integer >= 0"),
        ("fashion-mnist", {"pad": 29}, InvalidParameterError, r"pad in \[0, 28\]"),
        ("cifar10", {"pad": 2}, InvalidParameterError, "options of 'cifar10'"),
        ("digits", {"pad": 2}, InvalidParameterError, "options of 'digits'"),
        ("mnist", {"progress": "yes"}, InvalidParameterError, "progress as True or False"),
    ],
)
def test_bad_pad_and_progress(
    tmp_path: Path, name: str, kwargs: dict, error: type[Exception], fragment: str
) -> None:
    with pytest.raises(error, match=fragment) as info:
        load_dataset(name, data_dir=tmp_path, download=False, **kwargs)
    assert str(info.value).startswith("load_dataset: expected") and "\n" not in str(info.value)


@pytest.mark.skipif(
    not all((DEBIAN_FASHION / n).is_file() for n in IDX_NAMES.values()),
    reason="Debian's package is missing (apt-get install dataset-fashion-mnist)",
)
def test_debian_fashion_mnist_padded_to_32(isolated_cache: Path) -> None:
    d = load_dataset("fashion-mnist", download=False, pad=2)
    assert d.x_train.shape == (60000, 1, 32, 32) and d.input_shape == (1, 32, 32)
    assert not d.x_train[..., :2, :].any() and not d.x_train[..., 30:].any()
    # The first training image of Fashion-MNIST is an ankle boot (label 9).
    assert d.y_train[0].item() == 9 and float(d.x_train[0].max()) == 1.0


# --------------------------------------------------------------------------------------------------
# Every loader error is one line naming the file and the fix
# --------------------------------------------------------------------------------------------------


def _damage(tiny: TinyIdx, how: str) -> None:
    path = tiny.folder / IDX_NAMES["train_images"]
    raw = tiny.raw["train_images"]
    blobs = {
        "truncated gzip": tiny.gz["train_images"][:-20],
        "wrong header": gzip.compress(b"\x00\x00\x08\x02" + raw[8:], mtime=0),
        "trailing bytes": gzip.compress(raw + b"\x00", mtime=0),
        "not gzip, not idx": b"<html>not found</html>",
        "wrong shape": gzip.compress(idx_bytes(tiny.arrays["train_images"][:-1]), mtime=0),
    }
    path.write_bytes(blobs[how])


@pytest.mark.parametrize(
    "how", ["truncated gzip", "wrong header", "trailing bytes", "not gzip, not idx", "wrong shape"]
)
def test_every_corrupt_idx_gives_one_line_with_the_file_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    tiny = TinyIdx(tmp_path / "d")
    monkeypatch.setitem(data.REGISTRY, "mnist", tiny.source((), content_sha=True))
    _damage(tiny, how)
    with pytest.raises(DataError) as info:
        load_dataset("mnist", data_dir=tiny.folder, download=False)
    message = str(info.value)
    assert "\n" not in message and message.startswith("load_dataset: expected")
    assert str(tiny.folder / IDX_NAMES["train_images"]) in message
    assert "download" in message.lower()
