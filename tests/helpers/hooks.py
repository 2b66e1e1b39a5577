"""Hook hygiene: assert that nothing infoplane registered outlives its call.

:func:`assert_no_hooks` walks every module of a model and fails, naming each module and the kind
of hook it still carries, when any forward, forward-pre, backward, full-backward or
full-backward-pre hook is left (and when a global module hook is left). It checks the library's
own :func:`infoplane.capture.hooks_left` too, so a disagreement between the two walks also fails.
"""

from __future__ import annotations

from torch import nn
from torch.nn.modules import module as torch_module

from infoplane.capture import hooks_left

#: Per-module hook dictionaries of ``nn.Module`` and the hook kind each one holds.
MODULE_HOOK_ATTRS: dict[str, str] = {
    "_forward_hooks": "forward",
    "_forward_pre_hooks": "forward-pre",
    "_backward_hooks": "backward (full or legacy)",
    "_backward_pre_hooks": "full-backward-pre",
}

#: Process-wide hook dictionaries (``nn.modules.module.register_module_*_hook``).
GLOBAL_HOOK_ATTRS: dict[str, str] = {
    "_global_forward_hooks": "global forward",
    "_global_forward_pre_hooks": "global forward-pre",
    "_global_backward_hooks": "global backward",
    "_global_backward_pre_hooks": "global backward-pre",
}


def hooks_report(model: nn.Module) -> dict[str, list[str]]:
    """``{module name: [hook kinds left]}`` for every module of ``model`` carrying a hook.

    The root module is named ``"<root>"``. Process-wide hooks are reported under ``"<global>"``.
    """
    report: dict[str, list[str]] = {}
    for name, module in model.named_modules():
        kinds = [
            f"{kind} x{len(getattr(module, attr))}"
            for attr, kind in MODULE_HOOK_ATTRS.items()
            if getattr(module, attr, None)
        ]
        if kinds:
            report[name or "<root>"] = kinds
    global_kinds = [
        f"{kind} x{len(getattr(torch_module, attr))}"
        for attr, kind in GLOBAL_HOOK_ATTRS.items()
        if getattr(torch_module, attr, None)
    ]
    if global_kinds:
        report["<global>"] = global_kinds
    return report


def assert_no_hooks(model: nn.Module) -> None:
    """Fail loudly if any module of ``model`` still carries a hook of any kind.

    The failure message lists every offending module by its dotted name with the kinds of hook
    left on it, and what :func:`infoplane.capture.hooks_left` reported.
    """
    report = hooks_report(model)
    library = hooks_left(model)
    if report or library:
        lines = [f"  {name}: {', '.join(kinds)}" for name, kinds in report.items()]
        raise AssertionError(
            f"hooks left on {type(model).__name__} after the call:\n"
            + ("\n".join(lines) if lines else "  (none found by the direct walk)")
            + f"\ninfoplane.capture.hooks_left reported: {library}"
        )


def training_flags(model: nn.Module) -> dict[str, bool]:
    """``{module name: module.training}`` for every module (the root as ``"<root>"``)."""
    return {name or "<root>": module.training for name, module in model.named_modules()}
