"""Downloads: mirrors tried in order, a size cap, a progress bar, verification, atomic rename.

A download is streamed into a temporary file beside its destination, stopped as soon as it
passes the most bytes a valid copy can have (a mirror that serves a different or endless file,
such as ``file:///dev/zero``, is abandoned with a one-line reason), verified, and only then
renamed onto the final name with :func:`infoplane.io.atomic_open`.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import numbers
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from infoplane._validation import check_integer
from infoplane.errors import DataError, InvalidParameterError
from infoplane.experiments.data.registry import FileSpec
from infoplane.experiments.data.verify import file_digest
from infoplane.io import atomic_open
from infoplane.progress import progress_bar

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 30.0
_CHUNK = 1 << 20
_USER_AGENT = "infoplane-data/0.1 (python urllib)"
_URL_SCHEMES = ("http", "https", "file")


def check_timeout(timeout: Any, who: str) -> float:
    """Return ``timeout`` as seconds > 0 or raise."""
    if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real) or not timeout > 0:
        raise InvalidParameterError(
            f"{who}: expected timeout > 0 seconds, got {timeout!r}. Pass e.g. timeout=30."
        )
    return float(timeout)


def check_urls(urls: str | Sequence[str], *, who: str = "download_file") -> list[str]:
    """Return the URLs as a list, each ``http://``, ``https://`` or ``file://``, or raise."""
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
        got = file_digest(path, algo)
        if got != digest:
            raise DataError(f"expected {algo} {digest}, got {got}")

    return verify


def _verifier(checksum: Any) -> Callable[[Path], Any]:
    if isinstance(checksum, str):
        return _checksum_verifier(checksum)
    if callable(checksum):
        return checksum
    raise InvalidParameterError(
        f"download_file: expected checksum as a digest string or a callable, got "
        f"{type(checksum).__name__}. Pass e.g. checksum='md5:<hex>'."
    )


@contextlib.contextmanager
def _progress_bar(total: int | None, name: str, enabled: bool) -> Iterator[Any]:
    """A tqdm bar counting bytes, or ``None`` when disabled or tqdm is not installed."""
    bar = progress_bar(total, name, enabled, unit="B", unit_scale=True, unit_divisor=1024)
    try:
        yield bar
    finally:
        if bar is not None:
            bar.close()


def _too_large(limit: int, what: str) -> DataError:
    return DataError(
        f"expected at most {limit} bytes, got {what} (not the expected file; download stopped)"
    )


def _read_size(received: int, limit: int | None) -> int:
    """The next read: a chunk, but never past one byte beyond ``limit`` in total."""
    return _CHUNK if limit is None else min(_CHUNK, limit + 1 - received)


def _stream(url: str, out: Any, *, timeout: float, limit: int | None, progress: bool) -> None:
    """Copy ``url`` into ``out`` in chunks, stopping past ``limit`` bytes."""
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # schemes checked
        header = response.headers.get("Content-Length")
        length = int(header) if header is not None and header.isdigit() else None
        if limit is not None and length is not None and length > limit:
            raise _too_large(limit, f"a Content-Length of {length}")
        name = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])
        received = 0
        with _progress_bar(length or None, name, progress) as bar:
            while chunk := response.read(_read_size(received, limit)):
                received += len(chunk)
                if limit is not None and received > limit:
                    raise _too_large(limit, "more")
                out.write(chunk)
                if bar is not None:
                    bar.update(len(chunk))
    if length and length != received:  # file:// reports 0 for special files; http the truth
        raise DataError(f"expected {length} bytes, got {received} (connection cut)")


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


def _writable_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(
            f"download_file: expected a writable folder {folder}, got {exc.strerror or exc}. "
            "Pass a data_dir you can write to."
        ) from exc


def download_file(
    urls: str | Sequence[str],
    dest: str | os.PathLike[str],
    *,
    checksum: str | Callable[[Path], Any],
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int | None = None,
    progress: bool = False,
) -> Path:
    """Download one file from the first mirror that serves a valid copy.

    Each URL is tried in order. The body is streamed into a temporary file in ``dest``'s folder,
    verified, then atomically renamed onto ``dest`` with :func:`os.replace`; a failed, oversized
    or corrupted download is deleted, so nothing partial ever appears under ``dest``.

    Args:
        urls: the full URLs of the file (``http://``, ``https://`` or ``file://``), best first.
        dest: the final path; its folder is created if needed.
        checksum: ``"md5:<hex>"``, ``"sha256:<hex>"`` (a bare 32- or 64-digit hex digest means MD5
            or SHA-256), or a callable that receives the path of the downloaded temporary file
            and raises :class:`DataError` when it is not valid.
        timeout: seconds to wait on a connection or read before giving up on a mirror.
        max_bytes: the most bytes accepted from a mirror; a larger ``Content-Length`` or body
            abandons that mirror. ``None``: no cap (the loaders always pass the known size).
        progress: show a tqdm progress bar (bytes received of the total) on stderr; silent when
            ``False`` or when tqdm is not installed.

    Returns:
        ``Path(dest)``.

    Raises:
        InvalidParameterError: on a bad URL, checksum, timeout or ``max_bytes``.
        DataError: when no mirror served a valid copy (the message says what to do).
    """
    url_list = check_urls(urls)
    timeout = check_timeout(timeout, "download_file")
    verify = _verifier(checksum)
    limit = None if max_bytes is None else check_integer(max_bytes, "max_bytes", "download_file")
    dest_path = Path(dest)
    _writable_folder(dest_path.parent)
    failures: list[str] = []
    for url in url_list:
        try:
            logger.info("downloading %s to %s", url, dest_path)
            with atomic_open(dest_path, "wb", verify=verify) as out:
                _stream(url, out, timeout=timeout, limit=limit, progress=bool(progress))
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
        f"{dest_path.parent}, or pass data_dir= (--data-dir) pointing at a folder that holds it."
    )


def mirror_urls(mirrors: Sequence[str], filename: str) -> list[str]:
    """The URL of ``filename`` on each mirror (a base URL)."""
    return [m.rstrip("/") + "/" + filename for m in mirrors]


def download_spec(
    spec: FileSpec,
    target_dir: Path,
    reader: Callable[[Path, FileSpec], Any],
    *,
    mirrors: Sequence[str],
    timeout: float,
    progress: bool,
) -> Any:
    """Download ``spec`` into ``target_dir``, capped at its known size; the download is accepted
    when ``reader(path, spec)`` accepts it, and the reader's result is returned."""
    result: dict[str, Any] = {}

    def verify(tmp: Path) -> None:
        result["value"] = reader(tmp, spec)

    download_file(
        mirror_urls(mirrors, spec.filename),
        target_dir / spec.filename,
        checksum=verify,
        timeout=timeout,
        max_bytes=spec.download_limit,
        progress=progress,
    )
    return result["value"]


__all__ = ["download_file"]
