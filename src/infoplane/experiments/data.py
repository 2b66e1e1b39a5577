"""Datasets of the information-plane experiments, loaded without torchvision.

:func:`load_dataset` returns a :class:`DatasetSplits` whose images are ``float32`` tensors
``[N, C, H, W]`` and whose labels are ``int64`` tensors ``[N]``:

============== ========================= ====================================================
name           shape ``[C, H, W]``        source
============== ========================= ====================================================
digits         ``[1, 8, 8]``             scikit-learn's ``load_digits`` (bundled, offline)
mnist          ``[1, 28, 28]``           the four IDX ``.gz`` files of MNIST (downloaded)
fashion-mnist  ``[1, 28, 28]``           the four IDX ``.gz`` files of Fashion-MNIST
cifar10        ``[3, 32, 32]``           ``cifar-10-binary.tar.gz`` (downloaded)
synthetic      configurable              seeded Gaussian class prototypes plus noise (offline)
============== ========================= ====================================================

Files are looked for, in order, in ``data_dir`` when it is given (the folder that holds the files
of that one dataset), otherwise in the cache folder :func:`default_data_dir` (``$INFOPLANE_DATA/
<name>`` or ``~/.cache/infoplane/datasets/<name>``) and, for ``fashion-mnist`` only, in
``/usr/share/datasets/fashion-mnist/`` (Debian's ``dataset-fashion-mnist`` package). A file that is
missing or fails verification is downloaded (when ``download=True``) from the mirrors of
:data:`REGISTRY`, in order, into ``data_dir`` or the cache folder; the download is streamed into a
temporary file beside the destination, verified, then renamed onto the final name, so a partial or
corrupted file never appears under that name.

Verification: every file is checked before use. A ``.gz`` file is accepted when the MD5 of its
bytes is the upstream one *or* the SHA-256 of its decompressed content is a known one (Debian
recompresses Fashion-MNIST, so its ``.gz`` bytes differ from upstream while the content is the
same); an already decompressed IDX file is accepted on the SHA-256 of its content where one is
known. On top of that every IDX file must pass a structural check: magic number, element type,
dimensions, exact byte length and label range. For MNIST no decompressed digest is recorded, so an
uncompressed MNIST file in ``data_dir`` is accepted on the structural check alone.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import logging
import math
import numbers
import os
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import torch

from infoplane.errors import DataError, InvalidParameterError, InvalidTypeError
from infoplane.io import atomic_open

__all__ = [
    "REGISTRY",
    "DatasetSource",
    "DatasetSplits",
    "FileSpec",
    "available_datasets",
    "default_data_dir",
    "download_file",
    "load_dataset",
    "parse_idx",
    "verify_file",
]

logger = logging.getLogger(__name__)

_DATASET_NAMES: tuple[str, ...] = ("cifar10", "digits", "fashion-mnist", "mnist", "synthetic")
_ALIASES: dict[str, str] = {
    "fashion_mnist": "fashion-mnist",
    "fashionmnist": "fashion-mnist",
    "cifar-10": "cifar10",
    "cifar_10": "cifar10",
}
_DIGIT_CLASSES: tuple[str, ...] = tuple(str(i) for i in range(10))
_FASHION_CLASSES: tuple[str, ...] = (
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
_CIFAR10_CLASSES: tuple[str, ...] = (
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
_SCALES: tuple[str, ...] = ("unit", "raw")
_DEFAULT_TIMEOUT = 30.0
_CHUNK = 1 << 20
_USER_AGENT = "infoplane-data/0.1 (python urllib)"
_DEBIAN_FASHION_DIR = "/usr/share/datasets/fashion-mnist"


# --------------------------------------------------------------------------------------------------
# Registry of remote files
# --------------------------------------------------------------------------------------------------


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
    """

    filename: str
    md5: str | None = None
    content_sha256: tuple[str, ...] = ()
    shape: tuple[int, ...] | None = None
    max_label: int | None = None

    @property
    def local_names(self) -> tuple[str, ...]:
        """Names accepted on disk: the hosted name, then the decompressed name for a ``.gz``."""
        if self.filename.endswith(".gz") and not self.filename.endswith(".tar.gz"):
            return (self.filename, self.filename[: -len(".gz")])
        return (self.filename,)


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


def _idx_specs(
    md5s: Mapping[str, str], sha256s: Mapping[str, str] | None = None
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
            )
    return specs


#: Mirrors and checksums of the downloadable datasets, by name. Tests (or users behind a proxy)
#: may replace an entry, e.g. ``monkeypatch.setitem(REGISTRY, "mnist", DatasetSource(...))``.
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
            }
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
        system_dirs=(_DEBIAN_FASHION_DIR,),
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
            )
        },
    ),
}

_CIFAR_DIR = "cifar-10-batches-bin"
_CIFAR_TRAIN = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
_CIFAR_TEST = "test_batch.bin"


# --------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetSplits:
    """A train/test split of an image classification dataset.

    Attributes:
        x_train: ``float32`` images ``[N_train, C, H, W]``.
        y_train: ``int64`` labels ``[N_train]`` in ``[0, num_classes)``.
        x_test: ``float32`` images ``[N_test, C, H, W]``.
        y_test: ``int64`` labels ``[N_test]``.
        num_classes: the number of classes.
        name: the canonical dataset name (``"mnist"``, ...).
        input_shape: ``(C, H, W)`` of one image.
        classes: the class names, index ``k`` naming label ``k``, or ``None``.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    name: str
    input_shape: tuple[int, int, int]
    classes: tuple[str, ...] | None = None

    @property
    def n_train(self) -> int:
        """Number of training samples."""
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        """Number of test samples."""
        return int(self.x_test.shape[0])


# --------------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------------


def available_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`, sorted."""
    return list(_DATASET_NAMES)


def default_data_dir(name: str) -> Path:
    """Cache folder of dataset ``name``: ``$INFOPLANE_DATA/<name>`` when the variable is set and
    not empty, else ``~/.cache/infoplane/datasets/<name>``. The folder is not created."""
    root = os.environ.get("INFOPLANE_DATA", "")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "infoplane" / "datasets"
    return base / name


def _file_digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _verified_content(path: Path, spec: FileSpec) -> tuple[bytes, str]:
    """Read ``path`` (gzip or plain), check it against ``spec``'s digests and return the
    decompressed bytes and the name of the check that passed. Raises :class:`DataError`."""
    fix = f"Delete the corrupted file and download {spec.filename} again."
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(
            f"load_dataset: expected a readable file at {path}, got {exc.strerror or exc}. "
            "Check the permissions of the file or pass another data_dir."
        ) from exc
    compressed = raw[:2] == b"\x1f\x8b"
    # The MD5 is of the hosted bytes: it applies to a gzip copy of a hosted .gz, or to a file
    # hosted uncompressed. A decompressed copy of a hosted .gz can only match a content digest.
    md5_applies = spec.md5 is not None and (compressed or not spec.filename.endswith(".gz"))
    raw_md5 = hashlib.md5(raw).hexdigest() if md5_applies else ""
    md5_ok = md5_applies and raw_md5 == str(spec.md5).lower()
    if md5_applies and not md5_ok and not spec.content_sha256:
        raise DataError(
            f"load_dataset: expected {path} to have MD5 {spec.md5}, got {raw_md5}. {fix}"
        )
    if compressed:
        try:
            content = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(
                f"load_dataset: expected {path} to be a complete gzip file, got a corrupted one "
                f"({exc}). {fix}"
            ) from exc
    else:
        content = raw
    if md5_ok:
        return content, "md5"
    if spec.content_sha256:
        digest = hashlib.sha256(content).hexdigest()
        if digest in {d.lower() for d in spec.content_sha256}:
            return content, "content-sha256"
        expected = f"content SHA-256 {' or '.join(spec.content_sha256)}"
        if md5_applies:
            expected = f"MD5 {spec.md5} or {expected}"
        raise DataError(
            f"load_dataset: expected {path} to have {expected}, got content SHA-256 {digest}. {fix}"
        )
    return content, "structure"


# --------------------------------------------------------------------------------------------------
# IDX
# --------------------------------------------------------------------------------------------------

_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def parse_idx(
    data: bytes, *, expected_shape: tuple[int, ...] | None = None, what: str = "IDX data"
) -> np.ndarray:
    """Parse the bytes of an (uncompressed) IDX file into a native-endian numpy array.

    The header is big-endian: two zero bytes, a type code (``0x08`` unsigned byte, ``0x09``
    signed byte, ``0x0B`` int16, ``0x0C`` int32, ``0x0D`` float32, ``0x0E`` float64), the number
    of dimensions ``d``, then ``d`` uint32 sizes; the data follow, big-endian, C order.

    Args:
        data: the whole file content.
        expected_shape: if given, the exact shape the array must have.
        what: how to name the data in error messages (e.g. the file path).

    Returns:
        An array of shape ``dims`` (``[N, 28, 28]`` for MNIST images, ``[N]`` for labels).

    Raises:
        DataError: on a bad magic number, an unknown type, a truncated file or trailing bytes, or
            a shape other than ``expected_shape``.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidTypeError(
            f"parse_idx: expected data as bytes, got {type(data).__name__}. "
            "Pass the file content, e.g. Path(...).read_bytes()."
        )
    data = bytes(data)
    fix = "The file is corrupted or not an IDX file; delete it and download it again."
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(
            f"parse_idx: expected {what} to start with the IDX magic 00 00 <type> <ndim>, got "
            f"{data[:4].hex(' ') or 'an empty file'}. {fix}"
        )
    code, ndim = data[2], data[3]
    if code not in _IDX_DTYPES:
        raise DataError(
            f"parse_idx: expected {what} to have an IDX type code in "
            f"{{0x08, 0x09, 0x0b, 0x0c, 0x0d, 0x0e}}, got 0x{code:02x}. {fix}"
        )
    if ndim == 0:
        raise DataError(f"parse_idx: expected {what} to have at least 1 dimension, got 0. {fix}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(
            f"parse_idx: expected {what} to hold a {header}-byte header, got {len(data)} bytes "
            f"(truncated). {fix}"
        )
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[code]
    expected_len = header + math.prod(dims) * dtype.itemsize
    if len(data) != expected_len:
        state = "truncated" if len(data) < expected_len else "trailing bytes"
        raise DataError(
            f"parse_idx: expected {what} with dims {dims} to be exactly {expected_len} bytes, "
            f"got {len(data)} ({state}). {fix}"
        )
    if expected_shape is not None and dims != tuple(expected_shape):
        raise DataError(
            f"parse_idx: expected {what} to have shape {tuple(expected_shape)}, got {dims}. {fix}"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return array.astype(dtype.newbyteorder("="))


def _read_idx_file(path: Path, spec: FileSpec) -> tuple[np.ndarray, str]:
    content, check = _verified_content(path, spec)
    array = parse_idx(content, expected_shape=spec.shape, what=str(path))
    if spec.max_label is not None:
        if array.ndim != 1 or array.dtype != np.uint8:
            raise DataError(
                f"load_dataset: expected {path} to be a 1-d unsigned-byte label file, got "
                f"{array.ndim}-d {array.dtype}. Delete it and download {spec.filename} again."
            )
        if array.size and int(array.max()) > spec.max_label:
            raise DataError(
                f"load_dataset: expected labels in [0, {spec.max_label}] in {path}, got "
                f"{int(array.max())}. Delete it and download {spec.filename} again."
            )
    elif array.dtype != np.uint8:
        raise DataError(
            f"load_dataset: expected {path} to hold unsigned-byte images, got {array.dtype}. "
            f"Delete it and download {spec.filename} again."
        )
    return array, check


def verify_file(path: str | os.PathLike[str], spec: FileSpec) -> str:
    """Check a file on disk against ``spec`` and return which check accepted it.

    Args:
        path: a ``.gz`` or uncompressed IDX file, or the CIFAR-10 binary archive.
        spec: the expected digests and structure (an entry of :data:`REGISTRY`).

    Returns:
        ``"md5"`` (the hosted bytes match), ``"content-sha256"`` (the decompressed content
        matches) or ``"structure"`` (no digest known for this form; the structural check passed).

    Raises:
        DataError: if the file is missing, corrupted, truncated or malformed.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(
            f"verify_file: expected a file at {p}, got nothing. Download {spec.filename} first."
        )
    if spec.filename.endswith(".tar.gz"):
        _read_cifar_archive(p, spec)
        return "md5" if spec.md5 is not None else "structure"
    return _read_idx_file(p, spec)[1]


# --------------------------------------------------------------------------------------------------
# Download
# --------------------------------------------------------------------------------------------------

_URL_SCHEMES = ("http", "https", "file")


def _check_urls(urls: str | Sequence[str], *, who: str = "download_file") -> list[str]:
    if isinstance(urls, str):
        urls = [urls]
    if not isinstance(urls, Sequence) or not urls:
        raise InvalidParameterError(
            f"{who}: expected urls as a non-empty list of URLs, got {urls!r}. "
            "Pass at least one http(s):// or file:// URL."
        )
    out = []
    for url in urls:
        if not isinstance(url, str) or urllib.parse.urlsplit(url).scheme not in _URL_SCHEMES:
            raise InvalidParameterError(
                f"{who}: expected http://, https:// or file:// URLs, got {url!r}. "
                "Fix the mirror list."
            )
        out.append(url)
    return out


def _checksum_verifier(checksum: str) -> Callable[[Path], None]:
    algo, sep, digest = checksum.partition(":")
    if not sep:
        algo, digest = {32: "md5", 64: "sha256"}.get(len(checksum), ""), checksum
    digest = digest.strip().lower()
    if algo not in ("md5", "sha1", "sha256", "sha512") or not digest:
        raise InvalidParameterError(
            f"download_file: expected checksum as 'md5:<hex>', 'sha256:<hex>' or a bare 32/64-"
            f"digit hex digest, got {checksum!r}. Pass a valid digest."
        )

    def verify(path: Path) -> None:
        got = _file_digest(path, algo)
        if got != digest:
            raise DataError(f"expected {algo} {digest}, got {got}")

    return verify


def download_file(
    urls: str | Sequence[str],
    dest: str | os.PathLike[str],
    *,
    checksum: str | Callable[[Path], Any],
    timeout: float = _DEFAULT_TIMEOUT,
) -> Path:
    """Download one file from the first mirror that serves a valid copy.

    Each URL is tried in order. The body is streamed into a temporary file in ``dest``'s folder,
    verified, then atomically renamed onto ``dest`` with :func:`os.replace`; a failed or corrupted
    download is deleted, so nothing partial ever appears under ``dest``.

    Args:
        urls: the full URLs of the file (``http://``, ``https://`` or ``file://``), best first.
        dest: the final path; its folder is created if needed.
        checksum: ``"md5:<hex>"``, ``"sha256:<hex>"`` (a bare 32- or 64-digit hex digest means MD5
            or SHA-256), or a callable that receives the path of the downloaded temporary file
            and raises :class:`DataError` when it is not valid.
        timeout: seconds to wait on a connection or read before giving up on a mirror.

    Returns:
        ``Path(dest)``.

    Raises:
        InvalidParameterError: on a bad URL, checksum or timeout.
        DataError: when no mirror served a valid copy (the message says what to do).
    """
    url_list = _check_urls(urls)
    if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real) or not timeout > 0:
        raise InvalidParameterError(
            f"download_file: expected timeout > 0 seconds, got {timeout!r}. Pass e.g. timeout=30."
        )
    if isinstance(checksum, str):
        verify = _checksum_verifier(checksum)
    elif callable(checksum):
        verify = checksum
    else:
        raise InvalidParameterError(
            f"download_file: expected checksum as a digest string or a callable, got "
            f"{type(checksum).__name__}. Pass e.g. checksum='md5:<hex>'."
        )
    dest_path = Path(dest)
    folder = dest_path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(
            f"download_file: expected a writable folder {folder}, got {exc.strerror or exc}. "
            "Pass a data_dir you can write to."
        ) from exc

    failures: list[str] = []
    for url in url_list:
        try:
            logger.info("downloading %s to %s", url, dest_path)
            with atomic_open(dest_path, "wb", verify=verify) as out:
                _stream(url, out, timeout=float(timeout))
            return dest_path
        except (
            urllib.error.URLError,
            http.client.HTTPException,
            OSError,
            ValueError,
            DataError,
        ) as exc:
            failures.append(f"{url}: {_describe(exc)}")
            logger.warning("download of %s failed: %s", url, _describe(exc))
    raise DataError(
        f"download_file: expected a valid {dest_path.name} from one of {len(url_list)} mirror(s), "
        f"got failures ({'; '.join(failures)}). Download {dest_path.name} manually into "
        f"{folder}, or pass data_dir= (--data-dir) pointing at a folder that holds it."
    )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"unreachable ({exc.reason})"
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc)
    if isinstance(exc, DataError):
        text = text.removeprefix("load_dataset: ")
    return text or type(exc).__name__


def _stream(url: str, out: Any, *, timeout: float) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    with urllib.request.urlopen(
        request, timeout=timeout
    ) as response:  # schemes checked by _check_urls
        length = response.headers.get("Content-Length")
        received = 0
        while chunk := response.read(_CHUNK):
            out.write(chunk)
            received += len(chunk)
    if length is not None and length.isdigit() and int(length) != received:
        raise DataError(f"expected {length} bytes, got {received} (connection cut)")


# --------------------------------------------------------------------------------------------------
# Resolution of files: search on disk, then download
# --------------------------------------------------------------------------------------------------


def _mirror_urls(mirrors: Sequence[str], filename: str) -> list[str]:
    return [m.rstrip("/") + "/" + filename for m in mirrors]


def _obtain(
    name: str,
    spec: FileSpec,
    reader: Callable[[Path, FileSpec], Any],
    *,
    search_dirs: Sequence[Path],
    target_dir: Path,
    download: bool,
    mirrors: Sequence[str],
    timeout: float,
) -> Any:
    """Return ``reader(path, spec)`` for the first valid copy of ``spec`` on disk, else download
    it into ``target_dir`` (when allowed) and return the reader's result for the download."""
    problems: list[str] = []
    for folder in search_dirs:
        for local in spec.local_names:
            path = folder / local
            if not path.is_file():
                continue
            try:
                return reader(path, spec)
            except DataError as exc:
                problems.append(str(exc))
                logger.warning("%s", exc)
    where = ", ".join(str(d) for d in search_dirs)
    if not download:
        if problems:
            raise DataError(
                f"{problems[0].rstrip('.')}, or allow download (download=False was given)."
            )
        names = " or ".join(spec.local_names)
        urls = _mirror_urls(mirrors, spec.filename)
        hint = f" from {urls[0]}" if urls else ""
        raise DataError(
            f"load_dataset: expected the {name} file {names} in {where}, got no such file "
            f"(download=False). Download it{hint} into {target_dir}, or pass data_dir= "
            "(--data-dir) pointing at a folder that holds it, or allow download."
        )
    if not mirrors:
        raise DataError(
            f"load_dataset: expected a valid {spec.filename} for {name} in {where} or a mirror to "
            f"download it from, got neither. Put the file into {target_dir} or pass mirrors=."
        )
    result: dict[str, Any] = {}

    def verify(tmp: Path) -> None:
        result["value"] = reader(tmp, spec)

    download_file(
        _mirror_urls(mirrors, spec.filename),
        target_dir / spec.filename,
        checksum=verify,
        timeout=timeout,
    )
    return result["value"]


def _to_images(array: np.ndarray, scale: str) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(array)).to(torch.float32)
    if scale == "unit":
        x.div_(255.0)
    return x


# --------------------------------------------------------------------------------------------------
# Loaders
# --------------------------------------------------------------------------------------------------


def _load_digits(*, seed: int, test_size: float = 0.25) -> DatasetSplits:
    if (
        isinstance(test_size, bool)
        or not isinstance(test_size, numbers.Real)
        or not 0.0 < float(test_size) < 1.0
    ):
        raise InvalidParameterError(
            f"load_dataset: expected test_size in (0, 1) for 'digits', got {test_size!r}. "
            "Pass e.g. test_size=0.25."
        )
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as exc:
        raise DataError(
            "load_dataset: expected scikit-learn for the 'digits' dataset, got ImportError. "
            "Install it with pip install 'infoplane[experiments]'."
        ) from exc
    bunch = load_digits()
    images = np.asarray(bunch.images, dtype=np.float32) / 16.0
    labels = np.asarray(bunch.target, dtype=np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        images, labels, test_size=float(test_size), stratify=labels, random_state=seed
    )
    return DatasetSplits(
        x_train=torch.from_numpy(np.ascontiguousarray(x_tr)).unsqueeze(1),
        y_train=torch.from_numpy(np.ascontiguousarray(y_tr)),
        x_test=torch.from_numpy(np.ascontiguousarray(x_te)).unsqueeze(1),
        y_test=torch.from_numpy(np.ascontiguousarray(y_te)),
        num_classes=10,
        name="digits",
        input_shape=(1, 8, 8),
        classes=_DIGIT_CLASSES,
    )


def _positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise InvalidParameterError(
            f"load_dataset: expected {what} as an integer >= 1 for 'synthetic', got {value!r}. "
            "Pass a positive integer."
        )
    return int(value)


def _load_synthetic(
    *,
    seed: int,
    n_train: int = 1000,
    n_test: int = 250,
    num_classes: int = 10,
    input_shape: Sequence[int] = (1, 8, 8),
    noise: float = 0.3,
) -> DatasetSplits:
    k = _positive_int(num_classes, "num_classes")
    if k < 2:
        raise InvalidParameterError(
            f"load_dataset: expected num_classes >= 2 for 'synthetic', got {k}. "
            "Pass num_classes=2 or more."
        )
    n_tr = _positive_int(n_train, "n_train")
    n_te = _positive_int(n_test, "n_test")
    if n_tr < k or n_te < k:
        raise InvalidParameterError(
            f"load_dataset: expected n_train and n_test >= num_classes ({k}) for 'synthetic', got "
            f"{n_tr} and {n_te}. Ask for at least one sample per class."
        )
    if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, Sequence):
        input_shape = (input_shape,)  # type: ignore[assignment]
    if len(input_shape) != 3:
        raise InvalidParameterError(
            f"load_dataset: expected input_shape as (C, H, W) for 'synthetic', got "
            f"{tuple(input_shape)!r}. Pass e.g. input_shape=(1, 8, 8)."
        )
    shape = tuple(_positive_int(s, "input_shape entries") for s in input_shape)
    if isinstance(noise, bool) or not isinstance(noise, numbers.Real) or not noise >= 0:
        raise InvalidParameterError(
            f"load_dataset: expected noise >= 0 for 'synthetic', got {noise!r}. "
            "Pass e.g. noise=0.3."
        )
    gen = torch.Generator().manual_seed(seed)
    # Smooth random prototypes in [0, 1], one per class: spatially correlated like images.
    protos = torch.rand((k, *shape), generator=gen)
    protos = torch.nn.functional.avg_pool2d(
        protos, kernel_size=3, stride=1, padding=1, count_include_pad=False
    )
    flat = protos.reshape(k, -1)
    lo, hi = flat.min(dim=1, keepdim=True).values, flat.max(dim=1, keepdim=True).values
    protos = ((flat - lo) / (hi - lo).clamp_min(1e-6)).reshape(k, *shape)

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.arange(n, dtype=torch.int64) % k
        y = y[torch.randperm(n, generator=gen)]
        x = protos[y] + float(noise) * torch.randn((n, *shape), generator=gen)
        return x.clamp_(0.0, 1.0).contiguous(), y

    x_tr, y_tr = draw(n_tr)
    x_te, y_te = draw(n_te)
    return DatasetSplits(
        x_train=x_tr,
        y_train=y_tr,
        x_test=x_te,
        y_test=y_te,
        num_classes=k,
        name="synthetic",
        input_shape=shape,  # type: ignore[arg-type]
        classes=tuple(str(i) for i in range(k)),
    )


def _download_options(
    name: str, mirrors: Sequence[str] | None, timeout: float, scale: str
) -> tuple[tuple[str, ...], float, str]:
    if mirrors is None:
        mirror_list = tuple(REGISTRY[name].mirrors)
    else:
        if isinstance(mirrors, str):
            mirrors = (mirrors,)
        mirror_list = tuple(mirrors)
        if mirror_list:
            _check_urls(mirror_list, who="load_dataset")
    if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real) or not timeout > 0:
        raise InvalidParameterError(
            f"load_dataset: expected timeout > 0 seconds, got {timeout!r}. Pass e.g. timeout=30."
        )
    if scale not in _SCALES:
        raise InvalidParameterError(
            f"load_dataset: expected scale in {list(_SCALES)}, got {scale!r}. "
            "Use 'unit' for [0, 1] or 'raw' for 0-255."
        )
    return mirror_list, float(timeout), scale


def _dirs(name: str, data_dir: str | os.PathLike[str] | None) -> tuple[list[Path], Path]:
    if data_dir is not None:
        folder = Path(data_dir).expanduser()
        return [folder], folder
    cache = default_data_dir(name)
    return [cache, *(Path(d) for d in REGISTRY[name].system_dirs)], cache


def _load_idx_dataset(
    name: str,
    *,
    data_dir: str | os.PathLike[str] | None,
    download: bool,
    mirrors: Sequence[str] | None = None,
    timeout: float = _DEFAULT_TIMEOUT,
    scale: str = "unit",
) -> DatasetSplits:
    mirror_list, timeout, scale = _download_options(name, mirrors, timeout, scale)
    source = REGISTRY[name]
    search_dirs, target = _dirs(name, data_dir)
    arrays: dict[str, np.ndarray] = {}
    for role in ("train_images", "train_labels", "test_images", "test_labels"):
        arrays[role] = _obtain(
            name,
            source.files[role],
            lambda p, s: _read_idx_file(p, s)[0],
            search_dirs=search_dirs,
            target_dir=target,
            download=download,
            mirrors=mirror_list,
            timeout=timeout,
        )
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or images.shape[0] != labels.shape[0]:
            raise DataError(
                f"load_dataset: expected {name} {split} images [N, H, W] and labels [N] of one N, "
                f"got {images.shape} and {labels.shape}. Delete the files and download them again."
            )
    x_train = _to_images(arrays["train_images"][:, None], scale)
    h, w = x_train.shape[2], x_train.shape[3]
    return DatasetSplits(
        x_train=x_train,
        y_train=torch.from_numpy(arrays["train_labels"].astype(np.int64)),
        x_test=_to_images(arrays["test_images"][:, None], scale),
        y_test=torch.from_numpy(arrays["test_labels"].astype(np.int64)),
        num_classes=10,
        name=name,
        input_shape=(1, int(h), int(w)),
        classes=_FASHION_CLASSES if name == "fashion-mnist" else _DIGIT_CLASSES,
    )


def _parse_cifar_batch(data: bytes, spec: FileSpec, what: str) -> tuple[np.ndarray, np.ndarray]:
    record = 1 + 3 * 32 * 32
    fix = "Delete it and download cifar-10-binary.tar.gz again."
    n = spec.shape[0] if spec.shape else len(data) // record
    if len(data) != n * record or n == 0:
        raise DataError(
            f"load_dataset: expected {what} to be {n} records of {record} bytes "
            f"({n * record} bytes), got {len(data)} bytes. {fix}"
        )
    rows = np.frombuffer(data, dtype=np.uint8).reshape(n, record)
    labels = rows[:, 0].astype(np.int64)
    max_label = 9 if spec.max_label is None else spec.max_label
    if int(labels.max()) > max_label:
        raise DataError(
            f"load_dataset: expected labels in [0, {max_label}] in {what}, got "
            f"{int(labels.max())}. {fix}"
        )
    return rows[:, 1:].reshape(n, 3, 32, 32), labels


def _cifar_member_ok(member: tarfile.TarInfo) -> bool:
    parts = PurePosixPath(member.name).parts
    return (
        not member.name.startswith(("/", "\\"))
        and ".." not in parts
        and not any(":" in p or "\\" in p for p in parts)
        and (member.isfile() or member.isdir())
    )


def _read_cifar_archive(path: Path, spec: FileSpec) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Verify the CIFAR-10 binary archive and read its six batches in memory (nothing is
    extracted to disk; only the expected member names are read, and an archive with an unsafe
    member -- absolute path, ``..``, link or device -- is rejected whole)."""
    fix = f"Delete it and download {spec.filename} again."
    if spec.md5 is not None:
        got = _file_digest(path, "md5")
        if got != spec.md5.lower():
            raise DataError(
                f"load_dataset: expected {path} to have MD5 {spec.md5}, got {got}. {fix}"
            )
    wanted = {f"{_CIFAR_DIR}/{b}" for b in (*_CIFAR_TRAIN, _CIFAR_TEST)}
    batches: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            members = tar.getmembers()
            for member in members:
                if not _cifar_member_ok(member):
                    raise DataError(
                        f"load_dataset: expected only plain files and folders with relative "
                        f"paths in {path}, got unsafe member {member.name!r}. {fix}"
                    )
            by_name = {PurePosixPath(m.name).as_posix(): m for m in members if m.isfile()}
            missing = sorted(w for w in wanted if w not in by_name)
            if missing:
                raise DataError(
                    f"load_dataset: expected members {', '.join(sorted(wanted))} in {path}, got "
                    f"none named {', '.join(missing)}. {fix}"
                )
            record = 1 + 3 * 32 * 32
            for key in sorted(wanted):
                member = by_name[key]
                if spec.shape is not None and member.size != spec.shape[0] * record:
                    raise DataError(
                        f"load_dataset: expected {key} in {path} to be "
                        f"{spec.shape[0] * record} bytes, got {member.size}. {fix}"
                    )
                handle = tar.extractfile(member)
                if handle is None:  # pragma: no cover - isfile() members always have data
                    raise DataError(f"load_dataset: expected data for {key}, got none. {fix}")
                batches[key.rsplit("/", 1)[1]] = _parse_cifar_batch(
                    handle.read(), spec, f"{key} in {path}"
                )
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise DataError(
            f"load_dataset: expected {path} to be a complete tar.gz archive, got a corrupted one "
            f"({exc}). {fix}"
        ) from exc
    return batches


def _read_cifar_folder(folder: Path, spec: FileSpec) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read already extracted batches (structural check only: no digest of them is known)."""
    batches = {}
    for b in (*_CIFAR_TRAIN, _CIFAR_TEST):
        path = folder / b
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise DataError(
                f"load_dataset: expected a readable {path}, got {exc.strerror or exc}. "
                "Extract cifar-10-binary.tar.gz again or delete the folder."
            ) from exc
        batches[b] = _parse_cifar_batch(data, spec, str(path))
    return batches


def _load_cifar10(
    *,
    data_dir: str | os.PathLike[str] | None,
    download: bool,
    mirrors: Sequence[str] | None = None,
    timeout: float = _DEFAULT_TIMEOUT,
    scale: str = "unit",
) -> DatasetSplits:
    mirror_list, timeout, scale = _download_options("cifar10", mirrors, timeout, scale)
    spec = REGISTRY["cifar10"].files["archive"]
    search_dirs, target = _dirs("cifar10", data_dir)
    batches = None
    archive_present = any((d / spec.filename).is_file() for d in search_dirs)
    if not archive_present:
        # Batches extracted by hand (cifar-10-batches-bin/ next to where the archive would be).
        for folder in search_dirs:
            extracted = folder / _CIFAR_DIR
            if all((extracted / b).is_file() for b in (*_CIFAR_TRAIN, _CIFAR_TEST)):
                batches = _read_cifar_folder(extracted, spec)
                break
    if batches is None:
        batches = _obtain(
            "cifar10",
            spec,
            _read_cifar_archive,
            search_dirs=search_dirs,
            target_dir=target,
            download=download,
            mirrors=mirror_list,
            timeout=timeout,
        )
    x_train = np.concatenate([batches[b][0] for b in _CIFAR_TRAIN])
    y_train = np.concatenate([batches[b][1] for b in _CIFAR_TRAIN])
    x_test, y_test = batches[_CIFAR_TEST]
    return DatasetSplits(
        x_train=_to_images(x_train, scale),
        y_train=torch.from_numpy(y_train),
        x_test=_to_images(x_test, scale),
        y_test=torch.from_numpy(np.ascontiguousarray(y_test)),
        num_classes=10,
        name="cifar10",
        input_shape=(3, 32, 32),
        classes=_CIFAR10_CLASSES,
    )


_OPTIONS: dict[str, tuple[str, ...]] = {
    "digits": ("test_size",),
    "synthetic": ("n_train", "n_test", "num_classes", "input_shape", "noise"),
    "mnist": ("mirrors", "timeout", "scale"),
    "fashion-mnist": ("mirrors", "timeout", "scale"),
    "cifar10": ("mirrors", "timeout", "scale"),
}


def load_dataset(
    name: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    seed: int = 0,
    **options: Any,
) -> DatasetSplits:
    """Load a dataset as float32 image tensors ``[N, C, H, W]`` and int64 labels ``[N]``.

    Args:
        name: one of :func:`available_datasets` (``"fashion_mnist"`` and ``"cifar-10"`` are
            accepted as spellings of ``"fashion-mnist"`` and ``"cifar10"``).
        data_dir: the folder that holds (or receives) this dataset's files; files already there
            and valid are used without any download. Default: :func:`default_data_dir` and, for
            ``fashion-mnist``, Debian's ``/usr/share/datasets/fashion-mnist/`` when the cache
            holds no valid copy (install it with ``apt-get install dataset-fashion-mnist``).
            Ignored by ``digits`` and ``synthetic``.
        download: fetch missing or corrupted files from the mirrors; with ``False`` a missing or
            corrupted file raises :class:`DataError`.
        seed: the seed of the ``digits`` split and of the ``synthetic`` data; the other datasets
            have a fixed official split and ignore it.
        **options: per dataset:

            * ``digits``: ``test_size=0.25``. The 1797 8×8 images are scaled to [0, 1] (divided
              by 16) and split by scikit-learn's ``train_test_split`` stratified on the label
              with ``random_state=seed``: 1347 train / 450 test, the same for the same seed.
            * ``mnist`` / ``fashion-mnist``: ``scale="unit"`` ([0, 1]) or ``"raw"`` (0-255
              floats), ``mirrors=`` (base URLs replacing :data:`REGISTRY`'s), ``timeout=30``.
              60000 train / 10000 test, ``[1, 28, 28]``.
            * ``cifar10``: the same options; 50000 train / 10000 test, ``[3, 32, 32]``. The paper
              fed raw 0-255 values to VGG-16: pass ``scale="raw"`` for that.
            * ``synthetic``: ``n_train=1000``, ``n_test=250``, ``num_classes=10``,
              ``input_shape=(1, 8, 8)``, ``noise=0.3``. Each class has a smooth random prototype
              image in [0, 1]; a sample is its prototype plus Gaussian noise of std ``noise``,
              clamped to [0, 1]. Classes are balanced (sizes differ by at most one).

    Returns:
        A :class:`DatasetSplits`.

    Raises:
        InvalidParameterError: unknown name or option, or an option of the wrong value.
        DataError: files missing (with ``download=False``), corrupted, or not downloadable.
    """
    if not isinstance(name, str):
        raise InvalidTypeError(
            f"load_dataset: expected name as a string, got {type(name).__name__}. "
            f"Pass one of {available_datasets()}."
        )
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in _DATASET_NAMES:
        raise InvalidParameterError(
            f"load_dataset: expected name in {available_datasets()}, got {name!r}. "
            "Pick one of those."
        )
    unknown = sorted(set(options) - set(_OPTIONS[key]))
    if unknown:
        raise InvalidParameterError(
            f"load_dataset: expected options of {key!r} among {list(_OPTIONS[key])}, got "
            f"{unknown}. Remove them."
        )
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise InvalidParameterError(
            f"load_dataset: expected seed as an integer >= 0, got {seed!r}. Pass e.g. seed=0."
        )
    if not isinstance(download, bool):
        raise InvalidParameterError(
            f"load_dataset: expected download as True or False, got {download!r}. Pass a bool."
        )
    if data_dir is not None and not isinstance(data_dir, (str, os.PathLike)):
        raise InvalidTypeError(
            f"load_dataset: expected data_dir as a path, got {type(data_dir).__name__}. "
            "Pass a folder path or None."
        )
    if key == "digits":
        return _load_digits(seed=int(seed), **options)
    if key == "synthetic":
        return _load_synthetic(seed=int(seed), **options)
    if key == "cifar10":
        return _load_cifar10(data_dir=data_dir, download=download, **options)
    return _load_idx_dataset(key, data_dir=data_dir, download=download, **options)
