"""Kernel widths: ``infoplane.bandwidth`` is :mod:`infoplane.functional.bandwidth`."""

from infoplane.functional.bandwidth import *  # noqa: F403
from infoplane.functional.bandwidth import __all__  # noqa: F401
