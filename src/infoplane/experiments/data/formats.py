"""File formats: IDX (MNIST, Fashion-MNIST) and the CIFAR-10 binary batches and archive.

Every reader takes a binary stream, reads the header first, checks it against what is expected,
and then reads exactly the number of bytes the header (and, for a known dataset, the expected
shape) implies, and one more to prove the stream ends there. Nothing is read whole before its
size is known: a gzip bomb or a sparse multi-gigabyte file is refused after at most the expected
number of bytes.
"""

from __future__ import annotations

import io
import math
import tarfile
from pathlib import PurePosixPath
from typing import BinaryIO

import numpy as np

from infoplane.errors import DataError, InvalidTypeError
from infoplane.experiments.data.registry import (
    CIFAR_BATCHES,
    CIFAR_DIR,
    CIFAR_MAX_MEMBERS,
    CIFAR_RECORD,
    FileSpec,
)

IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
#: The most data bytes an IDX stream of unknown size and shape may declare (1 GiB).
MAX_IDX_BYTES = 1 << 30
_CHUNK = 1 << 20
_IDX_FIX = "The file is corrupted or not an IDX file; delete it and download it again."


def read_exact(stream: BinaryIO, n: int) -> tuple[np.ndarray, int]:
    """Read at most ``n`` bytes into a new ``uint8`` array, in chunks; return it with the count
    read (fewer than ``n`` when the stream ends first)."""
    buffer = np.empty(n, dtype=np.uint8)
    view = memoryview(buffer)
    got = 0
    while got < n:
        k = stream.readinto(view[got : min(n, got + _CHUNK)])
        if not k:
            break
        got += k
    return buffer, got


def _idx_header(
    stream: BinaryIO, expected_shape: tuple[int, ...] | None, what: str, who: str
) -> tuple[np.dtype, tuple[int, ...], int]:
    """Read and check an IDX header; return the element type, the dims and the header length."""
    head = stream.read(4)
    if len(head) < 4 or head[0] != 0 or head[1] != 0:
        raise DataError(
            f"{who}: expected {what} to start with the IDX magic 00 00 <type> <ndim>, got "
            f"{head[:4].hex(' ') or 'an empty file'}. {_IDX_FIX}"
        )
    code, ndim = head[2], head[3]
    if code not in IDX_DTYPES:
        raise DataError(
            f"{who}: expected {what} to have an IDX type code in "
            f"{{0x08, 0x09, 0x0b, 0x0c, 0x0d, 0x0e}}, got 0x{code:02x}. {_IDX_FIX}"
        )
    if ndim == 0:
        raise DataError(f"{who}: expected {what} to have at least 1 dimension, got 0. {_IDX_FIX}")
    header = 4 + 4 * ndim
    raw_dims = stream.read(4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise DataError(
            f"{who}: expected {what} to hold a {header}-byte header, got {4 + len(raw_dims)} "
            f"bytes (truncated). {_IDX_FIX}"
        )
    dims = tuple(int(d) for d in np.frombuffer(raw_dims, dtype=">u4"))
    if expected_shape is not None and dims != tuple(expected_shape):
        raise DataError(
            f"{who}: expected {what} to have shape {tuple(expected_shape)}, got {dims}. {_IDX_FIX}"
        )
    return IDX_DTYPES[code], dims, header


def _length_error(
    who: str, what: str, dims: tuple[int, ...], expected: int, got: int, *, more: bool = False
) -> DataError:
    state = "truncated" if got < expected else "trailing bytes"
    return DataError(
        f"{who}: expected {what} with dims {dims} to be exactly {expected} bytes, got "
        f"{'more' if more else got} ({state}). {_IDX_FIX}"
    )


def read_idx(
    stream: BinaryIO,
    *,
    expected_shape: tuple[int, ...] | None = None,
    max_bytes: int | None = None,
    available: int | None = None,
    what: str = "IDX data",
    who: str = "read_idx",
) -> np.ndarray:
    """Read one IDX array from a binary stream (a file, a ``gzip.GzipFile``, ``io.BytesIO``).

    The header is read and checked first; then exactly the data bytes it declares are read, and
    one more byte is asked for to prove that the stream ends there. At most
    ``header + data + 1`` bytes are ever taken from the stream.

    Args:
        stream: a binary stream positioned at the start of the IDX content.
        expected_shape: if given, the exact shape the array must have (checked on the header).
        max_bytes: the most data bytes the header may declare (default :data:`MAX_IDX_BYTES`);
            a header declaring more is refused before any data is read.
        available: the total size of the stream in bytes when known (a plain file, bytes in
            memory); a header that implies another size is refused before any data is read.
        what: how to name the data in error messages (e.g. the file path).
        who: the function named at the start of error messages.

    Returns:
        A native-endian array of shape ``dims``.

    Raises:
        DataError: bad magic or type, truncated header or data, trailing bytes, another shape,
            or more data declared than ``max_bytes``.
    """
    dtype, dims, header = _idx_header(stream, expected_shape, what, who)
    nbytes = math.prod(dims) * dtype.itemsize
    if available is not None and available != header + nbytes:
        raise _length_error(who, what, dims, header + nbytes, available)
    limit = MAX_IDX_BYTES if max_bytes is None else max_bytes
    if nbytes > limit:
        raise DataError(
            f"{who}: expected {what} to declare at most {limit} data bytes, got dims {dims} "
            f"({nbytes} bytes of {dtype.name}). {_IDX_FIX}"
        )
    buffer, got = read_exact(stream, nbytes)
    if got < nbytes:
        raise _length_error(who, what, dims, header + nbytes, header + got)
    if stream.read(1):  # one byte more than declared: the stream does not end here
        raise _length_error(who, what, dims, header + nbytes, header + nbytes + 1, more=True)
    array = buffer.view(dtype).reshape(dims)
    return array.astype(dtype.newbyteorder("="), copy=False)


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
    return read_idx(
        io.BytesIO(data),
        expected_shape=expected_shape,
        max_bytes=len(data),
        available=len(data),
        what=what,
        who="parse_idx",
    )


# --------------------------------------------------------------------------------------------------
# CIFAR-10 binary
# --------------------------------------------------------------------------------------------------


def _cifar_fix(spec: FileSpec) -> str:
    return f"Delete it and download {spec.filename} again."


def cifar_batch_records(size: int, spec: FileSpec, what: str) -> int:
    """The number of records in a batch of ``size`` bytes; raises unless ``size`` is exactly the
    expected batch size (``spec.shape[0]`` records, or any whole number when unknown)."""
    n = spec.shape[0] if spec.shape else size // CIFAR_RECORD
    if size != n * CIFAR_RECORD or n == 0:
        raise DataError(
            f"load_dataset: expected {what} to be {n} records of {CIFAR_RECORD} bytes "
            f"({n * CIFAR_RECORD} bytes), got {size} bytes. {_cifar_fix(spec)}"
        )
    return n


def read_cifar_batch(
    stream: BinaryIO, size: int, spec: FileSpec, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 batch of ``size`` bytes (checked first) as images ``[n, 3, 32, 32]``
    ``uint8`` and labels ``[n]`` ``int64``; exactly ``size`` bytes are read."""
    n = cifar_batch_records(size, spec, what)
    buffer, got = read_exact(stream, size)
    if got < size:
        raise DataError(
            f"load_dataset: expected {what} to hold {size} bytes, got {got} (truncated). "
            f"{_cifar_fix(spec)}"
        )
    rows = buffer.reshape(n, CIFAR_RECORD)
    labels = rows[:, 0].astype(np.int64)
    max_label = 9 if spec.max_label is None else spec.max_label
    if int(labels.max()) > max_label:
        raise DataError(
            f"load_dataset: expected labels in [0, {max_label}] in {what}, got "
            f"{int(labels.max())}. {_cifar_fix(spec)}"
        )
    return rows[:, 1:].reshape(n, 3, 32, 32), labels


def _member_is_safe(member: tarfile.TarInfo) -> bool:
    parts = PurePosixPath(member.name).parts
    return (
        not member.name.startswith(("/", "\\"))
        and ".." not in parts
        and not any(":" in p or "\\" in p for p in parts)
        and (member.isfile() or member.isdir())
    )


def _check_member(
    member: tarfile.TarInfo, count: int, total: int, spec: FileSpec, what: str
) -> None:
    """Refuse an unsafe member, too many members, or more content than a valid archive holds."""
    fix = _cifar_fix(spec)
    if not _member_is_safe(member):
        raise DataError(
            f"load_dataset: expected only plain files and folders with relative paths in "
            f"{what}, got unsafe member {member.name!r}. {fix}"
        )
    if count > CIFAR_MAX_MEMBERS:
        raise DataError(
            f"load_dataset: expected at most {CIFAR_MAX_MEMBERS} members in {what}, got more. {fix}"
        )
    limit = spec.content_bytes
    if limit is not None and total > limit:
        raise DataError(
            f"load_dataset: expected at most {limit} bytes of members in {what}, got "
            f"{total} by {member.name!r}. {fix}"
        )


def read_cifar_tar(tar: tarfile.TarFile, spec: FileSpec, what: str) -> dict[str, tuple]:
    """Read the six batches of an open CIFAR-10 binary archive, in memory.

    Members are visited once, in order; nothing is extracted to disk. An unsafe member (absolute
    path, ``..``, link or device), more than :data:`CIFAR_MAX_MEMBERS` members, members larger in
    total than a valid archive, or a batch of the wrong size rejects the archive whole; each batch
    is size-checked on its header before its bytes are read.
    """
    wanted = {f"{CIFAR_DIR}/{b}" for b in CIFAR_BATCHES}
    batches: dict[str, tuple] = {}
    total = 0
    for count, member in enumerate(tar, start=1):
        total += max(int(member.size), 0)
        _check_member(member, count, total, spec, what)
        key = PurePosixPath(member.name).as_posix()
        if not member.isfile() or key not in wanted:
            continue
        label = f"{key} in {what}"
        cifar_batch_records(int(member.size), spec, label)
        handle = tar.extractfile(member)
        if handle is None:  # pragma: no cover - isfile() members always have data
            raise DataError(
                f"load_dataset: expected data for {label}, got none. {_cifar_fix(spec)}"
            )
        batches[key.rsplit("/", 1)[1]] = read_cifar_batch(handle, int(member.size), spec, label)
    missing = sorted(w for w in wanted if w.rsplit("/", 1)[1] not in batches)
    if missing:
        raise DataError(
            f"load_dataset: expected members {', '.join(sorted(wanted))} in {what}, got none "
            f"named {', '.join(missing)}. {_cifar_fix(spec)}"
        )
    return batches


__all__ = ["IDX_DTYPES", "MAX_IDX_BYTES", "parse_idx", "read_cifar_batch", "read_idx"]
