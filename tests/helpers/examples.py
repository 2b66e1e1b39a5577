"""The scripts of ``examples/`` as modules, loaded from their files."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load_example(name: str) -> ModuleType:
    """``examples/<name>.py`` as the module ``examples.<name>``.

    That is also the name under which a process spawned by a test (Lightning's ``ddp_spawn``)
    finds the example's classes when it unpickles them: ``examples/`` is a namespace package of
    the repository root, which pytest puts on ``sys.path``.
    """
    module_name = f"examples.{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"load_example: expected a script {EXAMPLES / name}.py, found none")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
