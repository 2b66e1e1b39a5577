"""The version of infoplane, in one place (the package root and the records import it)."""

__version__ = "0.1.0"
