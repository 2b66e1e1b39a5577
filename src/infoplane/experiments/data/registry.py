"""The datasets infoplane knows: their names, files, checksums, sizes and mirrors.

Everything a reader needs to know *before* it reads a byte lives here: the exact array shape of
every IDX file, the record layout of the CIFAR-10 batches, the size of every hosted file. The
readers (:mod:`.formats`, :mod:`.verify`) and the downloader (:mod:`.download`) derive their
limits from these entries, so no file is ever read or downloaded past the size a valid copy has.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DATASET_NAMES: tuple[str, ...] = ("cifar10", "digits", "fashion-mnist", "mnist", "synthetic")
ALIASES: dict[str, str] = {
    "fashion_mnist": "fashion-mnist",
    "fashionmnist": "fashion-mnist",
    "cifar-10": "cifar10",
    "cifar_10": "cifar10",
}
DIGIT_CLASSES: tuple[str, ...] = tuple(str(i) for i in range(10))
FASHION_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
DEBIAN_FASHION_DIR = "/usr/share/datasets/fashion-mnist"

#: CIFAR-10 binary layout: one label byte, then 3 x 32 x 32 pixel bytes in CHW order.
CIFAR_RECORD = 1 + 3 * 32 * 32
CIFAR_DIR = "cifar-10-batches-bin"
CIFAR_TRAIN: tuple[str, ...] = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR_TEST = "test_batch.bin"
CIFAR_BATCHES: tuple[str, ...] = (*CIFAR_TRAIN, CIFAR_TEST)
#: The most members a CIFAR-10 archive may hold (the real one has 9) and the room, in bytes, left
#: for the members other than the six batches (``readme.html``, ``batches.meta.txt``).
CIFAR_MAX_MEMBERS = 32
CIFAR_OTHER_BYTES = 1 << 16

_TAR_BLOCK = 512
#: Room for a gzip header's optional name, comment and extra fields, and for a few members.
_GZIP_SLACK = 1 << 16


def gzip_bound(content_bytes: int) -> int:
    """The largest gzip file that can hold ``content_bytes`` of content.

    Deflate never grows data by more than its stored-block overhead (5 bytes per block of at most
    65535 bytes, under 1/1024 of the input; zlib's ``deflateBound``); the slack covers the gzip
    header's optional fields and trailers.
    """
    return content_bytes + content_bytes // 1024 + _GZIP_SLACK


@dataclass(frozen=True)
class FileSpec:
    """One file of a dataset and how to recognise a good copy of it.

    Attributes:
        filename: the name of the file as hosted by the mirrors (``"train-images-idx3-ubyte.gz"``).
        md5: hex MD5 of the hosted bytes (the compressed file), or ``None`` if unknown.
        content_sha256: hex SHA-256 digests of the *decompressed* content that are accepted too.
        shape: for an IDX file the exact array shape (``(60000, 28, 28)``); for the CIFAR-10
            archive the shape ``(N, 3, 32, 32)`` of *each* batch file; ``None`` skips the check.
        max_label: for a label file, the largest valid label (``9``); ``None`` for image files.
        size: bytes of the hosted file when known; a download stops past ``size`` plus a small
            margin (:attr:`download_limit`).
    """

    filename: str
    md5: str | None = None
    content_sha256: tuple[str, ...] = ()
    shape: tuple[int, ...] | None = None
    max_label: int | None = None
    size: int | None = None

    @property
    def local_names(self) -> tuple[str, ...]:
        """Names accepted on disk: the hosted name, then the decompressed name for a ``.gz``."""
        if self.filename.endswith(".gz") and not self.is_archive:
            return (self.filename, self.filename[: -len(".gz")])
        return (self.filename,)

    @property
    def is_archive(self) -> bool:
        """True for a tar archive (the CIFAR-10 release), False for a single IDX file."""
        return self.filename.endswith(".tar.gz")

    @property
    def content_bytes(self) -> int | None:
        """Bytes of the decompressed content: exact for an IDX file of unsigned bytes (header and
        data), an upper bound for the CIFAR-10 archive; ``None`` when ``shape`` is unknown."""
        if self.shape is None:
            return None
        if self.is_archive:
            batch = -(-self.shape[0] * CIFAR_RECORD // _TAR_BLOCK) * _TAR_BLOCK
            members = len(CIFAR_BATCHES) * (_TAR_BLOCK + batch)
            return members + CIFAR_MAX_MEMBERS * _TAR_BLOCK + CIFAR_OTHER_BYTES + 20 * _TAR_BLOCK
        return 4 + 4 * len(self.shape) + math.prod(self.shape)

    @property
    def stored_limit(self) -> int | None:
        """The largest file on disk that can be a valid copy (compressed or not), or ``None``
        when the shape is unknown. A larger file is rejected before it is read."""
        content = self.content_bytes
        return None if content is None else gzip_bound(content)

    @property
    def download_limit(self) -> int | None:
        """The most bytes a download of this file may bring: the hosted size plus a margin of
        1% and 64 KiB when the size is known, else :attr:`stored_limit`."""
        if self.size is not None:
            return self.size + self.size // 100 + (1 << 16)
        return self.stored_limit


@dataclass(frozen=True)
class DatasetSource:
    """Where a downloadable dataset comes from.

    Attributes:
        mirrors: base URLs tried in order; a file's URL is ``mirror + filename``.
        files: the files of the dataset by role (``"train_images"``, ``"archive"``, ...).
        system_dirs: read-only folders searched after the cache (never written to).
    """

    mirrors: tuple[str, ...]
    files: Mapping[str, FileSpec]
    system_dirs: tuple[str, ...] = field(default=())


_MNIST_COUNTS = {"train": 60000, "test": 10000}
IDX_ROLES: tuple[str, ...] = ("train_images", "train_labels", "test_images", "test_labels")


def _idx_specs(
    md5s: Mapping[str, str],
    sizes: Mapping[str, int],
    sha256s: Mapping[str, str] | None = None,
) -> dict[str, FileSpec]:
    specs: dict[str, FileSpec] = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        n = _MNIST_COUNTS[split]
        for kind, fname, shape, max_label in (
            ("images", f"{prefix}-images-idx3-ubyte.gz", (n, 28, 28), None),
            ("labels", f"{prefix}-labels-idx1-ubyte.gz", (n,), 9),
        ):
            sha = (sha256s or {}).get(fname)
            specs[f"{split}_{kind}"] = FileSpec(
                filename=fname,
                md5=md5s[fname],
                content_sha256=(sha,) if sha else (),
                shape=shape,
                max_label=max_label,
                size=sizes[fname],
            )
    return specs


#: Mirrors and checksums of the downloadable datasets, by name. Tests (or users behind a proxy)
#: may replace an entry, e.g. ``monkeypatch.setitem(REGISTRY, "mnist", DatasetSource(...))``.
#: The sizes are those of the upstream files (as served by the first mirror).
REGISTRY: dict[str, DatasetSource] = {
    "mnist": DatasetSource(
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://yann.lecun.com/exdb/mnist/",
        ),
        # The upstream MD5s of the compressed files. No digest of the decompressed content is
        # recorded for MNIST; the structural IDX check stands in for it.
        files=_idx_specs(
            {
                "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
                "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
                "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
            },
            {
                "train-images-idx3-ubyte.gz": 9912422,
                "train-labels-idx1-ubyte.gz": 28881,
                "t10k-images-idx3-ubyte.gz": 1648877,
                "t10k-labels-idx1-ubyte.gz": 4542,
            },
        ),
    ),
    "fashion-mnist": DatasetSource(
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        files=_idx_specs(
            # Upstream MD5s of the compressed files.
            {
                "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
                "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
                "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12e480ee83cd310",
            },
            {
                "train-images-idx3-ubyte.gz": 26421880,
                "train-labels-idx1-ubyte.gz": 29515,
                "t10k-images-idx3-ubyte.gz": 4422102,
                "t10k-labels-idx1-ubyte.gz": 5148,
            },
            # SHA-256 of the decompressed IDX content, computed with `zcat FILE | sha256sum` from
            # /usr/share/datasets/fashion-mnist/*.gz of the Debian package dataset-fashion-mnist
            # 0.0~git20200523.55506a9-1 (whose gzip bytes differ from upstream, so their MD5 cannot
            # match). Decompressed sizes: 47040016, 60008, 7840016 and 10008 bytes.
            {
                "train-images-idx3-ubyte.gz": (
                    "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"
                ),
                "train-labels-idx1-ubyte.gz": (
                    "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"
                ),
                "t10k-images-idx3-ubyte.gz": (
                    "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"
                ),
                "t10k-labels-idx1-ubyte.gz": (
                    "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"
                ),
            },
        ),
        system_dirs=(DEBIAN_FASHION_DIR,),
    ),
    # The *binary* release of CIFAR-10 is used rather than the Python one: its records are plain
    # bytes (1 label byte + 3072 pixel bytes in CHW order), so reading it needs no pickle and
    # loading a tampered file can never execute code.
    "cifar10": DatasetSource(
        mirrors=("https://www.cs.toronto.edu/~kriz/",),
        files={
            "archive": FileSpec(
                filename="cifar-10-binary.tar.gz",
                md5="c32a1d4ab5d03f1284b67883e8d87530",
                shape=(10000, 3, 32, 32),
                max_label=9,
                size=170052171,
            )
        },
    ),
}


def available_datasets() -> list[str]:
    """Names accepted by :func:`~infoplane.experiments.data.load_dataset`, sorted."""
    return list(DATASET_NAMES)


def default_data_dir(name: str) -> Path:
    """Cache folder of dataset ``name``: ``$INFOPLANE_DATA/<name>`` when the variable is set and
    not empty, else ``~/.cache/infoplane/datasets/<name>``. The folder is not created."""
    root = os.environ.get("INFOPLANE_DATA", "")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "infoplane" / "datasets"
    return base / name


__all__ = [
    "REGISTRY",
    "DatasetSource",
    "FileSpec",
    "available_datasets",
    "default_data_dir",
    "gzip_bound",
]
