"""The buddy allocator as the engines see it: setups, steps, systems, pictures.

The step generator varies what a student would not think to vary: memory sizes
from one page to thousands, sizes that are not powers of two, every order up to
the top one (and past it), long alloc runs that fill memory and free runs that
re-form large blocks, and the contract's error paths (double free, wrong order,
a pfn never returned, an order out of range).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import strategies as st
from mmcheck.checker import coverage
from mmcheck.checker.explain import fields_in
from mmcheck.checker.formats.pictures.buddy import render_svg  # noqa: F401 (HTML picture)
from mmcheck.checker.subsystems import edges
from mmcheck.checker.subsystems._vm import construct, construct_refused, convert, plain_int
from mmcheck.checker.subsystems.declared.buddy import DECLARATION, top_order
from mmcheck.checker.systems import ModelSystem, Problem, SandboxedSystem
from mmcheck.checker.trace import Step
from mmcheck.model.buddy import (
    VOCABULARY,
    BuddyAllocator,
    IllegalChoice,
    snapshot_from_free_area,
)

# Where a submission's value of each state name comes from (`mmcheck vocab buddy`); a
# name not listed is the reference model's, which follows the submission's steps.
# Whether a submission shows a name at all is hidden_names() (checker/observable.py).
SUBMISSION_VIEW = {
    "npages": "its constructor's argument",
    "max_order": "its constructor's argument",
    "free": "its free_area() lists",
    "free_area": "its free_area() lists",
    "free_pages": "the pages its free_area() lists hold (duplicates counted)",
    "allocated": "the blocks its alloc returned and free has not taken back",
    "pages": "implied by its free_area() lists: PageBuddy and order on each listed pfn, "
             "refcount 1 on allocated heads; nothing else of struct page",
    "buddy_pages": "implied by its free_area() lists",
    "used_pages": "implied by the blocks alloc returned",
}
ALLOC, FREE = DECLARATION.operations
# A constructor step, named after the class: BuddyAllocator(npages, max_order) made
# (and dropped) beside the allocator under test; not an operation of the vocabulary.
NEW = DECLARATION.contract_class


def refused(npages: int, max_order: int) -> bool:
    """docs/contract.md [BUDDY-INIT-ARGS]: these arguments make no allocator."""
    return npages < 1 or max_order < 1


def bad_setups(setup: Mapping[str, int]) -> list[tuple[int, int]]:
    """Constructor arguments the contract refuses, beside this setup's valid ones."""
    n, m = setup["npages"], setup["max_order"]
    return [(0, m), (n, 0), (-1, m), (n, -1), (0, 0)]


def setups(max_pages: int = 5000) -> st.SearchStrategy[dict[str, int]]:
    """Memory sizes and MAX_ORDERs: small first (they shrink well), odd sizes often."""
    sizes = [st.integers(1, min(max_pages, 64))]
    if max_pages > 64:
        sizes.append(st.integers(65, min(max_pages, 1024)))
        sizes.append(st.integers(min(max_pages, 1025), max_pages))
    powers = [2**k for k in range(0, 13) if 2**k <= max(max_pages, 1)]
    npages = st.one_of(*sizes, st.sampled_from(powers))
    max_order = st.one_of(st.just(11), st.integers(1, 11))
    return st.fixed_dictionaries({"npages": npages, "max_order": max_order})


class View:
    """What the step generator knows: the setup and the blocks it saw handed out."""

    def __init__(self, setup: Mapping[str, int]) -> None:
        self.setup = dict(setup)
        self.npages = setup["npages"]
        self.max_order = setup["max_order"]
        self.allocated: dict[int, int] = {}
        self.freed: list[tuple[int, int]] = []  # recently freed blocks, for double frees

    def record(self, step: Step) -> None:
        if step.raised is not None:
            return
        if (
            step.op == "alloc"
            and isinstance(step.result, int)
            and not isinstance(step.result, bool)
        ):
            self.allocated[step.result] = step.args[0]
        elif step.op == "free" and self.allocated.get(step.args[0]) == step.args[1]:
            del self.allocated[step.args[0]]
            self.freed = (self.freed + [step.args])[-8:]


def draw_steps(data: st.DataObject, view: View) -> list[tuple[str, tuple[int, ...]]]:
    """The next operation(s): single steps, runs that fill memory or re-form big blocks,
    and the contract's error paths. The first choices are the simplest: shrinking
    moves towards them."""
    top = top_order(view.setup)
    kinds = ["alloc", "free", "alloc_run", "free_run", "bad_free", "bad_alloc", "edge"]
    if not view.allocated:
        kinds = [k for k in kinds if k not in ("free", "free_run")]
    kind = data.draw(st.sampled_from(kinds), label="kind")
    if kind == "edge":
        return edges.buddy_steps(data, view.npages, view.max_order)
    if kind == "alloc":
        order = data.draw(
            st.one_of(st.integers(0, min(top, 2)), st.integers(0, top)), label="order"
        )
        return [("alloc", (order,))]
    if kind == "alloc_run":
        order = data.draw(st.integers(0, top), label="order")
        count = data.draw(st.integers(2, 16), label="count")
        return [("alloc", (order,))] * count
    if kind == "free":
        pfn = data.draw(st.sampled_from(sorted(view.allocated)), label="pfn")
        return [("free", (pfn, view.allocated[pfn]))]
    if kind == "free_run":
        # Free everything in a shuffled order: buddies meet again and coalesce upwards.
        blocks = data.draw(st.permutations(sorted(view.allocated.items())), label="blocks")
        return [("free", (pfn, order)) for pfn, order in blocks]
    if kind == "bad_alloc":
        if data.draw(st.integers(0, 3), label="constructor") == 3:  # now and then
            return [(NEW, data.draw(st.sampled_from(bad_setups(view.setup)), label="args"))]
        bad = ALLOC.domain("order").invalid_values(view.setup)
        return [("alloc", (data.draw(st.sampled_from(bad), label="order"),))]
    how = data.draw(
        st.sampled_from(["never_returned", "wrong_order", "double_free", "out_of_range"]),
        label="bad",
    )
    if how == "double_free" and view.freed:
        return [("free", data.draw(st.sampled_from(view.freed), label="freed"))]
    if how == "wrong_order" and view.allocated:
        pfn = data.draw(st.sampled_from(sorted(view.allocated)), label="pfn")
        order = view.allocated[pfn] + data.draw(st.sampled_from([1, -1]), label="delta")
        return [("free", (pfn, order if order >= 0 else 1))]
    if how == "out_of_range":
        bad = FREE.domain("pfn").invalid_values(view.setup)
        return [("free", (data.draw(st.sampled_from(bad), label="pfn"), 0))]
    pfn = data.draw(st.integers(0, max(view.npages - 1, 0)), label="pfn")
    return [("free", (pfn, data.draw(st.integers(0, min(top, 3)), label="order")))]


# ---------------------------------------------------------------- systems


class ReferenceSystem(ModelSystem):
    """The reference model itself: its steps are right by definition of the model."""

    def __init__(self, setup: Mapping[str, int]) -> None:
        self.model = BuddyAllocator(setup["npages"], setup["max_order"])

    def apply(
        self, op: str, args: tuple[int, ...], expect: Step | None = None
    ) -> tuple[Step, Problem | None]:
        """Run one step; with `expect` (a step of a trace), make the same choice it made."""
        if op == NEW:
            try:
                BuddyAllocator(*args)
            except ValueError:
                return Step(op, args, None, "ValueError"), None
            return Step(op, args, None, None), None
        if op == "alloc" and expect is not None and plain_int(expect.result):
            try:
                self.model.take_block(expect.result, args[0])
            except IllegalChoice as why:
                return Step(op, args, None, None), Problem(
                    "refinement",
                    f"the trace's choice alloc{args} -> {expect.result} is not legal here",
                    (str(why),),
                )
            return Step(op, args, expect.result, None), None
        try:
            result = getattr(self.model, op)(*args)
        except ValueError:
            return Step(op, args, None, "ValueError"), None
        return Step(op, args, result, None), None


# What a submission without free_area() leaves to the reference (docs/contract.md
# [BUDDY-FREE-AREA-CHOICE]): the free lists and everything derived from them.
FREE_LIST_NAMES = frozenset({"free", "free_area", "free_pages", "pages", "buddy_pages",
                             "used_pages"})


def hidden_names(sub: Any) -> frozenset[str]:
    """The vocabulary `sub` does not show: the free lists unless it has free_area()."""
    white_box = "free_area" in sub.methods(DECLARATION.contract_class)
    return frozenset() if white_box else FREE_LIST_NAMES


class SubmissionSystem(SandboxedSystem):
    """A submission in its sandbox, with the reference model following its choices.

    After each step the reference either takes the same step (the submission's
    choice was legal) or the step is a refinement Problem that says why not.
    The spec sees the submission's own `free_area()` when it has one (white box),
    otherwise the reference's state.
    """

    def __init__(self, sub: Any, setup: Mapping[str, int]) -> None:
        self.sub = sub
        self.setup = dict(setup)
        self.reference = BuddyAllocator(setup["npages"], setup["max_order"])
        self.allocated: dict[int, int] = {}
        self.white_box = "free_area" in sub.methods(DECLARATION.contract_class)
        self.free_area: Any = None
        self.handle = construct(sub, DECLARATION, setup["npages"], setup["max_order"])
        if self.white_box:
            out = sub.call(self.handle, "free_area")
            self.free_area = out.value if out.returned else None

    def apply(
        self, op: str, args: tuple[int, ...], expect: Step | None = None
    ) -> tuple[Step, Problem | None]:
        if op == NEW:  # only arguments the contract refuses are tried (one object per run)
            if not refused(*args):
                return Step(op, args, None, None), None
            return construct_refused(self.sub, DECLARATION, args, *args,
                                     clause="[BUDDY-INIT-ARGS]")
        calls = [(self.handle, op, args)]
        if self.white_box:
            calls.append((self.handle, "free_area", ()))
        outcomes = self.sub.call_many(calls)
        contract = VOCABULARY.operation(op)
        assert contract is not None
        got = convert(op, args, outcomes[0], contract.raises, contract.returns)
        if got.problem is not None:
            return got.step, got.problem
        if len(outcomes) > 1:
            fa = outcomes[1]
            if not fa.returned:
                return got.step, Problem("protocol", f"free_area() {fa.describe()}", ())
            self.free_area = fa.value
        return got.step, self._follow(got.step)

    def _follow(self, step: Step) -> Problem | None:
        ref = self.reference
        if step.op == "alloc":
            (order,) = step.args
            in_range = plain_int(order) and 0 <= order < ref.max_order
            if step.raised is not None:
                return None  # the spec (alloc_checks_order) judges when ValueError is right
            if step.result is None:
                if in_range and ref.can_allocate(order):
                    return Problem(
                        "refinement",
                        f"alloc({order}) returned none, but memory has room",
                        (
                            "following every earlier choice of the submission, "
                            "the reference model "
                            f"still has a free block of order >= {order}:",
                            *_free_blocks_from(ref, order),
                        ),
                    )
                return None
            try:
                ref.take_block(step.result, order)
            except IllegalChoice as why:
                return Problem(
                    "refinement",
                    f"alloc({order}) returned {step.result}, which no correct allocator could",
                    (str(why),),
                )
            self.allocated[step.result] = order
            return None
        pfn, order = step.args
        legal = self.allocated.get(pfn) == order
        if legal and step.raised is None:
            ref.free(pfn, order)
            del self.allocated[pfn]
        elif not legal and step.raised is None:
            return Problem(
                "refinement",
                f"free({pfn}, {order}) was accepted, but that block is not allocated",
                (
                    _why_not_allocated(self.allocated, pfn, order),
                    "the contract says: ValueError for a double free, a wrong order "
                    "or a pfn never returned",
                ),
            )
        return None  # a ValueError on a legal free is judged by the spec

    def snapshot(self) -> Mapping[str, Any]:
        if self.white_box and self.free_area is not None:
            try:
                return snapshot_from_free_area(
                    self.setup["npages"], self.setup["max_order"], self.free_area, self.allocated
                )
            except (ValueError, TypeError):
                pass  # not a list of lists of pfns: judged as a protocol problem below
        return self.reference.snapshot()



def _free_blocks_from(ref: BuddyAllocator, order: int) -> list[str]:
    out = []
    for o in range(order, ref.max_order):
        for pfn in ref.free_area()[o][:3]:
            out.append(f"  free block at pfn {pfn}, order {o} (pages {pfn}..{pfn + (1 << o) - 1})")
        if len(out) >= 3:
            break
    return out


def _why_not_allocated(allocated: Mapping[int, int], pfn: int, order: int) -> str:
    if pfn in allocated:
        return f"pfn {pfn} was allocated with order {allocated[pfn]}, not {order}"
    return f"pfn {pfn} is not the start of any block alloc returned (or it was already freed)"


# ---------------------------------------------------------------- pictures


def render_state(
    state: Mapping[str, Any], named: Sequence[Any] = (), limit: int = 24
) -> list[str]:
    """The state as a student reads it: a buddyinfo line and the blocks in pfn order,
    pointing at the blocks whose pfn the explanation names."""
    highlight = fields_in(named, "pfn")
    npages, max_order = state["npages"], state["max_order"]
    free, allocated = list(state["free"]), list(state["allocated"])
    counts = [0] * max_order
    for b in state["free_area"]:
        if 0 <= b.order < max_order:
            counts[b.order] += 1
    lines = [
        f"npages={npages} max_order={max_order} free_pages={state['free_pages']}",
        "buddyinfo: Node 0, zone   Normal " + "".join(f"{c:6d} " for c in counts).rstrip(),
    ]
    blocks = sorted(
        [(b.pfn, b.order, "free") for b in free]
        + [(b.pfn, b.order, "allocated") for b in allocated]
    )
    if not blocks:
        return lines + ["(no blocks)"]
    lines.append("blocks by pfn:")
    shown = blocks
    if len(blocks) > limit:
        keep = {i for i, (p, o, _) in enumerate(blocks) if highlight and p in highlight}
        keep |= set(range(limit // 2))
        shown = [b for i, b in enumerate(blocks) if i in keep][:limit]
    prev_end = None
    for pfn, order, kind in shown:
        end = pfn + (1 << order)
        note = ""
        if prev_end is not None and pfn < prev_end:
            note = "  <- overlaps the block above"
        elif prev_end is not None and pfn > prev_end:
            lines.append(f"  {prev_end:>7} .. {pfn:<7} (no block: pages lost)")
        if highlight and pfn in highlight:
            note = note or "  <-"
        lines.append(f"  {pfn:>7} .. {end:<7} {kind:<9} order {order}{note}")
        prev_end = max(prev_end or 0, end)
    if len(shown) < len(blocks):
        lines.append(f"  ... {len(blocks) - len(shown)} more blocks")
    elif prev_end is not None and prev_end < npages:
        lines.append(f"  {prev_end:>7} .. {npages:<7} (no block: pages lost)")
    return lines


# ---------------------------------------------------------------- symbolic


def symbolic_system(npages: int, mutation: str | None = None):  # noqa: ANN201
    """The Z3 encoding for a memory of `npages` pages, with MAX_ORDER just big enough
    for one block to span the largest power of two inside it. Returns
    (system, setup, integer universe, exponent bound)."""
    from mmcheck.checker.symbolic.buddy import SymbolicBuddy

    max_order = max(npages.bit_length(), 1)
    setup = {"npages": npages, "max_order": max_order}
    return SymbolicBuddy(npages, max_order, mutation), setup, range(0, npages + 1), max_order


# ---------------------------------------------------------------- contract coverage

# The classes the contract (docs/contract.md) names.
COVERAGE = (
    "operation: alloc", "operation: free",
    "outcome: alloc -> returned", "outcome: alloc -> none", "outcome: alloc -> ValueError",
    "outcome: free -> none", "outcome: free -> ValueError",
    *(f"boundary: alloc order {k}" for k in range(11)),
    "boundary: alloc order above log2(npages)", "boundary: alloc order max_order-1",
    "boundary: alloc order out of range",
    "boundary: free of an allocated block", "boundary: free with the wrong order",
    "boundary: free of a free block (double free)", "boundary: free of a pfn never returned",
    "boundary: free pfn outside memory",
    "boundary: npages 1", "boundary: npages a power of two",
    "boundary: npages not a power of two", "boundary: npages above 1024",
    "boundary: max_order below 11",
    "outcome: BuddyAllocator -> ValueError", "boundary: BuddyAllocator npages < 1",
    "boundary: BuddyAllocator max_order < 1",
)


def classify_setup(setup: Mapping[str, int]) -> list[str]:
    """npages 1, a power of two or not, above 1024; max_order below 11."""
    n = setup["npages"]
    out = ["boundary: npages 1" if n == 1 else
           "boundary: npages a power of two" if n & (n - 1) == 0 else
           "boundary: npages not a power of two"]
    if n > 1024:
        out.append("boundary: npages above 1024")
    if setup["max_order"] < 11:
        out.append("boundary: max_order below 11")
    return out


def classify_step(step: Step, old: Mapping[str, Any], new: Mapping[str, Any],
                  setup: Mapping[str, int]) -> list[str]:
    """The outcome, the order's place among the orders, what a free frees."""
    npages, max_order = setup["npages"], setup["max_order"]
    out = [coverage.outcome(step)]
    if step.op == NEW:  # a constructor step ([BUDDY-INIT-ARGS])
        if step.args[0] < 1:
            out.append("boundary: BuddyAllocator npages < 1")
        if step.args[1] < 1:
            out.append("boundary: BuddyAllocator max_order < 1")
        return out
    order = step.args[-1]
    if step.op == "alloc":
        if 0 <= order < max_order:
            out.append(f"boundary: alloc order {order}")
            if 1 << order > npages:
                out.append("boundary: alloc order above log2(npages)")
            if order == max_order - 1:
                out.append("boundary: alloc order max_order-1")
        else:
            out.append("boundary: alloc order out of range")
        return out
    pfn = step.args[0]
    allocated = {b.pfn: b.order for b in old["allocated"]}
    if not 0 <= pfn < npages:
        out.append("boundary: free pfn outside memory")
    elif allocated.get(pfn) == order:
        out.append("boundary: free of an allocated block")
    elif pfn in allocated:
        out.append("boundary: free with the wrong order")
    elif any(b.pfn == pfn for b in old["free"]):
        out.append("boundary: free of a free block (double free)")
    else:
        out.append("boundary: free of a pfn never returned")
    return out
