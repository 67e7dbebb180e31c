"""Trace-level minimisation: the shortest, simplest trace that still breaks the property.

An engine's own shrinking stops where its representation stops: Hypothesis
cannot delete a step that drew many choices, a burst of operations is one rule
to it, and Z3 returns whatever model it found. This pass works on the trace
itself, after the counterexample is confirmed, and keeps a candidate only if
replaying it (the same replay `mmcheck replay` runs, which follows the trace's
choices) breaks the SAME property (same kind and name) again:

1. delete chunks of steps, ddmin-style: halves, quarters, ... single steps,
   the later ones first (the replay stops at the violation, so anything after
   it is gone already);
2. simplify the setup (a smaller memory, a lower MAX_ORDER);
3. simplify arguments towards the simplest values their parameter allows
   (checker/decode.py says what each holds): order 0, one page, a page-aligned
   address, fewer prot and flag bits; a value that occurs several times is
   first replaced everywhere at once, so that an mmap and the munmap of the
   same address move together;

and repeats until a whole round changes nothing or the work budget (a number
of replays) is spent. Everything is deterministic: the same trace gives the
same result on any machine.

A model that follows a trace's choices (which block, which address) may find
a later choice illegal once an earlier step is gone; such a candidate is tried
once more with the choices after the change left to the model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

from mmcheck.checker import decode
from mmcheck.checker.subsystems import registry
from mmcheck.checker.systems import SubmissionError
from mmcheck.checker.trace import Step, Trace, Violation

DEFAULT_REPLAYS = 200
MAP_TYPE, MAP_ANONYMOUS = 0x0F, 0x20
PAGE = decode.PAGE


@dataclass(frozen=True)
class Replayed:
    """What one replay of a candidate showed: the violation (or none) and the steps
    run up to it, with the results the system gave."""

    violation: Violation | None
    steps: tuple[Step, ...]
    outcome: object = None  # whatever the caller's replay returned, handed back as is


@dataclass
class Minimised:
    trace: Trace
    outcome: object
    replays: int
    steps_before: int


def minimise(trace: Trace, key: tuple[str, str], attempt: Callable[[Trace], Replayed],
             first: Replayed, budget: int = DEFAULT_REPLAYS) -> Minimised:
    """The smallest trace found that `attempt` replays into a violation with `key`.

    `first` is the replay of `trace` itself (it must reproduce `key`); `attempt`
    replays a candidate on a fresh system. At most `budget` replays are made."""
    m = _Minimiser(key, attempt, budget)
    best = m.accept(trace, first)
    m.best = best
    changed = True
    while changed and m.left > 0:
        changed = False
        for phase in (m.delete_chunks, m.simplify_setup, m.simplify_values, m.simplify_args):
            changed |= phase()
    return Minimised(m.best, m.outcome, budget - m.left, len(trace.steps))


class _Minimiser:
    def __init__(self, key: tuple[str, str], attempt: Callable[[Trace], Replayed],
                 budget: int) -> None:
        self.key = key
        self.attempt = attempt
        self.left = budget
        self.best: Trace
        self.outcome: object = None
        self.tried: set[tuple[object, ...]] = set()

    def accept(self, trace: Trace, r: Replayed) -> Trace:
        self.outcome = r.outcome
        return Trace(trace.subsystem, dict(trace.setup), r.steps)

    def better(self, cand: Trace) -> bool:
        """Replay `cand`; if it reproduces the violation, make it the best trace."""
        sig = (tuple(sorted(cand.setup.items())), tuple((s.op, s.args) for s in cand.steps))
        if sig in self.tried or self.left <= 0:
            return False
        self.tried.add(sig)
        r, got = self._replay(cand)
        if r is None and self.left > 0 and any(s.result is not None for s in cand.steps):
            r, _ = self._replay(_free_choices(_renamed(cand, got)))
        if r is None:
            return False
        if _size(Trace(cand.subsystem, dict(cand.setup), r.steps)) >= _size(self.best):
            return False  # (its outcome is not kept: the report draws the best trace's)
        self.best = self.accept(cand, r)
        return True

    def _replay(self, cand: Trace) -> tuple[Replayed | None, tuple[Step, ...]]:
        """The replay if it reproduces the violation, and the steps it ran either way."""
        self.left -= 1
        try:
            r = self.attempt(cand)
        except SubmissionError:  # a simpler setup its constructor refuses: not this bug
            return None, ()
        if r.violation is None or r.violation.key != self.key:
            return None, r.steps
        return r, r.steps

    def delete_chunks(self) -> bool:
        changed = False
        k = max(len(self.best.steps) // 2, 1)
        while k >= 1 and self.left > 0:
            i = len(self.best.steps) - k
            while i >= 0 and self.left > 0:
                steps = self.best.steps
                if i + k <= len(steps) and len(steps) > 0:
                    cand = replace(self.best, steps=steps[:i] + steps[i + k:])
                    if self.better(cand):
                        changed = True
                i -= 1 if k == 1 else max(k // 2, 1)
            k //= 2
        return changed

    def simplify_setup(self) -> bool:
        """A smaller constructor argument, with the whole trace or with only its last
        steps: the steps that set up the bug in a big memory (filling it up to reach
        a block high enough) are often what a smaller memory needs no more, and
        neither change alone reproduces."""
        changed = False
        for name in list(self.best.setup):
            for v in _simpler(self.best.subsystem, name, self.best.setup[name], setup=True):
                setup = {**self.best.setup, name: v}
                steps = self.best.steps
                tails = dict.fromkeys(k for k in (len(steps), 2, len(steps) // 2)
                                      if 1 <= k <= len(steps))
                if any(self.better(replace(self.best, setup=setup, steps=steps[-k:]))
                       for k in tails):
                    changed = True
                    break
        return changed

    def simplify_values(self) -> bool:
        """Replace one value everywhere it occurs as the same kind of argument."""
        changed = False
        sub = self.best.subsystem
        seen: dict[tuple[str, int], int] = {}
        for s in self.best.steps:
            for kind, v in _kinded(sub, s):
                seen[(kind, v)] = seen.get((kind, v), 0) + 1
        for (kind, v), n in seen.items():
            if n < 2:
                continue
            for w in _candidates(kind, v):
                cand = replace(self.best, steps=tuple(
                    replace(s, args=tuple(w if (k, a) == (kind, v) else a
                                          for k, a in zip(_kinds(sub, s), s.args, strict=True)))
                    for s in self.best.steps))
                if self.better(cand):
                    changed = True
                    break
        return changed

    def simplify_args(self) -> bool:
        changed = False
        sub = self.best.subsystem
        for i in range(len(self.best.steps)):
            for j in range(len(self.best.steps[i].args) if i < len(self.best.steps) else 0):
                if i >= len(self.best.steps) or j >= len(self.best.steps[i].args):
                    break
                s = self.best.steps[i]
                kind = _kinds(sub, s)[j]
                for w in _candidates(kind, s.args[j]):
                    args = s.args[:j] + (w,) + s.args[j + 1:]
                    cand = replace(self.best, steps=(*self.best.steps[:i],
                                                     replace(s, args=args),
                                                     *self.best.steps[i + 1:]))
                    if self.better(cand):
                        changed = True
                        break
        return changed


def _size(t: Trace) -> tuple[int, int, int]:
    """Fewer steps first, then simpler arguments, then a smaller setup."""
    weight = sum(_weight(a) for s in t.steps for a in s.args)
    return (len(t.steps), weight, sum(_weight(v) for v in t.setup.values()))


def _weight(v: int) -> int:
    return abs(v).bit_length() + bin(abs(v)).count("1")


# What an operation's result is, as a later step's parameter names it: a block
# alloc handed out is freed by its pfn, a process fork made is named by its pid.
Renames = dict[str, dict[int, int]]  # parameter name -> {recorded result: actual}


def learn_rename(subsystem: str, want: Step, have: Step, renames: Renames) -> None:
    """Note that the step recorded as `want` returned `have.result` this time: later
    steps that pass the recorded result back (by the declaration's `results`) should
    pass this one."""
    decl = registry.get(subsystem)
    param = decl.result_param(want.op) if decl is not None else None
    if param is not None and _is_int(want.result) and _is_int(have.result) \
            and want.result != have.result:
        renames.setdefault(param, {})[want.result] = have.result


def renamed_step(subsystem: str, step: Step, renames: Renames) -> Step:
    """`step` with each argument that names a renamed result naming the actual one."""
    if not renames:
        return step
    names = decode.params(subsystem, step.op)  # () for a constructor step
    args = tuple(renames.get(names[k], {}).get(a, a) if k < len(names) else a
                 for k, a in enumerate(step.args))
    return step if args == step.args else replace(step, args=args)


def _renamed(t: Trace, got: Sequence[Step]) -> Trace:
    """`t` with later steps naming what the replay's steps returned instead of what
    the trace recorded: once a step is gone, fork returns pid 2 where it returned
    3, and the steps that used pid 3 should use 2."""
    renames: Renames = {}
    steps = []
    for i, want in enumerate(t.steps):
        want = renamed_step(t.subsystem, want, renames)
        steps.append(want)
        if i < len(got):
            learn_rename(t.subsystem, t.steps[i], got[i], renames)
    return replace(t, steps=tuple(steps))


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _free_choices(t: Trace) -> Trace:
    """The trace with its recorded results dropped: a model makes its own choices."""
    return replace(t, steps=tuple(Step(s.op, s.args) for s in t.steps))


def _kinds(subsystem: str, s: Step) -> list[str]:
    names = decode.params(subsystem, s.op)
    return [decode.kind_of(subsystem, s.op, names[i]) if i < len(names) else "int"
            for i in range(len(s.args))]


def _kinded(subsystem: str, s: Step) -> Iterator[tuple[str, int]]:
    yield from zip(_kinds(subsystem, s), s.args, strict=True)


def _simpler(subsystem: str, name: str, v: int, setup: bool = False) -> list[int]:
    """Smaller values for a constructor argument, unless its declaration fixes it (only
    a few values are meaningful: task_size, levels; fault's memory that never runs out)."""
    decl = registry.get(subsystem)
    if decl is None or name in decl.fixed_setup:
        return []
    # The largest power of two below v as well: memory sizes of 2**k pages are the
    # simplest that still hold the big blocks a bug may need (a merge past the top
    # order needs 2 * 2**(max_order-1) pages, and halving 2,688 never meets 2,048).
    power = 1 << (v.bit_length() - 1) if v > 1 else 0
    out = [w for w in (1, v // 2, power, v - 1) if 1 <= w < v]
    return list(dict.fromkeys(out))


def _candidates(kind: str, v: int) -> Sequence[int]:
    """Simpler values for an argument of `kind`, the simplest first."""
    if kind == "bool":
        return [0] if v else []
    if kind == "mapflags":
        # Fewer flags, but the map type and MAP_ANONYMOUS stay: without them the
        # call fails for another reason first, and the trace tells another story.
        keep = MAP_TYPE | MAP_ANONYMOUS
        return [w for w in _fewer_bits(v) if w & keep == v & keep]
    if kind in ("prot", "pteflags"):
        return _fewer_bits(v)
    if kind == "address":
        return [v - v % PAGE] if v % PAGE else []
    if kind == "length":
        out = [PAGE] if v > PAGE else []
        if v % PAGE:
            out.append(v + PAGE - v % PAGE)
        elif v > 2 * PAGE:
            out.append(v - PAGE)
        return [w for w in out if w != v]
    if kind in ("int", "selector", "sreg") and v > 0:
        return list(dict.fromkeys(w for w in (0, v - 1) if w >= 0))
    return []


def _fewer_bits(v: int) -> list[int]:
    if v <= 0:
        return []
    out = [0]
    bit = 1
    while bit <= v:
        if v & bit and v != bit:
            out.append(v & ~bit)
        bit <<= 1
    return out
