"""Shared test configuration: make ``tests/helpers`` importable as ``helpers``; an opt-in
fixture for single-threaded modules."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)


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
