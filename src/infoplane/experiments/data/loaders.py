"""The loaders: :func:`load_dataset` and the file-backed datasets (MNIST, Fashion-MNIST, CIFAR-10).

A file is looked for on disk first (``data_dir``, or the cache and the system folders), read with
every check of :mod:`.verify`, and downloaded from the mirrors only when no valid copy is found.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from infoplane._validation import check_integer
from infoplane.errors import DataError, InvalidParameterError, InvalidTypeError
from infoplane.experiments.data.download import (
    DEFAULT_TIMEOUT,
    check_timeout,
    check_urls,
    download_spec,
    mirror_urls,
)
from infoplane.experiments.data.offline import load_digits, load_synthetic
from infoplane.experiments.data.registry import (
    ALIASES,
    CIFAR10_CLASSES,
    CIFAR_BATCHES,
    CIFAR_DIR,
    CIFAR_TEST,
    CIFAR_TRAIN,
    DATASET_NAMES,
    DIGIT_CLASSES,
    FASHION_CLASSES,
    IDX_ROLES,
    REGISTRY,
    FileSpec,
    available_datasets,
    default_data_dir,
)
from infoplane.experiments.data.splits import DatasetSplits, to_images
from infoplane.experiments.data.verify import read_cifar_archive, read_cifar_folder, read_idx_file

logger = logging.getLogger(__name__)

_SCALES: tuple[str, ...] = ("unit", "raw")
#: The widest zero border ``pad`` may add: the side of an image (28 triples each side).
MAX_PAD = 28
_OPTIONS: dict[str, tuple[str, ...]] = {
    "digits": ("test_size",),
    "synthetic": ("n_train", "n_test", "num_classes", "input_shape", "noise"),
    "mnist": ("mirrors", "timeout", "scale", "pad"),
    "fashion-mnist": ("mirrors", "timeout", "scale", "pad"),
    "cifar10": ("mirrors", "timeout", "scale"),
}


def _check_pad(pad: Any, name: str) -> int:
    value = check_integer(pad, "pad", "load_dataset", minimum=0)
    if value > MAX_PAD:
        raise InvalidParameterError(
            f"load_dataset: expected pad in [0, {MAX_PAD}] for {name!r}, got {value}. "
            "Pass pad=2 for 32x32 images."
        )
    return value


def _download_options(
    name: str, mirrors: Sequence[str] | None, timeout: float, scale: str
) -> tuple[tuple[str, ...], float, str]:
    if mirrors is None:
        mirror_list = tuple(REGISTRY[name].mirrors)
    else:
        mirror_list = (mirrors,) if isinstance(mirrors, str) else tuple(mirrors)
        if mirror_list:
            check_urls(mirror_list, who="load_dataset")
    timeout = check_timeout(timeout, "load_dataset")
    if scale not in _SCALES:
        raise InvalidParameterError(
            f"load_dataset: expected scale in {list(_SCALES)}, got {scale!r}. "
            "Use 'unit' for [0, 1] or 'raw' for 0-255."
        )
    return mirror_list, timeout, scale


def _dirs(name: str, data_dir: str | os.PathLike[str] | None) -> tuple[list[Path], Path]:
    if data_dir is not None:
        folder = Path(data_dir).expanduser()
        return [folder], folder
    cache = default_data_dir(name)
    return [cache, *(Path(d) for d in REGISTRY[name].system_dirs)], cache


@dataclass(frozen=True)
class _Fetch:
    """Where a dataset's files go and how they are fetched when no valid copy is on disk."""

    target: Path
    download: bool
    mirrors: tuple[str, ...]
    timeout: float
    progress: bool


def _missing(name: str, spec: FileSpec, where: str, problems: list[str], fetch: _Fetch) -> str:
    if problems:
        return f"{problems[0].rstrip('.')}, or allow download (download=False was given)."
    names = " or ".join(spec.local_names)
    urls = mirror_urls(fetch.mirrors, spec.filename)
    hint = f" from {urls[0]}" if urls else ""
    return (
        f"load_dataset: expected the {name} file {names} in {where}, got no such file "
        f"(download=False). Download it{hint} into {fetch.target}, or pass data_dir= "
        "(--data-dir) pointing at a folder that holds it, or allow download."
    )


def _obtain(
    name: str,
    spec: FileSpec,
    reader: Callable[[Path, FileSpec], Any],
    search_dirs: Sequence[Path],
    fetch: _Fetch,
) -> Any:
    """Return ``reader(path, spec)`` for the first valid copy of ``spec`` on disk, else download
    it into ``fetch.target`` (when allowed) and return the reader's result for the download."""
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
    if not fetch.download:
        raise DataError(_missing(name, spec, where, problems, fetch))
    if not fetch.mirrors:
        raise DataError(
            f"load_dataset: expected a valid {spec.filename} for {name} in {where} or a mirror to "
            f"download it from, got neither. Put the file into {fetch.target} or pass mirrors=."
        )
    return download_spec(
        spec,
        fetch.target,
        reader,
        mirrors=fetch.mirrors,
        timeout=fetch.timeout,
        progress=fetch.progress,
    )


def _fetch(
    name: str, data_dir: Any, download: bool, progress: bool, options: dict
) -> tuple[list[Path], _Fetch, str]:
    mirrors, timeout, scale = _download_options(
        name,
        options.get("mirrors"),
        options.get("timeout", DEFAULT_TIMEOUT),
        options.get("scale", "unit"),
    )
    search_dirs, target = _dirs(name, data_dir)
    return search_dirs, _Fetch(target, download, mirrors, timeout, progress), scale


def _load_idx_dataset(
    name: str, data_dir: Any, download: bool, progress: bool, options: dict
) -> DatasetSplits:
    search_dirs, fetch, scale = _fetch(name, data_dir, download, progress, options)
    pad = _check_pad(options.get("pad", 0), name)
    source = REGISTRY[name]
    arrays: dict[str, np.ndarray] = {}
    for role in IDX_ROLES:
        reader = lambda p, s: read_idx_file(p, s)[0]  # noqa: E731
        arrays[role] = _obtain(name, source.files[role], reader, search_dirs, fetch)
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or images.shape[0] != labels.shape[0]:
            raise DataError(
                f"load_dataset: expected {name} {split} images [N, H, W] and labels [N] of one N, "
                f"got {images.shape} and {labels.shape}. Delete the files and download them again."
            )
    x_train = to_images(arrays["train_images"][:, None], scale, pad)
    return DatasetSplits(
        x_train=x_train,
        y_train=torch.from_numpy(arrays["train_labels"].astype(np.int64)),
        x_test=to_images(arrays["test_images"][:, None], scale, pad),
        y_test=torch.from_numpy(arrays["test_labels"].astype(np.int64)),
        num_classes=10,
        name=name,
        input_shape=(1, int(x_train.shape[2]), int(x_train.shape[3])),
        classes=FASHION_CLASSES if name == "fashion-mnist" else DIGIT_CLASSES,
    )


def _load_cifar10(data_dir: Any, download: bool, progress: bool, options: dict) -> DatasetSplits:
    search_dirs, fetch, scale = _fetch("cifar10", data_dir, download, progress, options)
    spec = REGISTRY["cifar10"].files["archive"]
    batches = None
    if not any((d / spec.filename).is_file() for d in search_dirs):
        # Batches extracted by hand (cifar-10-batches-bin/ next to where the archive would be).
        for folder in search_dirs:
            extracted = folder / CIFAR_DIR
            if all((extracted / b).is_file() for b in CIFAR_BATCHES):
                batches = read_cifar_folder(extracted, spec)
                break
    if batches is None:
        batches = _obtain("cifar10", spec, read_cifar_archive, search_dirs, fetch)
    x_train = np.concatenate([batches[b][0] for b in CIFAR_TRAIN])
    y_train = np.concatenate([batches[b][1] for b in CIFAR_TRAIN])
    x_test, y_test = batches[CIFAR_TEST]
    return DatasetSplits(
        x_train=to_images(x_train, scale),
        y_train=torch.from_numpy(y_train),
        x_test=to_images(x_test, scale),
        y_test=torch.from_numpy(np.ascontiguousarray(y_test)),
        num_classes=10,
        name="cifar10",
        input_shape=(3, 32, 32),
        classes=CIFAR10_CLASSES,
    )


def _canonical_name(name: Any, options: dict) -> str:
    if not isinstance(name, str):
        raise InvalidTypeError(
            f"load_dataset: expected name as a string, got {type(name).__name__}. "
            f"Pass one of {available_datasets()}."
        )
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in DATASET_NAMES:
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
    return key


def _check_flags(download: Any, progress: Any, data_dir: Any) -> None:
    for flag, value in (("download", download), ("progress", progress)):
        if not isinstance(value, bool):
            raise InvalidParameterError(
                f"load_dataset: expected {flag} as True or False, got {value!r}. Pass a bool."
            )
    if data_dir is not None and not isinstance(data_dir, (str, os.PathLike)):
        raise InvalidTypeError(
            f"load_dataset: expected data_dir as a path, got {type(data_dir).__name__}. "
            "Pass a folder path or None."
        )


def load_dataset(
    name: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    seed: int = 0,
    progress: bool = False,
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
        progress: show a progress bar (bytes and total) on stderr while a file downloads; silent
            when ``False`` or when tqdm is not installed.
        **options: per dataset:

            * ``digits``: ``test_size=0.25``. The 1797 8×8 images are scaled to [0, 1] (divided
              by 16) and split by scikit-learn's ``train_test_split`` stratified on the label
              with ``random_state=seed``: 1347 train / 450 test, the same for the same seed.
            * ``mnist`` / ``fashion-mnist``: ``scale="unit"`` ([0, 1]) or ``"raw"`` (0-255
              floats), ``mirrors=`` (base URLs replacing :data:`REGISTRY`'s), ``timeout=30``,
              ``pad=0``. 60000 train / 10000 test, ``[1, 28, 28]``. ``pad=p`` (an integer in
              ``[0, 28]``) adds ``p`` rows and columns of zeros (the background) on every side:
              ``pad=2`` gives ``[1, 32, 32]``, the input size of VGG-16 and LeNet-5.
            * ``cifar10``: ``scale``, ``mirrors`` and ``timeout``; 50000 train / 10000 test,
              ``[3, 32, 32]``. The paper fed raw 0-255 values to VGG-16: pass ``scale="raw"``.
            * ``synthetic``: ``n_train=1000``, ``n_test=250``, ``num_classes=10``,
              ``input_shape=(1, 8, 8)``, ``noise=0.3``. Each class has a smooth random prototype
              image in [0, 1]; a sample is its prototype plus Gaussian noise of std ``noise``,
              clamped to [0, 1]. Classes are balanced (sizes differ by at most one).

    Returns:
        A :class:`DatasetSplits`.

    Raises:
        InvalidParameterError: unknown name or option, or an option of the wrong value.
        DataError: files missing (with ``download=False``), too large, corrupted, or not
            downloadable.
    """
    key = _canonical_name(name, options)
    seed = check_integer(seed, "seed", "load_dataset", minimum=0)
    _check_flags(download, progress, data_dir)
    if key == "digits":
        return load_digits(seed=seed, **options)
    if key == "synthetic":
        return load_synthetic(seed=seed, **options)
    if key == "cifar10":
        return _load_cifar10(data_dir, download, progress, options)
    return _load_idx_dataset(key, data_dir, download, progress, options)


__all__ = ["load_dataset"]
