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

MNIST and Fashion-MNIST take ``pad=2`` (``dataset_options={"pad": 2}`` in an experiment) to
become ``[1, 32, 32]`` with a zero border, the input size of VGG-16.

Files are looked for, in order, in ``data_dir`` when it is given (the folder that holds the files
of that one dataset), otherwise in the cache folder :func:`default_data_dir` (``$INFOPLANE_DATA/
<name>`` or ``~/.cache/infoplane/datasets/<name>``) and, for ``fashion-mnist`` only, in
``/usr/share/datasets/fashion-mnist/`` (Debian's ``dataset-fashion-mnist`` package). A file that is
missing or fails verification is downloaded (when ``download=True``) from the mirrors of
:data:`REGISTRY`, in order, into ``data_dir`` or the cache folder; the download is streamed into a
temporary file beside the destination, capped at the known size of the file, verified, then
renamed onto the final name, so a partial, oversized or corrupted file never appears under that
name.

Verification: every file is checked before use. A ``.gz`` file is accepted when the MD5 of its
bytes is the upstream one *or* the SHA-256 of its decompressed content is a known one (Debian
recompresses Fashion-MNIST, so its ``.gz`` bytes differ from upstream while the content is the
same); an already decompressed IDX file is accepted on the SHA-256 of its content where one is
known. On top of that every IDX file must pass a structural check: magic number, element type,
dimensions, exact byte length and label range. For MNIST no decompressed digest is recorded, so an
uncompressed MNIST file in ``data_dir`` is accepted on the structural check alone.

Bounds: no file is read whole before its size is known. A file on disk larger than any valid copy
is refused from its size; an IDX header must declare the dataset's known shape before its data
are read, and exactly that many bytes are decompressed (a gzip bomb stops there); a CIFAR-10
batch is checked on its size before it is read; a download stops past the file's known size.

The package, by responsibility: :mod:`.registry` (names, files, checksums, sizes, mirrors),
:mod:`.formats` (IDX and CIFAR-10 readers on streams), :mod:`.verify` (a file on disk against its
registry entry), :mod:`.download` (mirrors, size cap, progress bar, atomic rename),
:mod:`.offline` (digits, synthetic), :mod:`.loaders` (:func:`load_dataset`).
"""

from __future__ import annotations

from infoplane.experiments.data.download import download_file
from infoplane.experiments.data.formats import parse_idx, read_idx
from infoplane.experiments.data.loaders import MAX_PAD, load_dataset
from infoplane.experiments.data.registry import (
    REGISTRY,
    DatasetSource,
    FileSpec,
    available_datasets,
    default_data_dir,
)
from infoplane.experiments.data.splits import DatasetSplits
from infoplane.experiments.data.verify import verify_file

__all__ = [
    "MAX_PAD",
    "REGISTRY",
    "DatasetSource",
    "DatasetSplits",
    "FileSpec",
    "available_datasets",
    "default_data_dir",
    "download_file",
    "load_dataset",
    "parse_idx",
    "read_idx",
    "verify_file",
]
