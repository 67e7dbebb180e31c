"""Conformance: the reference model against the live kernel, on random operation lists.

`run_conformance(seed, ops)` generates `ops` operations in sequences of
`seq_len`, runs each sequence in a live child (`oracle.run_live`) and on the
model (`modelrun.run_model`), and compares them step by step: the result or
errno of every call, SIGSEGV or the byte read for every access, and the areas
inside the window after every step (with VM_ACCOUNT, VM_NORESERVE,
VM_WIPEONFORK and the protection key, which /proc/<pid>/smaps shows and which
decide merges). It stops at the first divergence.

Placements are fixed inside a small window (32 pages by default) so that
mappings collide, split and merge often; hints and MAP_FIXED_NOREPLACE
collisions are generated too (a hint that is not free lands outside the window
on both sides, and both record just that). Writes are frequent, so that areas
get anon_vmas, and forks are sprinkled in, so that areas inherit them.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from mmcheck.checker.live.modelrun import ModelSetup, run_model
from mmcheck.checker.live.ops import (
    MAP_DROPPABLE,
    MAP_NORESERVE,
    Divergence,
    Fork,
    Mmap,
    Mprotect,
    Munmap,
    Op,
    Read,
    StepRecord,
    Write,
    first_divergence,
)
from mmcheck.checker.live.oracle import LiveRun, run_live
from mmcheck.model.linux import (
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_FIXED_NOREPLACE,
    MAP_PRIVATE,
    MAP_SHARED,
    PAGE_SIZE,
    TASK_SIZE_X86_64,
)

P = PAGE_SIZE
ANON = MAP_ANONYMOUS
PROTS = tuple(range(8))
MAX_FORKS = 4


class OpGenerator:
    """Random window operations, weighted towards splits, merges and faults."""

    def __init__(self, rng: random.Random, window_pages: int, mmap_min_addr: int = 4096,
                 *, accesses: bool = True, forks: bool = True,
                 contract_only: bool = False) -> None:
        """`contract_only`: only what docs/contract.md specifies for AddressSpace (no
        faults, forks, hints whose placement is free to choose, MAP_DROPPABLE,
        MAP_NORESERVE, or prot bits the contract does not name), for submissions."""
        self.rng = rng
        self.w = window_pages
        self.mmap_min_addr = mmap_min_addr
        self.contract_only = contract_only
        self.accesses = accesses and not contract_only
        self.fork_ok = forks and not contract_only
        self.forks = 0

    def sequence(self, n: int) -> list[Op]:
        self.forks = 0
        self.writable: list[tuple[int, int]] = []  # recent RW mmaps: (page, pages)
        return [self.one() for _ in range(n)]

    def target(self) -> int:
        """A page to access: mostly inside a recent writable mapping (so that writes
        succeed and areas get anon_vmas), otherwise anywhere in the window."""
        if self.writable and self.rng.random() < 0.7:
            page, n = self.rng.choice(self.writable[-6:])
            return page + self.rng.randrange(n)
        return self.page()

    def remember(self, op: Mmap) -> Mmap:
        if op.prot & 2 and op.page is not None and op.absolute is None:
            self.writable.append((op.page, max(1, -(-op.length // P))))
        return op

    def page(self) -> int:
        # Half the time on a coarse grid, so that areas meet edge to edge.
        r = self.rng
        return r.randrange(0, self.w, 2) if r.random() < 0.5 else r.randrange(self.w)

    def span(self, page: int) -> int:
        """A length in pages from `page`, staying inside the window."""
        most = min(6, self.w - page)
        return self.rng.randint(1, max(1, most))

    def length(self, pages: int) -> int:
        # Sometimes a length that is not a whole number of pages (rounded up).
        if self.rng.random() < 0.1:
            return pages * P - self.rng.randint(1, P - 1)
        return pages * P

    def map_type(self) -> int:
        x = self.rng.random()
        flags = MAP_PRIVATE if x < 0.75 else MAP_SHARED if x < 0.93 else MAP_DROPPABLE
        if self.contract_only:
            return (MAP_SHARED if flags == MAP_SHARED else MAP_PRIVATE) | ANON
        if self.rng.random() < 0.05:
            flags |= MAP_NORESERVE
        return flags | ANON

    def one(self) -> Op:
        r = self.rng
        x = r.random()
        p = self.page()
        n = self.span(p)
        if x < 0.30:
            return self.remember(Mmap(p, self.length(n), r.choice(PROTS),
                                      self.map_type() | MAP_FIXED))
        if x < 0.36:
            return Mmap(p, self.length(n), r.choice(PROTS),
                        self.map_type() | MAP_FIXED_NOREPLACE)
        if x < 0.41 and not self.contract_only:
            return Mmap(p, self.length(n), r.choice(PROTS), self.map_type(),
                        delta=r.choice((0, 0, 0, 0x123)))
        if x < 0.41:
            return Mmap(p, self.length(n), r.choice(PROTS), self.map_type() | MAP_FIXED)
        if x < 0.51:
            return Munmap(p, self.length(n))
        if x < 0.68:
            return Mprotect(p, self.length(n), r.choice(PROTS))
        if x < 0.90 and not self.accesses:
            return Mprotect(p, self.length(n), r.choice(PROTS))
        if x < 0.78:
            return Write(min(self.target(), self.w - 1), r.randrange(1, 256),
                         offset=r.randrange(P))
        if x < 0.90:
            return Read(min(self.target(), self.w - 1), offset=r.choice((0, r.randrange(P))))
        if x < 0.93 and self.fork_ok and self.forks < MAX_FORKS:
            self.forks += 1
            return Fork(r.choice(("child", "child", "parent")), r.choice(("wait", "exit")))
        return self.probe(p)

    def probe(self, p: int) -> Op:
        """An operation Linux must refuse, or one at the edges of its rules."""
        r = self.rng
        fixed = MAP_PRIVATE | ANON | MAP_FIXED
        probes: list[Op] = [
            Mmap(p, 0, 3, fixed),
            Mmap(p, P, 3, MAP_PRIVATE | MAP_FIXED),
            Mmap(p, P, 3, r.choice((0, 0x03, 0x04, 0x0F)) | ANON | MAP_FIXED),
            Mmap(p, P, 3, r.choice((0, 0x03)) | ANON | MAP_FIXED_NOREPLACE),
            Mmap(p, P, 3, fixed, delta=0x10),
            Mmap(p, P, 3, MAP_PRIVATE | ANON | MAP_FIXED_NOREPLACE, delta=0x800),
            Mmap(None, 2 * P, 3, fixed, absolute=TASK_SIZE_X86_64 - P),
            Mmap(None, (1 << 64) - 100, 3, MAP_PRIVATE | ANON),
            Mmap(None, 1 << 48, 3, MAP_PRIVATE | ANON),
            Mmap(None, P, r.choice(PROTS), MAP_PRIVATE | ANON),
            Mmap(p, P, r.choice((0x80, 0x8, 0x01000000)) | 1, fixed),
            Munmap(p, 0),
            Munmap(p, P, delta=1),
            Munmap(p, 1 << 47),
            Munmap(0, P, absolute=TASK_SIZE_X86_64 + P),
            Mprotect(p, P, 1 | r.choice((0x10, 0x80, 0x01000000, 0x02000000, 0x03000000))),
            Mprotect(p, 0, 0x10),
            Mprotect(p, P, 1, delta=8),
            Mprotect(p, (1 << 64) - P * (p + 1), 1),
            Mprotect(p, P, r.choice((0x8, 0x8 | 3, 0x8 | 4))),
        ]
        if self.mmap_min_addr >= P:
            probes.append(Mmap(None, P, 3, fixed, absolute=0))
            probes.append(Mmap(None, P, 3, MAP_PRIVATE | ANON, absolute=P // 2))
        if self.contract_only:  # Linux-only corners: hints, unnamed prot bits, PROT_SEM
            probes = [op for op in probes if not _exotic(op)]
        return r.choice(probes)


def _exotic(op: Op) -> bool:
    """A probe outside what the contract specifies (see OpGenerator.contract_only)."""
    if isinstance(op, Mmap):
        return op.prot & ~7 != 0 or not op.flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) \
            and op.length < (1 << 47)
    if isinstance(op, Mprotect):  # PROT_SEM, grows bits, zero length, a range that wraps
        return op.prot & ~7 in (0x8, 0x01000000, 0x02000000, 0x03000000) or op.length == 0 \
            or op.length >= 1 << 63
    return False


@dataclass
class ConformanceReport:
    """What a conformance run did and whether model and kernel agreed throughout.

    `ok` is True when every step of every sequence agreed. `divergence` is the
    first disagreement (printable, with the steps that led to it).
    """

    seed: int
    ops_requested: int
    window_pages: int
    sequences: int = 0
    steps: int = 0
    elapsed: float = 0.0
    divergence: Divergence | None = None
    sequence_seed: int | None = None
    pfn_visible: bool | None = None
    exec_only_pkey: bool | None = None
    kernel_model: bool = False
    outcomes: Counter = field(default_factory=Counter)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.divergence is None and self.error is None

    def __str__(self) -> str:
        verdict = "model and live kernel agree" if self.ok else "MISMATCH"
        lines = [f"conformance (seed {self.seed}): {verdict}",
                 f"  {self.steps} of {self.ops_requested} steps compared in {self.sequences} "
                 f"sequences, window of {self.window_pages} pages, {self.elapsed:.1f}s",
                 "  outcomes: " + ", ".join(f"{k} {v}" for k, v in
                                            sorted(self.outcomes.items(),
                                                   key=lambda kv: -kv[1]))]
        facts = "page facts from a Kernel model" if self.kernel_model else \
            "no Kernel model: present/frame facts not compared"
        lines.append(f"  pfns {'visible' if self.pfn_visible else 'not visible'}; "
                     f"execute-only pkey {'in use' if self.exec_only_pkey else 'absent'}; "
                     f"{facts}")
        if self.error:
            lines += ["", self.error]
        if self.divergence is not None:
            lines += ["", f"sequence seed {self.sequence_seed}:", str(self.divergence)]
        return "\n".join(lines)


def compare_live(ops: list[Op], window_pages: int = 32, *, vmflags: bool = True,
                 kernel_factory: Callable[[], object] | None = None
                 ) -> tuple[LiveRun, list[StepRecord], Divergence | None]:
    """Run `ops` live and on the model; (live run, model records, first divergence)."""
    live = run_live(ops, window_pages, vmflags=vmflags)
    setup = ModelSetup(live.base, window_pages, mmap_min_addr=live.mmap_min_addr,
                       max_map_count=live.max_map_count,
                       exec_only_pkey=live.exec_only_read_faults, vmflags=vmflags)
    model = run_model(ops, setup, kernel_factory)
    return live, model, first_divergence(ops, live.records, model)


def reference_kernel_factory() -> Callable[[], object] | None:
    """A factory of the reference `Kernel` (model/fault.py), sized for a window and
    told whether this CPU uses the execute-only key; None if it cannot be imported."""
    try:
        from mmcheck.model.fault import Kernel
    except ImportError:
        return None
    from mmcheck.checker.live.oracle import exec_only_read_faults

    pku = exec_only_read_faults()
    return lambda: Kernel(4096, pku=pku, map_droppable=True)


def run_conformance(seed: int, ops: int, *, window_pages: int = 32, seq_len: int = 200,
                    vmflags: bool = True,
                    kernel_factory: Callable[[], object] | None | str = "reference",
                    progress: Callable[[ConformanceReport], None] | None = None
                    ) -> ConformanceReport:
    """Compare model and live kernel on `ops` random operations from `seed`.

    Sequence k uses the generator seeded with (seed, k), so a failing sequence
    can be replayed alone (`sequence_ops(seed, k, ...)`). `kernel_factory`
    builds a contract `Kernel` that is driven alongside and whose frames
    (present, changed) are compared too: by default the reference one
    (`reference_kernel_factory`); None compares the address space alone.
    """
    from mmcheck.checker.live.oracle import read_sysctl

    if kernel_factory == "reference":
        kernel_factory = reference_kernel_factory()
    report = ConformanceReport(seed, ops, window_pages, kernel_model=kernel_factory is not None)
    start = time.monotonic()
    mmap_min_addr = read_sysctl("mmap_min_addr", 4096)
    k = 0
    while report.steps < ops:
        seq = sequence_ops(seed, k, min(seq_len, ops - report.steps), window_pages,
                           mmap_min_addr)
        try:
            live, model, div = compare_live(seq, window_pages, vmflags=vmflags,
                                            kernel_factory=kernel_factory)
        except Exception as e:  # a live child that died is a finding, not a crash
            report.error = f"sequence {k}: {type(e).__name__}: {e}"
            report.sequence_seed = k
            break
        report.pfn_visible = live.pfn_visible
        report.exec_only_pkey = live.exec_only_read_faults
        report.sequences += 1
        upto = div.index + 1 if div else len(seq)
        report.steps += upto
        for rec in live.records[:upto]:
            report.outcomes[rec.outcome().split(" ")[0] if rec.errno or rec.signal
                            else type(seq[rec.index]).__name__.lower()] += 1
        if div is not None:
            report.divergence = div
            report.sequence_seed = k
            break
        k += 1
        if progress is not None:
            report.elapsed = time.monotonic() - start
            progress(report)
    report.elapsed = time.monotonic() - start
    return report


def sequence_ops(seed: int, k: int, n: int, window_pages: int = 32,
                 mmap_min_addr: int = 4096) -> list[Op]:
    """The k-th operation sequence of a conformance run with `seed`."""
    rng = random.Random(f"{seed}:{k}")
    return OpGenerator(rng, window_pages, mmap_min_addr).sequence(n)


def check_contract_impl(factory: Callable[..., object], seed: int, ops: int, *,
                        window_pages: int = 32, seq_len: int = 100,
                        task_size: int = TASK_SIZE_X86_64, mmap_min_addr: int = 0x10000
                        ) -> Divergence | None:
    """Hold a contract AddressSpace class against the reference model, in process.

    Contract-only random sequences (no faults, forks or free placements); the
    first divergence, or None. `factory(task_size, mmap_min_addr)` builds one.
    For trusted code (the examples); the checker runs submissions in a sandbox.
    """
    from mmcheck.checker.live.modelrun import run_contract

    base = 0x7F0000000000
    setup = ModelSetup(base, window_pages, task_size=task_size, mmap_min_addr=mmap_min_addr,
                       vmflags=False)
    done, k = 0, 0
    while done < ops:
        rng = random.Random(f"contract:{seed}:{k}")
        seq = OpGenerator(rng, window_pages, mmap_min_addr, contract_only=True).sequence(
            min(seq_len, ops - done))
        model = run_model(seq, setup)
        impl = run_contract(seq, setup, factory(task_size, mmap_min_addr))
        div = first_divergence(seq, model, impl, "model", "submission")
        if div is not None:
            return div
        done += len(seq)
        k += 1
    return None
