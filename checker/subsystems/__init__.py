"""One module per subsystem: how the engines set it up, drive it and draw its state."""

from __future__ import annotations

import importlib
from types import ModuleType

MODULES = {"buddy": "mmcheck.checker.subsystems.buddy"}


def driver(subsystem: str) -> ModuleType | None:
    name = MODULES.get(subsystem)
    return importlib.import_module(name) if name else None
