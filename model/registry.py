"""Which model module serves which subsystem a spec can name (`spec buddy`, ...).

Modules are imported on first use so that checking a buddy spec does not pay for
the page-table model.
"""

from __future__ import annotations

import importlib

from mmcheck.model.vocabulary import Vocabulary

# subsystem -> (module, contract class a submission defines)
SUBSYSTEMS: dict[str, tuple[str, str]] = {
    "buddy": ("mmcheck.model.buddy", "BuddyAllocator"),
    "vma": ("mmcheck.model.vma", "AddressSpace"),
    "pagetable": ("mmcheck.model.mmu", "PageTable"),
    "fault": ("mmcheck.model.fault", "Kernel"),
}


def vocabulary(subsystem: str) -> Vocabulary | None:
    """The vocabulary of a subsystem, or None if no model serves that name."""
    entry = SUBSYSTEMS.get(subsystem)
    if entry is None:
        return None
    try:
        module = importlib.import_module(entry[0])
    except ImportError:
        return None
    return getattr(module, "VOCABULARY", None)


def subsystem_of_class(class_name: str) -> str | None:
    """The subsystem whose contract class is `class_name` (BuddyAllocator -> buddy)."""
    return next((s for s, (_, cls) in SUBSYSTEMS.items() if cls == class_name), None)
