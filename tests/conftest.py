"""Shared test configuration: an opt-in fixture for single-threaded modules.

``tests`` is a package: shared set-up is imported as ``tests.helpers...``, the benchmark scripts
as ``benchmarks...``, both from the repository root (``pythonpath`` in pyproject.toml).
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module")
def single_thread():
    """Run a module's small linear algebra on one intra-op thread, then restore the setting.

    Opt in with ``pytestmark = pytest.mark.usefixtures("single_thread")``. For matrices of a few
    hundred rows one thread is as fast, and it is immune to the OpenMP barrier stalls that make
    a 100 x 100 ``eigvalsh`` take ~0.5 s with two threads on a machine busy with other work.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
