"""Reading a dataset file from disk with every check: size, digests and structure.

Order of the checks, so that no bad file costs more than a valid one would:

1. the size on disk, against the largest valid copy (:attr:`FileSpec.stored_limit`);
2. the MD5 of the stored bytes, when it applies (a file in the form the mirrors host);
3. the content, streamed: the IDX header is checked against the dataset's known shape, exactly
   the declared bytes are decompressed and read (a gzip bomb stops there), and the SHA-256 of the
   content is computed on the way when it is the digest that decides.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import tarfile
import zlib
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from infoplane.errors import DataError
from infoplane.experiments.data.formats import read_cifar_batch, read_cifar_tar, read_idx
from infoplane.experiments.data.registry import CIFAR_BATCHES, FileSpec

_CHUNK = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"
_GZIP_ERRORS = (OSError, EOFError, zlib.error)


def _fix(spec: FileSpec) -> str:
    return f"Delete the corrupted file and download {spec.filename} again."


def _unreadable(path: Path, exc: OSError) -> DataError:
    return DataError(
        f"load_dataset: expected a readable file at {path}, got {exc.strerror or exc}. "
        "Check the permissions of the file or pass another data_dir."
    )


def stored_size(path: Path, spec: FileSpec) -> int:
    """The size of ``path`` in bytes, refused when no valid copy of ``spec`` is that large."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise _unreadable(path, exc) from exc
    limit = spec.stored_limit
    if limit is not None and size > limit:
        raise DataError(
            f"load_dataset: expected {path} to be at most {limit} bytes (the largest valid "
            f"{spec.filename}), got {size}. {_fix(spec)}"
        )
    return size


def file_digest(path: Path, algorithm: str, limit: int | None = None) -> str:
    """Hex digest of a file, read in chunks; at most ``limit`` bytes are read when given."""
    h = hashlib.new(algorithm)
    left = math.inf if limit is None else limit
    with open(path, "rb") as f:
        while left > 0 and (chunk := f.read(int(min(_CHUNK, left)))):
            h.update(chunk)
            left -= len(chunk)
    return h.hexdigest()


class _Hashing:
    """A read-only binary stream that hashes every byte read through it."""

    def __init__(self, stream: BinaryIO, algorithm: str) -> None:
        self.stream = stream
        self.hash = hashlib.new(algorithm)

    def read(self, n: int = -1) -> bytes:
        data = self.stream.read(n)
        self.hash.update(data)
        return data

    def readinto(self, buffer: Any) -> int:
        k = self.stream.readinto(buffer)
        self.hash.update(memoryview(buffer)[:k])
        return k


def _check_md5(path: Path, spec: FileSpec, size: int, compressed: bool) -> tuple[bool, bool]:
    """Return (applies, matches) for the MD5 of the stored bytes; raise when it decides alone.

    The MD5 is of the hosted bytes: it applies to a gzip copy of a hosted ``.gz``, or to a file
    hosted uncompressed. A decompressed copy of a hosted ``.gz`` can only match a content digest.
    """
    applies = spec.md5 is not None and (compressed or not spec.filename.endswith(".gz"))
    if not applies:
        return False, False
    got = file_digest(path, "md5", size)
    if got == str(spec.md5).lower():
        return True, True
    if not spec.content_sha256:
        raise DataError(
            f"load_dataset: expected {path} to have MD5 {spec.md5}, got {got}. {_fix(spec)}"
        )
    return True, False


def _read_content(path: Path, spec: FileSpec, size: int, compressed: bool, sha: bool):
    """Stream the IDX content of ``path`` (gzip or plain) with the shape checks of ``spec``;
    return the array and the SHA-256 of the content (``""`` unless ``sha``)."""
    max_bytes = math.prod(spec.shape) if spec.shape else None  # unsigned bytes
    with open(path, "rb") as raw:
        stream: Any = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
        reader = _Hashing(stream, "sha256") if sha else stream
        try:
            array = read_idx(
                reader,
                expected_shape=spec.shape,
                max_bytes=max_bytes,
                available=None if compressed else size,
                what=str(path),
                who="load_dataset",
            )
        except _GZIP_ERRORS as exc:
            raise DataError(
                f"load_dataset: expected {path} to be a complete gzip file, got a corrupted one "
                f"({exc}). {_fix(spec)}"
            ) from exc
    return array, reader.hash.hexdigest() if sha else ""


def _check_labels(array: np.ndarray, path: Path, spec: FileSpec) -> None:
    again = f"Delete it and download {spec.filename} again."
    if spec.max_label is None:
        if array.dtype != np.uint8:
            raise DataError(
                f"load_dataset: expected {path} to hold unsigned-byte images, got "
                f"{array.dtype}. {again}"
            )
        return
    if array.ndim != 1 or array.dtype != np.uint8:
        raise DataError(
            f"load_dataset: expected {path} to be a 1-d unsigned-byte label file, got "
            f"{array.ndim}-d {array.dtype}. {again}"
        )
    if array.size and int(array.max()) > spec.max_label:
        raise DataError(
            f"load_dataset: expected labels in [0, {spec.max_label}] in {path}, got "
            f"{int(array.max())}. {again}"
        )


def read_idx_file(path: Path, spec: FileSpec) -> tuple[np.ndarray, str]:
    """Read and verify an IDX file (``.gz`` or plain); return the array and the check that
    accepted it (``"md5"``, ``"content-sha256"`` or ``"structure"``)."""
    size = stored_size(path, spec)
    try:
        with open(path, "rb") as f:
            compressed = f.read(2) == _GZIP_MAGIC
    except OSError as exc:
        raise _unreadable(path, exc) from exc
    md5_applies, md5_ok = _check_md5(path, spec, size, compressed)
    use_sha = not md5_ok and bool(spec.content_sha256)
    array, digest = _read_content(path, spec, size, compressed, use_sha)
    if use_sha and digest not in {d.lower() for d in spec.content_sha256}:
        expected = f"content SHA-256 {' or '.join(spec.content_sha256)}"
        if md5_applies:
            expected = f"MD5 {spec.md5} or {expected}"
        raise DataError(
            f"load_dataset: expected {path} to have {expected}, got content SHA-256 {digest}. "
            f"{_fix(spec)}"
        )
    _check_labels(array, path, spec)
    return array, "md5" if md5_ok else "content-sha256" if use_sha else "structure"


def read_cifar_archive(path: Path, spec: FileSpec) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Verify the CIFAR-10 binary archive (size, MD5) and read its six batches in memory; nothing
    is extracted to disk (see :func:`~.formats.read_cifar_tar`)."""
    fix = f"Delete it and download {spec.filename} again."
    size = stored_size(path, spec)
    if spec.md5 is not None:
        got = file_digest(path, "md5", size)
        if got != spec.md5.lower():
            raise DataError(
                f"load_dataset: expected {path} to have MD5 {spec.md5}, got {got}. {fix}"
            )
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            return read_cifar_tar(tar, spec, str(path))
    except (tarfile.TarError, *_GZIP_ERRORS) as exc:
        raise DataError(
            f"load_dataset: expected {path} to be a complete tar.gz archive, got a corrupted one "
            f"({exc}). {fix}"
        ) from exc


def read_cifar_folder(folder: Path, spec: FileSpec) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read already extracted batches (structural check only: no digest of them is known); each
    file's size is checked before it is read."""
    batches = {}
    for name in CIFAR_BATCHES:
        path = folder / name
        try:
            size = path.stat().st_size
            with open(path, "rb") as f:
                batches[name] = read_cifar_batch(f, size, spec, str(path))
        except OSError as exc:
            raise DataError(
                f"load_dataset: expected a readable {path}, got {exc.strerror or exc}. "
                "Extract cifar-10-binary.tar.gz again or delete the folder."
            ) from exc
    return batches


def verify_file(path: str | os.PathLike[str], spec: FileSpec) -> str:
    """Check a file on disk against ``spec`` and return which check accepted it.

    Args:
        path: a ``.gz`` or uncompressed IDX file, or the CIFAR-10 binary archive.
        spec: the expected digests and structure (an entry of :data:`REGISTRY`).

    Returns:
        ``"md5"`` (the hosted bytes match), ``"content-sha256"`` (the decompressed content
        matches) or ``"structure"`` (no digest known for this form; the structural check passed).

    Raises:
        DataError: if the file is missing, too large, corrupted, truncated or malformed.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(
            f"verify_file: expected a file at {p}, got nothing. Download {spec.filename} first."
        )
    if spec.is_archive:
        read_cifar_archive(p, spec)
        return "md5" if spec.md5 is not None else "structure"
    return read_idx_file(p, spec)[1]


__all__ = ["read_cifar_archive", "read_cifar_folder", "read_idx_file", "verify_file"]
