"""Mutation score of the standard library: how many wrong models do the specs convict?

    python -m bench.mutation                  every subsystem, up to 40 mutants each
    python -m bench.mutation --only buddy --per 10
    python -m bench.mutation --report         print the recorded results as markdown
    python -m bench.mutation --only slab --unmutated   the unmutated model as a submission
    python -m bench.mutation --examples       the buggy examples' counterexamples, their
                                              length before and after the trace minimiser
                                              (--only fault,vma: those subsystems' examples)

Each mutant is the reference model of one subsystem (model/*.py) with ONE small
change, made by an AST transformer of our own (mutmut and cosmic-ray run a test
suite per mutant in their own process layout; here a mutant must become a
*submission*, so generating source is all that is needed):

    operator     + and -, * and //, << and >>, & and |, and/or swapped; `not` dropped
    comparison   == and !=, in and not in, is and is not, < and >= (the negation)
    off-by-one   < and <=, > and >= (the boundary), an integer constant +1 or -1
    constant     an integer constant made 0 (or 1), True and False swapped
    statement    one statement of a function body replaced by `pass`

Only lines the reference model runs when driven by the subsystem's own step
generator are mutated (a line never run can only give an equivalent mutant;
how many sites that leaves out is reported), and never the code that builds
the spec's view of the state (snapshot*, the vocabulary). Mutants are sampled
deterministically (a fixed seed per subsystem). Each one is written as the
mutated module plus a wrapper that exposes only the contract class, and run
through `mmcheck check --impl WRAPPER` with the default effort, one at a time,
niced. Killed: exit 1 (a counterexample). Survived: exit 0. Anything else is
recorded as it is. Results go to bench/mutation-results.json.
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "mutation-results.json"

# subsystem -> (model file, contract class)
TARGETS = {
    "buddy": ("model/buddy.py", "BuddyAllocator"),
    "vma": ("model/vma.py", "AddressSpace"),
    "pagetable": ("model/mmu.py", "PageTable"),
    "fault": ("model/fault.py", "Kernel"),
    "slab": ("model/slab.py", "KmemCache"),
    "kmalloc": ("model/kmalloc.py", "Kmalloc"),
}
SKIP_FUNCTIONS = ("snapshot", "_snapshot", "__repr__", "__str__", "__eq__", "__hash__")

_SWAP_BIN: dict[type, type] = {
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.FloorDiv, ast.FloorDiv: ast.Mult,
    ast.LShift: ast.RShift, ast.RShift: ast.LShift, ast.BitAnd: ast.BitOr,
    ast.BitOr: ast.BitAnd, ast.BitXor: ast.BitOr, ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult,
}
_NEGATE: dict[type, type] = {
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In,
    ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.Lt: ast.GtE, ast.GtE: ast.Lt,
    ast.Gt: ast.LtE, ast.LtE: ast.Gt,
}
_BOUNDARY: dict[type, type] = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE,
                               ast.GtE: ast.Gt}


@dataclass(frozen=True)
class Site:
    """One mutation: the node (by its index in ast.walk order) and what replaces it."""

    index: int
    kind: str  # operator | comparison | off-by-one | constant | statement
    line: int
    what: str  # in words: "line 120: < -> <="
    variant: str  # how to mutate the node (see _mutate)


def _functions(tree: ast.Module) -> Iterator[ast.FunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and not node.name.startswith(SKIP_FUNCTIONS):
            yield node


def _docstring(node: ast.AST) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(
        node.value.value, str)


def sites(source: str) -> list[Site]:
    """Every mutation this transformer can make inside the module's functions."""
    tree = ast.parse(source)
    inside: set[int] = set()
    for fn in _functions(tree):
        for stmt in fn.body:
            for node in ast.walk(stmt):
                inside.add(id(node))
    out: list[Site] = []
    for index, node in enumerate(ast.walk(tree)):
        if id(node) not in inside:
            continue
        line = getattr(node, "lineno", 0)
        for kind, what, variant in _variants(node):
            out.append(Site(index, kind, line, f"line {line}: {what}", variant))
    return out


def _op(op: ast.AST) -> str:
    return {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.FloorDiv: "//", ast.LShift: "<<",
            ast.RShift: ">>", ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^", ast.Mod: "%",
            ast.Pow: "**", ast.Eq: "==", ast.NotEq: "!=", ast.In: "in", ast.NotIn: "not in",
            ast.Is: "is", ast.IsNot: "is not", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">",
            ast.GtE: ">="}.get(type(op), type(op).__name__)


def _variants(node: ast.AST) -> Iterator[tuple[str, str, str]]:
    if isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in _SWAP_BIN:
        new = _SWAP_BIN[type(node.op)]()
        yield "operator", f"{_op(node.op)} -> {_op(new)}", "binop"
    elif isinstance(node, ast.BoolOp):
        yield "operator", "and <-> or", "boolop"
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield "operator", "`not` dropped", "not"
    elif isinstance(node, ast.Compare) and len(node.ops) == 1:
        op = type(node.ops[0])
        if op in _BOUNDARY:
            yield "off-by-one", f"{_op(node.ops[0])} -> {_op(_BOUNDARY[op]())}", "boundary"
        if op in _NEGATE:
            yield "comparison", f"{_op(node.ops[0])} -> {_op(_NEGATE[op]())}", "negate"
    elif isinstance(node, ast.Constant) and type(node.value) is bool:
        yield "constant", f"{node.value} -> {not node.value}", "bool"
    elif isinstance(node, ast.Constant) and type(node.value) is int:
        v = node.value
        yield "off-by-one", f"{v} -> {v + 1}", "plus1"
        if v != 0:
            yield "off-by-one", f"{v} -> {v - 1}", "minus1"
        if v not in (0, 1):
            yield "constant", f"{v} -> 0", "zero"
    if isinstance(node, ast.stmt) and not _docstring(node) and not isinstance(
            node, (ast.FunctionDef, ast.ClassDef, ast.Pass)):
        yield "statement", f"`{ast.unparse(node).splitlines()[0][:60]}` deleted", "delete"


def _mutate(node: ast.AST, variant: str) -> ast.AST:
    if variant == "binop":
        node.op = _SWAP_BIN[type(node.op)]()  # type: ignore[attr-defined]
    elif variant == "boolop":
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()  # type: ignore[attr-defined]
    elif variant == "not":
        return node.operand  # type: ignore[attr-defined]
    elif variant == "boundary":
        node.ops = [_BOUNDARY[type(node.ops[0])]()]  # type: ignore[attr-defined]
    elif variant == "negate":
        node.ops = [_NEGATE[type(node.ops[0])]()]  # type: ignore[attr-defined]
    elif variant == "bool":
        node.value = not node.value  # type: ignore[attr-defined]
    elif variant in ("plus1", "minus1", "zero"):
        v = node.value  # type: ignore[attr-defined]
        node.value = v + 1 if variant == "plus1" else v - 1 if variant == "minus1" else 0  # type: ignore[attr-defined]
    elif variant == "delete":
        return ast.copy_location(ast.Pass(), node)
    return node


def mutant_source(source: str, site: Site) -> str:
    tree = ast.parse(source)
    nodes = list(ast.walk(tree))
    target = nodes[site.index]
    copy_ = _mutate(copy.deepcopy(target) if site.variant in ("not",) else target, site.variant)
    if copy_ is not target:
        _replace(tree, target, copy_)
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"


def _replace(tree: ast.AST, old: ast.AST, new: ast.AST) -> None:
    for parent in ast.walk(tree):
        for name, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, name, new)
                return
            if isinstance(value, list) and any(v is old for v in value):
                setattr(parent, name, [new if v is old else v for v in value])
                return


# ---------------------------------------------------------------- which lines run


def executed_lines(subsystem: str, traces: int = 100) -> set[int]:
    """The model file's lines the reference runs when the step generator drives it
    for `traces` traces (no specs: only the operations, as a submission would run them)."""
    from mmcheck.checker import subsystems
    from mmcheck.checker.hypothesis_engine import run_hypothesis
    from mmcheck.checker.options import Options

    driver = subsystems.driver(subsystem)
    assert driver is not None
    path = str((REPO / TARGETS[subsystem][0]).resolve())
    lines: set[int] = set()

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename != path:
            return None if event == "call" else tracer
        if event == "line":
            lines.add(frame.f_lineno)
        return tracer

    sys.settrace(tracer)
    try:
        run_hypothesis([], driver, driver.ReferenceSystem,
                       Options(seed=0, traces=traces, traces_per_chunk=10))
    finally:
        sys.settrace(None)
    return lines


# ---------------------------------------------------------------- running mutants


@dataclass
class Result:
    subsystem: str
    kind: str
    what: str
    outcome: str  # killed | survived | error (exit 2/3) | timeout
    exit_code: int | None
    properties: list[str] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)  # each counterexample's trace, minimised
    found_steps: list[int] = field(default_factory=list)  # before the trace minimiser
    seconds: float = 0.0
    code: str = ""  # the mutated line of the model, as it read before the mutation
    cpu_seconds: float = 0.0  # user CPU of the check and its sandbox worker


def wrapper(directory: Path, subsystem: str, source: str) -> Path:
    """A submission package: the model's modules (a submission cannot import
    mmcheck in its sandbox), the target one mutated, and an __init__ exposing only
    the contract class (a model module imports other contract classes too)."""
    package = directory / f"mutant_{subsystem}"
    package.mkdir()
    target = Path(TARGETS[subsystem][0])
    for name in sorted(siblings(target.stem)):
        path = REPO / "model" / f"{name}.py"
        text = source if path.name == target.name else path.read_text()
        (package / path.name).write_text(text.replace("from mmcheck.model.", "from ."))
    cls = TARGETS[subsystem][1]
    (package / "__init__.py").write_text(
        f'"""A mutant of {target} (bench/mutation.py)."""\n\n'
        f"from .{target.stem} import {cls}\n\n__all__ = [{cls!r}]\n")
    return package


def siblings(stem: str) -> set[str]:
    """The model modules `stem` needs, itself included: the closure of its
    `from mmcheck.model.X import` lines. Only these go into a mutant's package,
    so a sibling that cannot load in the sandbox (another subsystem's module
    importing more of mmcheck) does not break every mutant."""
    need, todo = set(), [stem]
    while todo:
        name = todo.pop()
        if name in need:
            continue
        need.add(name)
        text = (REPO / "model" / f"{name}.py").read_text()
        todo += re.findall(r"^\s*from mmcheck\.model\.(\w+) import", text, re.M)
    return need


def run_mutant(subsystem: str, site: Site, source: str, timeout: float) -> Result:
    with tempfile.TemporaryDirectory(prefix="mmcheck-mutant-") as tmp:
        sub = wrapper(Path(tmp), subsystem, mutant_source(source, site))
        start, cpu = time.monotonic(), os.times().children_user
        code, report = check_json(sub, timeout)
        took = round(time.monotonic() - start, 1)
        cpu = round(os.times().children_user - cpu, 1)
    text = source.splitlines()[site.line - 1].strip()
    if code is None:
        return Result(subsystem, site.kind, site.what, "timeout", None, seconds=took, code=text,
                      cpu_seconds=cpu)
    out = Result(subsystem, site.kind, site.what,
                 {0: "survived", 1: "killed"}.get(code, "error"), code, seconds=took,
                 code=text, cpu_seconds=cpu)
    if report is None:
        return out
    for c in report["counterexamples"]:
        out.properties.append(c["property"])
        out.steps.append(len(c["trace"]["steps"]))
        out.found_steps.append(c.get("found_steps") or len(c["trace"]["steps"]))
    return out


def unmutated(subsystem: str, timeout: float) -> dict[str, Any]:
    """The reference model itself as a submission package, checked as a mutant is: its
    exit code (0 expected), steps, wall and CPU seconds: what one mutant's run costs."""
    with tempfile.TemporaryDirectory(prefix="mmcheck-mutant-") as tmp:
        sub = wrapper(Path(tmp), subsystem, (REPO / TARGETS[subsystem][0]).read_text())
        start, cpu = time.monotonic(), os.times().children_user
        code, report = check_json(sub, timeout)
        out = {"subsystem": subsystem, "exit_code": code,
               "seconds": round(time.monotonic() - start, 1),
               "cpu_seconds": round(os.times().children_user - cpu, 1),
               "load": os.getloadavg()[0]}
    if report is not None:
        out["steps"] = sum(e.get("steps", 0) for e in report["engines"])
    return out


def sample(subsystem: str, per: int) -> tuple[list[Site], int, int]:
    """Up to `per` sites on executed lines, chosen with a fixed seed; also how many
    sites there are in all and how many sit on lines the generator never runs."""
    source = (REPO / TARGETS[subsystem][0]).read_text()
    every = sites(source)
    ran = executed_lines(subsystem)
    live = [s for s in every if s.line in ran]
    rng = random.Random(f"mutation-{subsystem}")
    picked = sorted(rng.sample(live, min(per, len(live))), key=lambda s: (s.line, s.index))
    return picked, len(every), len(every) - len(live)


# Survivors reviewed as equivalent: (subsystem, the mutated line, the change) -> why no
# submission following docs/contract.md could tell the mutant from the reference.
_COUNTER = ("NR_FREE_PAGES (free_pages) of a submission is the pages its free_area() "
            "lists hold; the model's own counter is not observable")
_MERGE_LIKELY = ("buddy_merge_likely only chooses head or tail of a free list, a choice "
                 "the contract leaves open ([BUDDY-ALLOC-CHOICE])")
_MESSAGE = "only builds a ValueError's message (or the model's refinement helper)"
_DEBUG = ("SLUB debugging (red zones, poison, write()) is the reference's own: a "
          "submission is made without debug=, and the checker sends it no write(), so the "
          "line never runs in one (the sample takes lines the reference runs)")
_ARRAY_CACHE = ("the per-CPU array cache's size and refill (limit, batchcount): objects "
                "in it are free to the user and drained by shrink(), which ones alloc() "
                "returns is the implementation's choice ([SLAB-CHOICE])")
EQUIVALENT: dict[tuple[str, str, str], str] = {
    ("buddy", "self.mem_map.private[0:end:step] = bytes((top,)) * nr_top",
     "`self.mem_map.private[0:end:step] = bytes((top,)) * nr_top` deleted"):
        "struct page's private of the boot blocks is white-box, not observable",
    ("buddy", "self.mem_map.private[0:end:step] = bytes((top,)) * nr_top", "0 -> 1"):
        "struct page's private of the boot blocks is white-box, not observable",
    ("buddy", "self.free_pages += 1 << order", "`self.free_pages += 1 << order` deleted"):
        _COUNTER,
    ("buddy", "self.free_pages += 1 << order", "1 -> 0"): _COUNTER,
    ("buddy", 'self._check_order("free", order)', "`self._check_order('free', order)` deleted"):
        "the allocated-block check right after it refuses the same orders",
    ("buddy", "if found is None:  # unreachable while free and allocated blocks tile memory",
     "`if found is None:` deleted"): _MESSAGE,
    ("buddy", "return False", "`return False` deleted"): _MERGE_LIKELY,
    ("buddy", "return self._page_is_buddy(higher_pfn ^ (1 << (order + 1)), order + 1)",
     "`return self._page_is_buddy(higher_pfn ^ 1 << order + 1, orde` deleted"): _MERGE_LIKELY,
    ("buddy", "return self._page_is_buddy(higher_pfn ^ (1 << (order + 1)), order + 1)",
     "1 -> 2"): _MERGE_LIKELY,
    ("buddy", "if mm.buddy[head] and mm.private[head] == order:",
     "`if mm.buddy[head] and mm.private[head] == order:` deleted"):
        "block_containing: " + _MESSAGE,
    ("buddy", "return False, Block(head, order)", "False -> True"):
        "block_containing: " + _MESSAGE,
    ("vma", "if not (page_aligned(task_size) and task_size > 0):", "> -> >="):
        "a constructor check for a task_size no setup gives (a submission's own choice)",
    ("vma", "self.errno = 0  # the thread's errno, as the contract's calls leave it",
     "`self.errno = 0` deleted"): "the errno attribute is set by every failing call first",
    ("vma", "self.on_protect: Listener | None = None", "| -> &"): "an annotation",
    ("vma", "dup_anon_vma(prev, next_ if next_.anon_vma is not None else middle)",
     "is not -> is"): "anon_vma bookkeeping: no contract operation shows it",
    ("vma", "if length > self.task_size:", "`if length > self.task_size:` deleted"):
        "the range check after it refuses the same lengths with the same errno",
    ("vma", "if end < vma.vm_end and self.map_count >= self.max_map_count:", "< -> <="):
        "map_count against max_map_count (65530): no trace of the contract reaches it",
    ("vma", "self.map_count -= len(detached)", "- -> +"):
        "map_count against max_map_count (65530): no trace of the contract reaches it",
    ("vma", "self.map_count += 1", "1 -> 2"):
        "map_count against max_map_count (65530): no trace of the contract reaches it",
    ("pagetable", "return _LOW_FLAGS | (_PAGE_NX if self.has_nx else 0)", "0 -> 1"):
        "the NX bit of flag_mask: PTE flags beyond the contract's are not compared",
    ("pagetable", "return linear | ((1 << 64) - (1 << mode.va_bits))", "64 -> 63"):
        "_canonical builds only the white-box view a submission does not show",
    ("pagetable", "return linear | ((1 << 64) - (1 << mode.va_bits))", "64 -> 0"):
        "_canonical builds only the white-box view a submission does not show",
    ("pagetable", "if pfn in self._tables or not 0 <= pfn < 1 << self.mode.pfn_bits:",
     "and <-> or"): "a defensive check against a broken `pages` allocator",
    ("pagetable", "pfn = self._alloc_table(table.level - 1)", "1 -> 0"):
        "a table's level label, not observable",
    ("pagetable", "for depth in range(len(path) - 1, 0, -1):", "1 -> 2"):
        "not freeing the last empty table: freeing empty tables is the implementation's "
        "choice (docs/contract.md)",
    ("pagetable", "eff = _PAGE_PRESENT | _PAGE_ACCESSED | _PAGE_RW | _PAGE_USER", "| -> &"):
        "_effective builds only the white-box view",
    ("pagetable", "all(e & _PAGE_PRESENT for e in walk),", "& -> |"):
        "_snapshot_ptes builds only the white-box view",
    ("pagetable", "visit(pte_pfn(entry), depth + 1, linear, walk)", "1 -> 2"):
        "_snapshot_ptes builds only the white-box view",
    ("fault", "return PAGE_COPY_EXEC if prot & PROT_EXEC else PAGE_COPY", "& -> |"):
        "the exec bit of a PTE's protection: the contract has no instruction fetch",
    ("fault", "self._next_pid = 1", "1 -> 2"):
        "which pid spawn returns is the implementation's choice; the checker follows it",
    ("fault", "return cache, vma.vm_pgoff + ((va - vma.vm_start) >> PAGE_SHIFT)", ">> -> <<"):
        "the page-cache index of a shared page: another key, still one page per index",
    ("fault", "prot = vm_get_page_prot(vma.prot, True)", "True -> False"):
        "a shared fault ORs in the write bit anyway",
    ("fault", "pte_off = (va >> PAGE_SHIFT) % PTRS_PER_PTE", ">> -> <<"):
        "fault-around's window: which untouched shared pages are premapped is not fixed "
        "by the contract",
    ("fault", "from_pte = max(pte_off - pte_off % FAULT_AROUND_PAGES, pte_off - min(pte_off, "
     "vma_off))", "- -> +"):
        "fault-around's window: which untouched shared pages are premapped is not fixed "
        "by the contract",
    ("fault", "shared = i >= 0 and va < areas[i][1] and bool(areas[i][3] & MAP_SHARED)",
     ">= -> >"): "_mappings of the white-box view",
    ("kmalloc", "while PAGE_SIZE << order < size:", "< -> <="):
        "kmalloc_large takes one order more for a size of exactly 2**k pages: a usable "
        "size of 2 * size, within the contract's max(32, 2 * size) ([KMALLOC-ALLOC])",
    ("kmalloc", "held = {addr // PAGE_SIZE: order for addr, order in self.large.items()}",
     "`held = {addr // PAGE_SIZE: order for addr, order in self.lar` deleted"):
        "Kmalloc.holds() builds the reference's own view of its blocks; a submission's "
        "are read from the checker's audited `pages` (checker/subsystems/kmalloc.py)",
    ("slab", "if nr_objs > 0 and slab_mgmt_size(nr_objs, align) + nr_objs * objsize > "
     "slab_size:", "+ -> -"):
        "cache_estimate's decrement never fires in this model: for every on-slab object "
        "size (below 512 bytes), alignment and order 0 to 10, (slab_size - 32) // "
        "(objsize + 4) objects and their aligned management fit (checked exhaustively)",
    ("slab", "if objsize > 256:", "> -> >="): _ARRAY_CACHE,
    ("slab", "if objsize > 1024:", "`if objsize > 1024:` deleted"): _ARRAY_CACHE,
    ("slab", "if not ac.touched and batchcount > BATCHREFILL_LIMIT:", "and <-> or"):
        _ARRAY_CACHE,
    ("slab", "l3.free_touched = True", "True -> False"):
        "free_touched only tells cache_reap (not modelled) to spare the free slabs",
    ("slab", "batchcount -= 1", "`batchcount -= 1` deleted"): _ARRAY_CACHE,
    ("slab", "if ac.avail >= ac.limit:  # __cache_free", "`if ac.avail >= ac.limit:` deleted"):
        _ARRAY_CACHE,
    ("slab", "if l3.free_objects > l3.free_limit:", "> -> <="):
        "when a completely free slab goes back to `pages` outside shrink() (free_limit) is "
        "the implementation's choice: [SLAB-SHRINK] and [SLAB-INFO] hold either way",
    ("slab", "self.l3.free_objects -= self.num",
     "`self.l3.free_objects -= self.num` deleted"):
        "l3.free_objects is the reference's own counter (white-box); it only moves the "
        "free_limit at which a free slab goes back outside shrink(), the implementation's "
        "choice",
    ("slab", "assert slab is not None", "is not -> is"): _DEBUG,
    ("slab", "off = addr - slab.start", "`off = addr - slab.start` deleted"): _DEBUG,
    ("slab", 'in_slab = {"live": dict.fromkeys(self.slabs, 0), "cached": '
     'dict.fromkeys(self.slabs, 0)}', "0 -> 1"):
        "white_box() builds the reference's own view (mgmt records); the checker never "
        "calls it on a submission",
    ("slab", "n += 1", "`n += 1` deleted"):
        "_chain_length walks a slab's free chain for white_box() (the wb_free_chain "
        "property), which the checker never calls on a submission",
    ("fault", "self._unmapped_files.clear()", "`self._unmapped_files.clear()` deleted"):
        "_release_files skips a file still mapped and finds no page cache left of one "
        "released before: the set only grows, nothing observable changes",
}


def change_of(what: str) -> str:
    """"line 120: < -> <=" -> "< -> <=" (the change, without the line number)."""
    return what.split(": ", 1)[1] if ": " in what else what


def equivalent(m: dict[str, Any]) -> str | None:
    """Why a recorded survivor is equivalent, if it was reviewed as such."""
    return EQUIVALENT.get((m["subsystem"], m.get("code", ""), change_of(m["what"])))


def survivors(subsystem: str, data: dict[str, Any], timeout: float) -> None:
    """Run the recorded survivors and timeouts of `subsystem` again (after the specs
    or generators changed), in place; equivalent ones are left as they are."""
    source = (REPO / TARGETS[subsystem][0]).read_text()
    lines = source.splitlines()
    by_code = {(lines[s.line - 1].strip(), change_of(s.what)): s for s in sites(source)}
    rows = data[subsystem]["mutants"]
    for n, m in enumerate(rows):
        if m["outcome"] not in ("survived", "timeout") or equivalent(m):
            continue
        site = by_code.get((m.get("code", ""), change_of(m["what"])))
        if site is None:  # the model changed there since: sample again instead
            print(f"{subsystem}: {m['what']} no longer matches the model; skipped")
            continue
        r = asdict(run_mutant(subsystem, site, source, timeout))
        print(f"{subsystem} again {r['outcome']:8} {r['what']} {r['properties'][:2]}",
              flush=True)
        rows[n] = r


def main(argv: list[str] | None = None) -> int:
    global RESULTS
    ap = argparse.ArgumentParser(prog="python -m bench.mutation")
    ap.add_argument("--only", default=",".join(TARGETS))
    ap.add_argument("--per", type=int, default=40)
    ap.add_argument("--timeout", type=float, default=180.0)
    ap.add_argument("--report", action="store_true")
    ap.add_argument("--examples", action="store_true")
    ap.add_argument("--unmutated", action="store_true",
                    help="check the reference model itself as a submission (what a mutant "
                         "run costs): exit code, steps, wall and CPU seconds")
    ap.add_argument("--reuse", action="store_true",
                    help="keep the recorded results of mutants sampled again (a larger --per "
                         "draws the smaller one's mutants first)")
    ap.add_argument("--survivors", action="store_true",
                    help="run the recorded survivors of --only again")
    ap.add_argument("--results", default=str(RESULTS),
                    help="the results file (another one for a run beside a running one)")
    args = ap.parse_args(argv)
    RESULTS = Path(args.results)
    if args.unmutated:
        for subsystem in args.only.split(","):
            print(unmutated(subsystem, args.timeout), flush=True)
        return 0
    if args.examples:
        picked = set(args.only.split(",")) if args.only != ",".join(TARGETS) else None
        return examples(args.timeout, picked)
    if args.report:
        print(render(json.loads(RESULTS.read_text())))
        return 0
    data: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if args.survivors:
        for subsystem in args.only.split(","):
            survivors(subsystem, data, args.timeout)
            RESULTS.write_text(json.dumps(data, indent=1) + "\n")
        print(render(data))
        return 0
    for subsystem in args.only.split(","):
        picked, total, unreached = sample(subsystem, args.per)
        source = (REPO / TARGETS[subsystem][0]).read_text()
        done = {(m["what"], m.get("code", "")): m for m in data.get(subsystem, {}).get(
            "mutants", []) if args.reuse and m["outcome"] != "timeout"}
        results = []
        for n, site in enumerate(picked, 1):
            key = (site.what, source.splitlines()[site.line - 1].strip())
            if key in done:  # the same mutant of the same model, finished before
                results.append(done[key])
                continue
            r = run_mutant(subsystem, site, source, args.timeout)
            results.append(asdict(r))
            print(f"{subsystem} {n}/{len(picked)} {r.outcome:8} {r.kind:10} {r.what} "
                  f"{r.properties[:2]} steps={r.steps}", flush=True)
        data[subsystem] = {"sites": total, "unreached_sites": unreached,
                           "mutants": results, "load": os.getloadavg()[0]}
        RESULTS.write_text(json.dumps(data, indent=1) + "\n")
    print(render(data))
    return 0


def check_json(impl: Path, timeout: float) -> tuple[int | None, dict[str, Any] | None]:
    """`mmcheck check --impl` with the default effort: its exit code and JSON report."""
    cmd = [sys.executable, "-m", "mmcheck.checker.cli", "check", "--impl", str(impl),
           "--format", "json", "--save", "", "--seed", "0"]
    try:
        done = subprocess.run(["nice", "-n", "10", *cmd], capture_output=True, text=True,
                              timeout=timeout, cwd=REPO)
    except subprocess.TimeoutExpired:
        return None, None
    try:
        (report,) = json.loads(done.stdout)["reports"]
    except (ValueError, KeyError, TypeError):
        return done.returncode, None
    return done.returncode, report


def examples(timeout: float, only: set[str] | None = None) -> int:
    """The buggy examples (of the subsystems in `only`, or all): their counterexamples'
    steps before and after the minimiser. Rows of other examples recorded before are
    kept; the summary is over every recorded row, and over this run's rows."""
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    kept = {r["example"]: r for r in data.get("_examples", {}).get("rows", [])}
    rows = []
    for path in sorted((REPO / "examples").glob("*/buggy/*.py")):
        if only is not None and path.parent.parent.name not in only:
            continue
        start, cpu = time.monotonic(), os.times()
        code, report = check_json(path, timeout)
        cxs = report["counterexamples"] if report else []
        row = {"example": str(path.relative_to(REPO)), "exit_code": code,
               "steps": [len(c["trace"]["steps"]) for c in cxs],
               "found_steps": [c.get("found_steps") or len(c["trace"]["steps"]) for c in cxs],
               "seconds": round(time.monotonic() - start, 1),
               "cpu_seconds": round(os.times().children_user - cpu.children_user, 1),
               "load": os.getloadavg()[0]}
        rows.append(row)
        kept[row["example"]] = row
        print(row, flush=True)
    data["_examples"] = {"rows": sorted(kept.values(), key=lambda r: r["example"]),
                         "summary": lengths(list(kept.values())), "this_run": lengths(rows)}
    RESULTS.write_text(json.dumps(data, indent=1) + "\n")
    print(data["_examples"]["this_run"])
    return 0


def lengths(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """How many counterexamples the rows hold, and their steps after and before the
    minimiser: max and median."""
    steps = [n for r in rows for n in r["steps"]]
    found = [n for r in rows for n in r["found_steps"]]
    return {"examples": len(rows), "counterexamples": len(steps),
            "after": {"max": max(steps, default=0),
                      "median": statistics.median(steps) if steps else 0},
            "before": {"max": max(found, default=0),
                       "median": statistics.median(found) if found else 0}}


def render(data: dict[str, Any]) -> str:
    """The kill rate per subsystem and the survivors, as docs/benchmarks.md shows them."""
    out = ["| subsystem | mutants | killed | exit 2 | timeout | survived | equivalent "
           "| kill rate of non-equivalent | sites (unreached) |",
           "|---|---|---|---|---|---|---|---|---|"]
    steps: list[int] = []
    found: list[int] = []
    subsystems = {k: v for k, v in data.items() if not k.startswith("_")}
    for sub, d in subsystems.items():
        ms = d["mutants"]
        k = sum(m["outcome"] == "killed" for m in ms)
        e = sum(m["outcome"] == "error" for m in ms)
        t = sum(m["outcome"] == "timeout" for m in ms)
        s = sum(m["outcome"] == "survived" for m in ms)
        # reviewed equivalent: survived, or timed out (a survivor runs the whole budget)
        eq = sum(m["outcome"] in ("survived", "timeout") and bool(equivalent(m)) for m in ms)
        # exit 2 (a constructor that raises on a valid setup) is a mutant caught;
        # a timeout is counted as not killed
        caught, live = k + e, k + e + t + s - eq
        rate = f"{caught}/{live} = {100 * caught / max(live, 1):.0f}%"
        n = f"{len(ms)}" if len(ms) >= d.get("planned", 0) else f"{len(ms)} of {d['planned']}"
        unreached = "?" if d["unreached_sites"] is None else d["unreached_sites"]
        out.append(f"| {sub} | {n} | {k} | {e} | {t} | {s} | {eq} | {rate} | "
                   f"{d['sites']} ({unreached}) |")
        for m in ms:
            steps += m["steps"]
            found += m["found_steps"]
    if steps:
        out.append("")
        out.append(f"counterexamples of killed mutants: {len(steps)}; steps after the "
                   f"minimiser: max {max(steps)}, median {statistics.median(steps):g}; "
                   f"before it: max {max(found)}, median {statistics.median(found):g}")
    out.append("")
    if "_examples" in data:
        e = data["_examples"]["summary"]
        out.append(f"counterexamples of the buggy examples: {e['counterexamples']} from "
                   f"{e['examples']} examples; steps after the minimiser: max "
                   f"{e['after']['max']}, median {e['after']['median']:g}; before it: max "
                   f"{e['before']['max']}, median {e['before']['median']:g}")
        out.append("")
    out.append("survivors:")
    for sub, d in subsystems.items():
        for m in d["mutants"]:
            if m["outcome"] in ("killed", "error"):
                continue
            why = equivalent(m)
            verdict = (f"equivalent ({m['outcome']}): {why}" if why
                       else f"NOT killed ({m['outcome']})")
            out.append(f"- {sub} {m['what']} `{m.get('code', '')[:70]}`: {verdict}")
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())
