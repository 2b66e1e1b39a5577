"""The exception family of infoplane.

Every error raised on purpose by infoplane derives from :class:`InfoPlaneError`, and each subclass
also derives from the built-in exception a Python user would expect (``ValueError``,
``TypeError``, ...), so ``except ValueError`` keeps working. Messages follow one shape::

    <who raised>: expected <argument> <what was expected>, got <what arrived>. <how to fix it>
"""

from __future__ import annotations


class InfoPlaneError(Exception):
    """Base class of every error raised by infoplane."""


class InvalidParameterError(InfoPlaneError, ValueError):
    """An argument has an invalid value (a width <= 0, alpha <= 0, an unknown option, ...)."""


class InvalidInputError(InfoPlaneError, ValueError):
    """Data has an invalid shape or content (too few samples, NaN, Inf, a non-square Gram, ...)."""


class InvalidTypeError(InfoPlaneError, TypeError):
    """An argument has the wrong type (a string where a tensor is expected, float labels, ...)."""


class DeviceMismatchError(InfoPlaneError, ValueError):
    """Tensors that must be combined live on different devices."""


class LayerNotFoundError(InfoPlaneError, KeyError):
    """A layer name does not exist in the model, or produced no output in the forward pass."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable.
        return str(self.args[0]) if self.args else ""


class NonFiniteActivationError(InfoPlaneError, FloatingPointError):
    """A layer produced NaN or Inf (usually a diverging run)."""


class DataError(InfoPlaneError, RuntimeError):
    """A dataset is missing, corrupted or cannot be downloaded."""


class HistoryError(InfoPlaneError, RuntimeError):
    """A history file is malformed or inconsistent with the run that tries to extend it."""


class DistributedError(InfoPlaneError, RuntimeError):
    """Processes of a distributed run disagree (different widths, layers or batch sizes)."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none): how a
    foreign error is quoted inside infoplane's one-line messages."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


__all__ = [
    "DataError",
    "DeviceMismatchError",
    "DistributedError",
    "HistoryError",
    "InfoPlaneError",
    "InvalidInputError",
    "InvalidParameterError",
    "InvalidTypeError",
    "LayerNotFoundError",
    "NonFiniteActivationError",
]
