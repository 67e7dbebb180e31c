"""The exception classes injected into every Python submission's module globals.

The contract lets a submission raise these (`raise PageFault(code)` or
`raise PageFault(code, va)`, docs/contract.md [GEN-FAULT-CLASSES]) without
importing anything from the checker, or define classes of its own with the same
names: the checker recognises a fault by the class NAME and an integer `code`
attribute, never by identity, so both kinds are reported alike.
"""

from __future__ import annotations

# si_code values of SIGSEGV (include/uapi/asm-generic/siginfo.h), the natural
# `code` of a Segfault.
SEGV_MAPERR = 1
SEGV_ACCERR = 2


class _Fault(Exception):
    """A fault with an integer `code` and the faulting `address` (or None)."""

    what = "fault"

    # (code, address): the code first, as docs/contract.md fixes it.
    def __init__(self, code: int = 0, address: int | None = None, message: str = "") -> None:
        self.code = code
        self.address = address
        super().__init__(message or self._describe())

    def _describe(self) -> str:
        at = "" if self.address is None else f" at {self.address:#x}"
        code = f"{self.code:#x}" if isinstance(self.code, int) else repr(self.code)
        return f"{self.what}{at} (code {code})"


class PageFault(_Fault):
    """x86 #PF: `code` holds the error-code bits P=1, W=2, U=4, I=16 (X86_PF_*)."""

    what = "page fault"


class Segfault(_Fault):
    """What Linux would turn into SIGSEGV: `code` is SEGV_MAPERR (1) or SEGV_ACCERR (2)."""

    what = "segfault"


INJECTED: dict[str, type] = {"PageFault": PageFault, "Segfault": Segfault}
