"""Tests of the dataset loaders: digits, synthetic, IDX parsing, downloads, CIFAR-10 archives.

No test reaches the network: downloads are served by an http.server on 127.0.0.1 or read through
``file://`` URLs, from small files that the tests write themselves, with the mirror table of
``data.REGISTRY`` pointed at them.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import io
import socket
import tarfile
import threading
from collections.abc import Iterator
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


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """An HTTP server on 127.0.0.1 serving ``tmp_path / "www"``; yields (folder, base URL)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


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
