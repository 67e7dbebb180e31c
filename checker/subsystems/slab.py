"""The slab cache (KmemCache) as the engines see it: setups, steps, systems, pictures.

Setups vary what students get wrong: object sizes that are not a multiple of
the alignment, alignments from 1 to past a page, objects large enough that
management goes off the slab or that need several pages, and page allocators
so small that `pages` runs out. Steps allocate one or many objects, free them
one by one or all in a shuffled order (slabs empty, fill and empty again),
shrink, destroy, and take the contract's error paths: a double free, an
interior pointer, an address never returned, every call after destroy().

A cache takes its slabs from `pages`, the checker's audited buddy allocator
(checker/sandbox/pages.py, over the reference BuddyAllocator): it records
every block given and given back, refuses a free_pages of a block not held,
reuses freed blocks as the buddy allocator does, and runs out when the
setup's `npages` are taken. What a spec sees of a submission is what the
contract fixes: the blocks it holds (that audit), the objects it handed out
and did not get back (the checker's record), the row its slabinfo() reports,
and the page requests of the last step. Which object alloc() returns, which
order its slabs have and where in a slab its objects start are its own
choices; the spec demands only what the contract says of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import strategies as st
from mmcheck.checker import coverage
from mmcheck.checker.formats.pictures.slab import (  # render_svg: the HTML picture
    addresses_named,
    caption,
    render_svg,  # noqa: F401
    render_text,
)
from mmcheck.checker.subsystems._vm import (
    construct,
    construct_refused,
    convert,
    pick,
    plain_int,
    raises_of,
    returns_of,
)
from mmcheck.checker.subsystems.declared.slab import DECLARATION
from mmcheck.checker.systems import ModelSystem, Problem, SandboxedSystem
from mmcheck.checker.trace import Step
from mmcheck.model.buddy import BuddyAllocator
from mmcheck.model.linux import PAGE_SIZE
from mmcheck.model.slab import (
    ALIGN,
    VOCABULARY,
    ZERO_INFO,
    KmemCache,
    PageEvent,
    SlabInfo,
    holding_slab,
    make_snapshot,
)

# A constructor step, named after the class: KmemCache(name, size, align, pages) made
# (and dropped) beside the cache under test; not an operation of the vocabulary.
NEW = DECLARATION.contract_class
ALLOWED = raises_of(VOCABULARY)
RETURNS = returns_of(VOCABULARY)
CACHE_NAME = "mmcheck-cache"
_WHITE = "no: the reference's own structure (white-box properties are not observable)"
WHITE_BOX_NAMES = frozenset(("mgmt", "num", "gfporder", "colour", "colour_off", "slab_size",
                             "free_objects", "nr_partial", "array_limit", "cached", "debug",
                             "debug_broken"))
SUBMISSION_VIEW = {
    "size": "own: the constructor's argument", "align": "own: the constructor's argument",
    "objsize": "the contract's: size rounded up to align",
    "npages": "own: the size of the `pages` allocator it was given",
    "destroyed": "own: destroy() returned",
    "slabs": "own: the blocks it holds from the checker's audited `pages`; s_mem the first "
             "slot its live objects imply, inuse counted from them",
    "objects": "own: the addresses alloc() returned and free() has not taken back",
    "info": "own: its slabinfo() after each step",
    "page_events": "own: the audit of its calls to `pages` in the last step",
    "bad_page_frees": "own: the audit of its calls to `pages`",
    **dict.fromkeys(WHITE_BOX_NAMES, _WHITE),
}


def hidden_names(sub: Any) -> frozenset[str]:
    """What no KmemCache submission shows: the reference's own structures."""
    return WHITE_BOX_NAMES

SIZES = (32, 1000, 100, 8, 13, 200, 4096, 64, 512, 3000, 24, 1, 5000, 250)
ALIGNS = (8, 64, 16, 1, 4, 128, 4096, 8192)
NPAGES = (64, 2, 4, 1, 16, 256)


def setups(max_pages: int = 5000) -> st.SearchStrategy[dict[str, int]]:
    """Object size, alignment, pages for `pages`, and (reference only) SLUB debugging.
    Word alignment and a roomy `pages` half the time: most bugs show there first."""
    npages = [n for n in NPAGES if n <= max(max_pages, 2)]
    return st.fixed_dictionaries({
        "size": st.sampled_from(SIZES),
        "align": st.one_of(st.just(8), st.sampled_from(ALIGNS)),
        "npages": st.one_of(st.just(npages[0]), st.sampled_from(npages)),
        "debug": st.sampled_from([0, 1]),
    })


class View:
    """What the step generator knows: the live objects, recently freed ones, and
    how many calls were made after a destroy() that returned."""

    def __init__(self, setup: Mapping[str, int]) -> None:
        self.objsize = ALIGN(setup["size"], setup["align"])
        self.size, self.align = setup["size"], setup["align"]
        self.debug = bool(setup.get("debug"))
        self.live: list[int] = []
        self.freed: list[int] = []
        self.dead_calls: int | None = None  # None while the cache is not destroyed

    def record(self, step: Step) -> None:
        if self.dead_calls is not None:
            self.dead_calls += 1
            return
        if step.raised is not None:
            return
        if step.op == "destroy":
            self.dead_calls = 0
        if step.op == "alloc" and plain_int(step.result) and step.result not in self.live:
            self.live.append(step.result)
        elif step.op == "free" and step.args[0] in self.live:
            self.live.remove(step.args[0])
            self.freed = (self.freed + [step.args[0]])[-8:]


def draw_steps(data: st.DataObject, view: View) -> list[tuple[str, tuple[int, ...]]]:
    """The next operation(s): a kind, then at most one pick (see _vm.pick). After a
    destroy() that returned, every call once ([SLAB-DESTROY]: each must raise), then
    nothing: more calls on a dead cache would only spend the trace's budget."""
    if view.dead_calls is not None:
        return dead_calls(view) if view.dead_calls == 0 else []
    # Repeats weight the draw; the first kinds are where shrinking goes. destroy()
    # ends a trace's interesting life, so it is drawn rarely (1 in 12 draws: about
    # 12 draws of a live cache first, and a destroy in 97% of 40-draw traces).
    kinds = ["alloc_run", "free", "bad_free", "alloc", "free_run", "shrink", "alloc_run",
             "free", "bad_free", "free_run"] * 2 + ["teardown", "destroy"]
    if view.debug:
        kinds += ["write", "write"]
    if not view.live:
        kinds = [k for k in kinds if k not in ("free", "free_run", "write")]
    kind = data.draw(st.sampled_from(kinds), label="kind")
    if kind == "alloc":
        return [("alloc", ())]
    if kind == "alloc_run":
        (n,) = pick(data, "count", (3, 8, 20, 60))
        return [("alloc", ())] * n
    if kind == "shrink":
        return [("shrink", ())]
    if kind == "destroy":
        return [("destroy", ())]
    if kind == "teardown":
        # Free everything and destroy; the calls after it come with the next draw.
        return [("free", (a,)) for a in view.live] + [("destroy", ())]
    if kind == "free":
        (addr,) = pick(data, "addr", view.live)
        return [("free", (addr,))]
    if kind == "free_run":
        # Free the objects in a shuffled order: slabs go partial, then free.
        order = data.draw(st.permutations(view.live[-40:]), label="objects")
        return [("free", (a,)) for a in order] + [("shrink", ())]
    if kind == "write":
        addr, length = pick(data, "addr, length", view.live, (view.size, 1))
        return [("write", (addr, length))]
    return _bad_address(data, view)


def dead_calls(view: View) -> list[tuple[str, tuple[int, ...]]]:
    """Every operation once on a destroyed cache: alloc, a free of an object it
    handed out, shrink, destroy again."""
    return [("alloc", ()), ("free", ((view.live or view.freed or [PAGE_SIZE])[0],)),
            ("shrink", ()), ("destroy", ())]


def refused(size: int, align: int) -> bool:
    """docs/contract.md [SLAB-INIT-ARGS]: these arguments make no cache."""
    return size < 1 or align < 1 or bool(align & (align - 1))


def bad_args(view: View) -> list[tuple[int, int]]:
    """(size, align) the contract refuses, beside this setup's valid ones."""
    size, align = view.size, view.align
    return [(0, align), (size, 0), (size, 3), (-1, align), (size, 24), (size, -8)]


def _bad_address(data: st.DataObject, view: View) -> list[tuple[str, tuple[int, ...]]]:
    """Frees free() must refuse: the same object twice, a pointer inside a live
    object, an address freed before, one never returned; or (now and then) a
    cache made with arguments the contract refuses."""
    if data.draw(st.integers(0, 3), label="constructor") == 3:
        return [(NEW, data.draw(st.sampled_from(bad_args(view)), label="args"))]
    targets = view.live or view.freed or [PAGE_SIZE]
    how, addr = pick(data, "how, addr", ("twice", "interior", "freed", "never"), targets)
    if how == "twice" and addr in view.live:
        return [("free", (addr,)), ("free", (addr,))]
    if how == "interior" and view.objsize > 1:
        return [("free", (addr + view.objsize // 2,))]
    if how == "freed" and view.freed:
        return [("free", (view.freed[-1],))]
    return [("free", (addr + 7 * PAGE_SIZE + 8,))]


# ---------------------------------------------------------------- systems


def page_events_since(pages: Any, since: int) -> list[PageEvent]:
    """The audit's records from index `since` on, as the vocabulary's PageEvents."""
    return [PageEvent(0 if e.op == "alloc" else 1,
                      e.pfn if plain_int(e.pfn) else -1,
                      e.order if plain_int(e.order) else -1,
                      e.error is None)
            for e in pages.events[since:]]


def _audited(npages: int) -> Any:
    from mmcheck.checker.sandbox.pages import AuditedPages

    return AuditedPages(BuddyAllocator(npages))


class ReferenceSystem(ModelSystem):
    """The reference KmemCache over an audited reference buddy allocator."""

    def __init__(self, setup: Mapping[str, int]) -> None:
        self.npages = setup["npages"]
        self.pages = _audited(self.npages)
        self.model = KmemCache(CACHE_NAME, setup["size"], setup["align"], self.pages,
                               debug=bool(setup.get("debug")))
        self.last: list[PageEvent] = []

    def apply(self, op: str, args: tuple[int, ...], expect: Step | None = None
              ) -> tuple[Step, Problem | None]:
        since = len(self.pages.events)
        if op == NEW:
            self.last = []
            try:
                KmemCache(CACHE_NAME, *args, _audited(1))
            except ValueError:
                return Step(op, args, None, "ValueError"), None
            return Step(op, args, None, None), None
        try:
            result = getattr(self.model, op)(*args)
        except ValueError:
            self.last = page_events_since(self.pages, since)
            return Step(op, args, None, "ValueError"), None
        self.last = page_events_since(self.pages, since)
        return Step(op, args, result, None), None

    def snapshot(self) -> Mapping[str, Any]:
        return self.model.snapshot(self.last, len(self.pages.refused()), self.npages,
                                   held=dict(self.pages.held))


class SubmissionSystem(SandboxedSystem):
    """A submission's KmemCache in its sandbox, watched through its `pages`.

    The checker keeps the record the spec reads: which objects are live,
    which blocks the cache holds (the audit), what slabinfo() said. A
    submission's own choices (the object, the order, the colour) are not
    compared with the reference: the spec checks them against the contract.
    """

    def __init__(self, sub: Any, setup: Mapping[str, int]) -> None:
        self.sub = sub
        self.size, self.align = setup["size"], setup["align"]
        self.objsize = ALIGN(self.size, self.align)
        self.npages = setup["npages"]
        self.pages = _audited(self.npages)
        self.live: dict[int, None] = {}
        self.s_mem: dict[int, int] = {}  # held block -> the first slot its objects imply
        self.info = ZERO_INFO
        self.last: list[PageEvent] = []
        self.destroyed = False
        self.handle = construct(sub, DECLARATION, CACHE_NAME, self.size, self.align,
                                sub.export(self.pages))
        out = sub.call(self.handle, "slabinfo")
        self.broken = self._read_slabinfo(out)

    def apply(self, op: str, args: tuple[int, ...], expect: Step | None = None
              ) -> tuple[Step, Problem | None]:
        if op == NEW:  # only arguments the contract refuses are tried
            self.last = []
            if not refused(*args):
                return Step(op, args, None, None), None
            return construct_refused(self.sub, DECLARATION, args, CACHE_NAME, *args,
                                     self.sub.export(_audited(1)), clause="[SLAB-INIT-ARGS]")
        if self.broken is not None:
            return Step(op, args, None, "crash"), self.broken
        since = len(self.pages.events)
        if op == "write":  # a user store: the checker sees no bytes of a submission
            self.last = []
            return Step(op, args, None, None), None
        calls = [(self.handle, op, args)]
        if not self.destroyed:
            calls.append((self.handle, "slabinfo", ()))
        outs = self.sub.call_many(calls)
        got = convert(op, args, outs[0], ALLOWED[op], RETURNS[op])
        self.last = page_events_since(self.pages, since)
        if got.problem is not None:
            return got.step, got.problem
        self._follow(got.step)
        if self.destroyed:
            self.info = ZERO_INFO
        elif len(outs) > 1:
            problem = self._read_slabinfo(outs[1])
            if problem is not None:
                return got.step, problem
        return got.step, None

    def _follow(self, step: Step) -> None:
        """Update the checker's record of live objects after a step."""
        if step.raised is not None:
            return
        if step.op == "alloc" and plain_int(step.result):
            self.live[step.result] = None
        elif step.op == "free":
            self.live.pop(step.args[0], None)
        elif step.op == "destroy":
            self.destroyed = True

    def _read_slabinfo(self, out: Any) -> Problem | None:
        if not out.returned:
            if out.crashed:
                return Problem("crash", f"slabinfo() {out.describe()}", ())
            return Problem("protocol", f"slabinfo() {out.describe()}",
                           ("the contract says slabinfo() returns the /proc/slabinfo row",))
        v = out.value
        fields = SlabInfo._fields
        if not isinstance(v, dict) or not all(plain_int(v.get(f)) for f in fields):
            return Problem("protocol", f"slabinfo() returned {v!r:.200}",
                           (f"the contract says: a dict with the integers {', '.join(fields)}",))
        self.info = SlabInfo(*(v[f] for f in fields))
        return None

    def _slots(self, held: dict[int, int]) -> dict[int, int]:
        """The first slot of each held block, as its first live object implies it."""
        self.s_mem = {pfn: s for pfn, s in self.s_mem.items() if pfn in held}
        for addr in self.live:
            pfn = holding_slab(held, addr)
            if pfn != -1 and pfn not in self.s_mem:
                start = pfn * PAGE_SIZE
                self.s_mem[pfn] = start + (addr - start) % self.objsize
        return self.s_mem

    def snapshot(self) -> Mapping[str, Any]:
        held = dict(self.pages.held)
        live = {a: holding_slab(held, a) for a in self.live}
        return make_snapshot(size=self.size, align=self.align, objsize=self.objsize,
                             npages=self.npages, destroyed=self.destroyed, held=held,
                             live=live, s_mem=self._slots(held), info=self.info,
                             page_events=self.last, bad_page_frees=len(self.pages.refused()))


# ---------------------------------------------------------------- pictures


def render_state(state: Mapping[str, Any], named: Sequence[Any] = (),
                 limit: int = 12) -> list[str]:
    """The cache and its slabinfo row, each slab as a row of its objects (the list it
    is on, its colouring offset: checker/formats/pictures/slab.py), the objects the
    explanation names with an arrow, broken red zones and poison, and the page calls
    of the last step."""
    highlight = addresses_named(named)
    lines = [caption(state), *render_text(state, highlight, limit)]
    objsize = state["objsize"]
    slabs = {s.pfn: s for s in state["slabs"]}
    for o in sorted(state["objects"]):
        if o.addr not in highlight:
            continue
        s = slabs.get(o.slab)
        where = (f"slot {(o.addr - s.s_mem) // objsize} of slab pfn {s.pfn} "
                 f"({s.start:#x}..{s.end:#x})" if s is not None else "in no held slab")
        past = s is not None and o.addr + objsize > s.end
        lines.append(f"  object {o.addr:#x}..{o.addr + objsize:#x}: {where}"
                     f"{' past its end' if past else ''}  <-")
    for d in sorted(state["debug_broken"])[:6]:
        what = "poison" if d.poison_bad else "red zone"
        lines.append(f"  debug: object {d.addr:#x} ({'live' if d.live else 'free'}): {what} "
                     f"broken ({d.poison_bad} poison byte(s), {d.redzone_bad} red-zone byte(s))")
    lost = sorted(o.addr for o in state["objects"] if o.slab == -1)
    if lost:
        lines.append("live objects in no held slab: " + ", ".join(f"{a:#x}" for a in lost[:6]))
    events = state["page_events"]
    if events:
        lines.append("pages this step: " + ", ".join(
            (f"alloc_pages({e.order}) -> {e.pfn if e.pfn != -1 else 'none'}" if e.op == 0 else
             f"free_pages({e.pfn}, {e.order}){'' if e.ok else ' REFUSED'}") for e in events))
    return lines


# ---------------------------------------------------------------- contract coverage

# The classes the contract (docs/contract.md, KmemCache) names.
COVERAGE = (
    *(f"operation: {op}" for op in ("alloc", "free", "shrink", "destroy", "write")),
    "outcome: alloc -> returned", "outcome: alloc -> none", "outcome: alloc -> ValueError",
    "outcome: free -> none", "outcome: free -> ValueError",
    "outcome: shrink -> returned", "outcome: destroy -> none", "outcome: destroy -> ValueError",
    "outcome: KmemCache -> ValueError",
    "boundary: free of a live object", "boundary: free of a pointer inside a live object",
    "boundary: free of a slot in a slab with no live object (double free)",
    "boundary: free of an address outside every slab",
    "boundary: shrink with completely free slabs", "boundary: shrink with none",
    "boundary: destroy with live objects", "boundary: a call after destroy()",
    "boundary: size not a multiple of align", "boundary: align above PAGE_SIZE",
    "boundary: objects larger than a page", "boundary: pages for one slab at most",
)


def classify_setup(setup: Mapping[str, int]) -> list[str]:
    """Sizes that need rounding, alignments past a page, big objects, scarce pages."""
    size, align = setup["size"], setup["align"]
    out = []
    if size % align:
        out.append("boundary: size not a multiple of align")
    if align > PAGE_SIZE:
        out.append("boundary: align above PAGE_SIZE")
    if ALIGN(size, align) > PAGE_SIZE:
        out.append("boundary: objects larger than a page")
    if setup["npages"] <= 2:
        out.append("boundary: pages for one slab at most")
    return out


def classify_step(step: Step, old: Mapping[str, Any], new: Mapping[str, Any],
                  setup: Mapping[str, int]) -> list[str]:
    """The outcome; what a free's address is (live object, inside one, a free slot,
    outside every slab); whether shrink had free slabs; destroy with live objects."""
    out = [coverage.outcome(step)]
    if old["destroyed"]:
        return out + ["boundary: a call after destroy()"]
    if step.op == "free":
        out.append(f"boundary: free of {_free_target(step.args[0], old)}")
    elif step.op == "shrink":
        empty = any(s.inuse == 0 for s in old["slabs"])
        out.append(f"boundary: shrink with {'completely free slabs' if empty else 'none'}")
    elif step.op == "destroy" and old["objects"]:
        out.append("boundary: destroy with live objects")
    return out


def _free_target(addr: int, old: Mapping[str, Any]) -> str:
    """What `addr` is in the state before a free."""
    objsize = old["objsize"]
    if any(o.addr == addr for o in old["objects"]):
        return "a live object"
    if any(o.addr < addr < o.addr + objsize for o in old["objects"]):
        return "a pointer inside a live object"
    if any(s.start <= addr < s.end for s in old["slabs"]):
        return "a slot in a slab with no live object (double free)"
    return "an address outside every slab"


# ---------------------------------------------------------------- symbolic

SYMBOLIC_SIZE = 1024  # four objects per page, management off the slab, one colour
# The largest pool on which the reference is encoded with its own structures (array
# cache, slab lists, free chains: the white-box names): Z3 proves their shape
# inductive there in seconds (at 4 pages the alloc step runs out of its rlimit). The
# declaration's symbolic_whole_pages: `mmcheck check --engine z3` checks the white-box
# properties there when the default size leaves them out.
WHITE_BOX_PAGES = DECLARATION.symbolic_whole_pages


def symbolic_system(npages: int, mutation: str | None = None):  # noqa: ANN201
    """The Z3 encoding of a cache of 1 KiB objects over `npages` pages, at most 13
    (the encoding's objects fit in one array cache; the setup says the size used),
    with the reference's white-box structures up to WHITE_BOX_PAGES pages (above, and
    for the mutations, the contract-level encoding: white-box properties are left
    out). Returns (system, setup, integer universe, exponent bound)."""
    from mmcheck.checker.symbolic.slab import SymbolicSlab

    npages = min(npages, SymbolicSlab.max_pages(SYMBOLIC_SIZE, 8))
    setup = {"size": SYMBOLIC_SIZE, "align": 8, "npages": npages, "debug": 0}
    white = mutation is None and npages <= WHITE_BOX_PAGES
    system = SymbolicSlab(SYMBOLIC_SIZE, 8, npages, mutation, white_box=white)
    return system, setup, range(0, npages + 1), system.geo.gfporder + 1
