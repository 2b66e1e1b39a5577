"""The ``Example:`` blocks of every module of infoplane, run as doctests.

Every module found by walking the ``infoplane`` package is one test; a module whose import needs
an optional framework that is not installed is skipped. A new ``>>>`` example anywhere in the
package is run without a change here.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from types import ModuleType

import pytest

import infoplane

OPTION_FLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS

#: Modules whose public functions document themselves with examples.
DOCUMENTED = (
    "infoplane.capture",
    "infoplane.functional.entropy",
    "infoplane.functional.kernels",
    "infoplane.history",
    "infoplane.tracker._plane",
    "infoplane.widths._functions",
    "infoplane.widths._rules",
)


def _module_names() -> list[str]:
    """Every module of the package (``__main__`` runs the command line on import: left out)."""
    found = pkgutil.walk_packages(infoplane.__path__, prefix="infoplane.", onerror=lambda _: None)
    return sorted(m.name for m in found if m.name.rsplit(".", 1)[-1] != "__main__")


MODULES = _module_names()


def _import(name: str) -> ModuleType:
    """The module, or a skip when what it imports is an optional package that is missing."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        missing = exc.name or ""
        if missing and missing.split(".")[0] != "infoplane":
            pytest.skip(f"{name} needs the optional package {missing!r}")
        raise


def _run(module: ModuleType) -> tuple[doctest.TestResults, str]:
    """Run the module's examples: (failed, attempted) and the report of every failure."""
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=OPTION_FLAGS, verbose=False)
    report: list[str] = []
    failed = attempted = 0
    for test in finder.find(module, module.__name__):
        result = runner.run(test, out=report.append)
        failed, attempted = failed + result.failed, attempted + result.attempted
    return doctest.TestResults(failed, attempted), "".join(report)


def test_the_walk_finds_the_package_modules() -> None:
    assert set(DOCUMENTED) <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_examples_of_module(name: str) -> None:
    results, report = _run(_import(name))
    assert results.failed == 0, (
        f"{results.failed} of {results.attempted} examples failed:\n{report}"
    )


@pytest.mark.parametrize("name", DOCUMENTED)
def test_documented_module_has_examples(name: str) -> None:
    results, _ = _run(_import(name))
    assert results.attempted > 0, f"{name}: expected Example: blocks, found none"
