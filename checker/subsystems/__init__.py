"""How the engines set each subsystem up, drive it and draw its state.

Every subsystem is declared once, in `declared/<name>.py` (see registry.py for
the `Subsystem` declaration and the `Driver` hooks a driver module defines);
this package holds one driver module per subsystem (buddy.py is the model for
the others) and `_vm.py`, the submission plumbing they share.
"""

from __future__ import annotations

from mmcheck.checker.subsystems.registry import Driver, driver, drivers

__all__ = ["Driver", "driver", "drivers"]
