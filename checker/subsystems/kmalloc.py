"""kmalloc (Kmalloc) as the engines see it: setups, steps, systems, pictures.

Sizes sit at and around every class boundary (32, 33, 128, 129, 192, 4096,
4097, 131072, 131073), include 0, a negative size and more than
KMALLOC_MAX_SIZE, and come with and without GFP_DMA; kfree and ksize take
live allocations, NULL, ZERO_SIZE_PTR, interior pointers and freed ones. The
`pages` allocator is the checker's audited buddy allocator with pfn 0 kept
back (address 0 is NULL), small enough in some setups to run out.

What a spec sees of a submission: the allocations it returned and did not get
back, with the size asked for and the usable size its ksize() reports (asked
right after each kmalloc), the blocks it holds from `pages` and the page
requests of the last step. Which class a request lands in is its choice,
within what the contract says of ksize.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import strategies as st
from mmcheck.checker import coverage
from mmcheck.checker.formats.pictures.kmalloc import render_svg, render_text  # noqa: F401
from mmcheck.checker.formats.pictures.slab import addresses_named
from mmcheck.checker.subsystems._vm import (
    construct,
    convert,
    pick,
    plain_int,
    raises_of,
    returns_of,
)
from mmcheck.checker.subsystems.declared.kmalloc import BAD_SIZES, DECLARATION, SIZES
from mmcheck.checker.subsystems.slab import page_events_since
from mmcheck.checker.systems import ModelSystem, Problem, SandboxedSystem
from mmcheck.checker.trace import Step
from mmcheck.model.buddy import BuddyAllocator
from mmcheck.model.kmalloc import (
    CACHE_SIZES,
    GFP_DMA,
    KMALLOC_MAX_CACHE_SIZE,
    KMALLOC_MAX_SIZE,
    VOCABULARY,
    ZERO_SIZE_PTR,
    Kmalloc,
    make_snapshot,
)
from mmcheck.model.linux import PAGE_SIZE
from mmcheck.model.slab import PageEvent

ALLOWED = raises_of(VOCABULARY)
RETURNS = returns_of(VOCABULARY)

SUBMISSION_VIEW = {
    "npages": "own: the size of the `pages` allocator it was given",
    "max_cache_size": "the contract's constant", "max_size": "the contract's constant",
    "zero_size_ptr": "the contract's constant",
    "objects": "own: what kmalloc() returned and kfree() has not taken back, with the "
               "size asked for and its ksize() right after",
    "held": "own: the blocks it holds from the checker's audited `pages`",
    "page_events": "own: the audit of its calls to `pages` in the last step",
    "bad_page_frees": "own: the audit of its calls to `pages`",
}
ALL_SIZES = SIZES + BAD_SIZES


def hidden_names(sub: Any) -> frozenset[str]:
    """A Kmalloc submission shows every name of the vocabulary."""
    return frozenset()


def setups(max_pages: int = 5000) -> st.SearchStrategy[dict[str, int]]:
    """How many pages `pages` manages (pfn 0 never given)."""
    return st.fixed_dictionaries({"npages": st.sampled_from([256, 16, 4, 1100])})


class View:
    """What the step generator knows: the live allocations, and freed ones."""

    def __init__(self, setup: Mapping[str, int]) -> None:
        self.live: list[int] = []
        self.freed: list[int] = []

    def record(self, step: Step) -> None:
        if step.raised is not None:
            return
        if step.op == "kmalloc" and plain_int(step.result) and step.result != ZERO_SIZE_PTR \
                and step.result not in self.live:
            self.live.append(step.result)
        elif step.op == "kfree" and step.args[0] in self.live:
            self.live.remove(step.args[0])
            self.freed = (self.freed + [step.args[0]])[-8:]


def draw_steps(data: st.DataObject, view: View) -> list[tuple[str, tuple[int, ...]]]:
    """The next operation(s): a kind, then at most one pick (see _vm.pick)."""
    kinds = ["kmalloc", "bad", "run", "kfree", "free_all", "ksize"]
    if not view.live:
        kinds = [k for k in kinds if k not in ("kfree", "free_all", "ksize")]
    kind = data.draw(st.sampled_from(kinds), label="kind")
    if kind == "kmalloc":
        size, flags = pick(data, "size, flags", ALL_SIZES, (0, GFP_DMA))
        return [("kmalloc", (size, flags))]
    if kind == "run":
        size, flags, n = pick(data, "size, flags, count", SIZES[:10], (0, GFP_DMA), (4, 16, 40))
        return [("kmalloc", (size, flags))] * n
    if kind == "kfree":
        (addr,) = pick(data, "addr", view.live)
        return [("kfree", (addr,))]
    if kind == "free_all":
        order = data.draw(st.permutations(view.live), label="allocations")
        return [("kfree", (a,)) for a in order]
    if kind == "ksize":
        (addr,) = pick(data, "addr", view.live)
        return [("ksize", (addr,))]
    targets = view.live + view.freed or [PAGE_SIZE]
    op, how, addr = pick(data, "op, how, addr", ("kfree", "ksize"),
                         ("null", "zero", "freed", "interior", "never"), targets)
    if how == "freed" and view.freed:
        return [(op, (view.freed[-1],))]
    bad = {"interior": addr + 8, "null": 0, "zero": ZERO_SIZE_PTR}.get(how, addr + 3 * PAGE_SIZE)
    return [(op, (bad,))]


# ---------------------------------------------------------------- systems


def _audited(npages: int) -> Any:
    """The checker's audited buddy allocator, with pfn 0 (address NULL) kept back."""
    from mmcheck.checker.sandbox.pages import AuditedPages

    buddy = BuddyAllocator(npages)
    buddy.take_block(0, 0)
    return AuditedPages(buddy)


class ReferenceSystem(ModelSystem):
    """The reference kmalloc over an audited reference buddy allocator."""

    def __init__(self, setup: Mapping[str, int]) -> None:
        self.npages = setup["npages"]
        self.pages = _audited(self.npages)
        self.model = Kmalloc(self.pages)
        self.last: list[PageEvent] = []

    def apply(self, op: str, args: tuple[int, ...], expect: Step | None = None
              ) -> tuple[Step, Problem | None]:
        since = len(self.pages.events)
        try:
            step = Step(op, args, getattr(self.model, op)(*args), None)
        except ValueError:
            step = Step(op, args, None, "ValueError")
        self.last = page_events_since(self.pages, since)
        return step, None

    def snapshot(self) -> Mapping[str, Any]:
        return self.model.snapshot(self.last, len(self.pages.refused()), self.npages)


class SubmissionSystem(SandboxedSystem):
    """A submission's Kmalloc in its sandbox; its ksize() asked after every kmalloc."""

    def __init__(self, sub: Any, setup: Mapping[str, int]) -> None:
        self.sub = sub
        self.npages = setup["npages"]
        self.pages = _audited(self.npages)
        self.live: dict[int, tuple[int, bool, int]] = {}
        self.last: list[PageEvent] = []
        self.handle = construct(sub, DECLARATION, sub.export(self.pages))

    def apply(self, op: str, args: tuple[int, ...], expect: Step | None = None
              ) -> tuple[Step, Problem | None]:
        since = len(self.pages.events)
        got = convert(op, args, self.sub.call(self.handle, op, *args), ALLOWED[op], RETURNS[op])
        self.last = page_events_since(self.pages, since)
        if got.problem is not None:
            return got.step, got.problem
        step = got.step
        if step.raised is None and op == "kmalloc" and plain_int(step.result) \
                and step.result != ZERO_SIZE_PTR:
            out = self.sub.call(self.handle, "ksize", step.result)
            if not out.returned or not plain_int(out.value):
                return step, Problem("protocol", f"ksize({step.result:#x}) right after "
                                                 f"kmalloc{args} {out.describe()}",
                                     ("the contract says ksize of a live allocation is its "
                                      "usable size in bytes",))
            self.live[step.result] = (args[0], bool(args[1] & GFP_DMA), out.value)
        elif step.raised is None and op == "kfree":
            self.live.pop(args[0], None)
        return step, None

    def snapshot(self) -> Mapping[str, Any]:
        return make_snapshot(self.npages, dict(self.pages.held), dict(self.live), self.last,
                             len(self.pages.refused()))


# ---------------------------------------------------------------- pictures


def render_state(state: Mapping[str, Any], named: Sequence[Any] = (),
                 limit: int = 16) -> list[str]:
    """The size classes in use with their blocks (checker/formats/pictures/kmalloc.py),
    then the live allocations by address, an arrow at each one the explanation names."""
    highlight = addresses_named(named)
    objs = sorted(state["objects"])
    held = sorted(state["held"])
    lines = [f"{len(objs)} live allocation(s), {len(held)} block(s) held from pages",
             *render_text(state, highlight)]
    for o in objs[:limit]:
        mark = "  <-" if highlight and o.addr in highlight else ""
        lines.append(f"  {o.addr:#x}..{o.addr + o.usable:#x} kmalloc({o.size}"
                     f"{', GFP_DMA' if o.dma else ''}) ksize {o.usable}"
                     f"{'' if o.block != -1 else '  (in no held block)'}{mark}")
    if len(objs) > limit:
        lines.append(f"  ... {len(objs) - limit} more")
    return lines


# ---------------------------------------------------------------- contract coverage

# The classes the contract (docs/contract.md, Kmalloc) names.
COVERAGE = (
    "operation: kmalloc", "operation: kfree", "operation: ksize",
    "outcome: kmalloc -> returned", "outcome: kmalloc -> none", "outcome: kmalloc -> ValueError",
    "outcome: kfree -> none", "outcome: kfree -> ValueError",
    "outcome: ksize -> returned", "outcome: ksize -> ValueError",
    "boundary: kmalloc size 0", "boundary: kmalloc size negative",
    "boundary: kmalloc size a size class", "boundary: kmalloc size between size classes",
    "boundary: kmalloc size above the largest class",
    "boundary: kmalloc size above KMALLOC_MAX_SIZE", "boundary: kmalloc with GFP_DMA",
    *(f"boundary: {op} of {what}" for op in ("kfree", "ksize")
      for what in ("a live allocation", "NULL", "ZERO_SIZE_PTR", "a pointer inside a live "
                   "allocation", "an address not live")),
    "boundary: kfree of a large allocation",
)


def classify_step(step: Step, old: Mapping[str, Any], new: Mapping[str, Any],
                  setup: Mapping[str, int]) -> list[str]:
    """The outcome; a request's size against the size classes and KMALLOC_MAX_SIZE,
    GFP_DMA; what kfree's or ksize's address is."""
    out = [coverage.outcome(step)]
    if step.op == "kmalloc":
        size, flags = step.args
        out.append(f"boundary: kmalloc size {_size_class(size)}")
        if flags & GFP_DMA:
            out.append("boundary: kmalloc with GFP_DMA")
        return out
    addr = step.args[0]
    out.append(f"boundary: {step.op} of {_address_target(addr, old)}")
    live = next((o for o in old["objects"] if o.addr == addr), None)
    if step.op == "kfree" and live is not None and live.size > KMALLOC_MAX_CACHE_SIZE:
        out.append("boundary: kfree of a large allocation")
    return out


def _size_class(size: int) -> str:
    """Where a request's size sits among the size classes."""
    if size < 0:
        return "negative"
    if size == 0:
        return "0"
    if size > KMALLOC_MAX_SIZE:
        return "above KMALLOC_MAX_SIZE"
    if size > KMALLOC_MAX_CACHE_SIZE:
        return "above the largest class"
    return "a size class" if size in CACHE_SIZES else "between size classes"


def _address_target(addr: int, old: Mapping[str, Any]) -> str:
    """What `addr` is in the state before a kfree or ksize."""
    if addr == 0:
        return "NULL"
    if addr == ZERO_SIZE_PTR:
        return "ZERO_SIZE_PTR"
    if any(o.addr == addr for o in old["objects"]):
        return "a live allocation"
    if any(o.addr < addr < o.addr + o.usable for o in old["objects"]):
        return "a pointer inside a live allocation"
    return "an address not live"


# ---------------------------------------------------------------- symbolic


def symbolic_system(npages: int, mutation: str | None = None):  # noqa: ANN201
    """The Z3 encoding of kmalloc with the 1 KiB and 2 KiB caches (and their DMA twins)
    over a pool of `npages` pages, at most 12 (every object fits in an array cache;
    the setup says the size used). Returns (system, setup, integer universe, exponent
    bound)."""
    from mmcheck.checker.symbolic.kmalloc import SymbolicKmalloc

    npages = min(npages, SymbolicKmalloc.max_pages())
    return SymbolicKmalloc(npages, mutation), {"npages": npages}, range(0, npages + 1), 8
