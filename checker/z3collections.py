"""Structured collections for the Z3 compiler: what a bit-per-slot encoding makes cheap.

An encoding over a finite universe presents a collection as slots whose records
are constants guarded by a bit (`Block{pfn: 8, order: 3}` guarded by "slot (3, 1)
is free"). The compiler then knows, before Z3 sees anything, each slot's fields
and the interval a `def` such as `span(b)` gives it. This module turns such
knowledge into small formulas:

    SlotIndex              the slots by the constant value of each field: `x in C`
                           and `exists p in C: p.f == E` become lookups;
    laminar_disjoint       no two present intervals overlap, O(n) over a forest
                           of nested intervals with shared "something below" terms;
    laminar_cover          the present intervals cover lo .. hi, O(n) with shared
                           "all of x is covered" terms;
    overlapping            the guards of the intervals that meet lo .. hi;
    sum_delta              two sums of guarded constants over the same slots
                           (before and after a step) compared through the
                           slots whose guard changed; a guard after a step
                           written `(g and not off) or on` changes only where
                           `on` or `off` holds, which the delta reads off.

Each returns None when its precondition fails (a symbolic field or bound, or
intervals that cross without nesting); the compiler then unrolls as before.
Intervals are (lo, hi) with hi exclusive; an empty one meets nothing.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import z3

Guard = Any  # True, False or a z3 BoolRef
Span = tuple[Guard, int, int]  # (guard, lo, hi)


def _const_int(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, z3.IntNumRef):
        return v.as_long()
    return None


class SlotIndex:
    """For one collection: field -> constant value -> slot positions, for every field
    whose value is a constant in every slot."""

    def __init__(self, slots: Sequence[tuple[Guard, Any]]) -> None:
        self.slots = slots  # kept alive: the compiler caches indexes by id
        self.by_field: dict[str, dict[int, list[int]]] = {}
        names = slots[0][1].fields.keys() if slots and hasattr(slots[0][1], "fields") else ()
        for name in names:
            table: dict[int, list[int]] = {}
            for pos, (_, rec) in enumerate(slots):
                value = _const_int(rec.fields.get(name))
                if value is None:
                    break
                table.setdefault(value, []).append(pos)
            else:
                self.by_field[name] = table

    def candidates(self, known: dict[str, int]) -> list[int] | None:
        """The slots whose indexed fields equal `known` where indexed; None when no
        field of `known` is indexed (every slot is a candidate)."""
        best: list[int] | None = None
        for name, value in known.items():
            table = self.by_field.get(name)
            if table is not None:
                hits = table.get(value, [])
                if best is None or len(hits) < len(best):
                    best = hits
        return best


def _junction(items: Sequence[Guard], dominant: bool) -> Guard:
    """Or (dominant True) or And (dominant False) of guards, constants folded."""
    live = []
    for g in items:
        if g is dominant:
            return dominant
        if g is not (not dominant):
            live.append(g)
    if not live:
        return not dominant
    return live[0] if len(live) == 1 else (z3.Or if dominant else z3.And)(*live)


def _any(guards: Sequence[Guard]) -> Guard:
    return _junction(guards, True)


def _all(facts: Sequence[Guard]) -> Guard:
    return _junction(facts, False)


@dataclass
class _Node:
    lo: int
    hi: int
    guards: list[Guard]
    children: list[_Node] = field(default_factory=list)


def _forest(spans: Sequence[Span]) -> list[_Node] | None:
    """The nonempty intervals as a forest by nesting (equal ones share a node), or
    None if two of them cross."""
    groups: dict[tuple[int, int], list[Guard]] = {}
    for g, lo, hi in spans:
        if hi > lo and g is not False:
            groups.setdefault((lo, hi), []).append(g)
    roots: list[_Node] = []
    stack: list[_Node] = []
    for (lo, hi), guards in sorted(groups.items(), key=lambda kv: (kv[0][0], -kv[0][1])):
        while stack and stack[-1].hi <= lo:
            stack.pop()
        if stack and stack[-1].hi < hi:
            return None  # crosses its would-be parent
        node = _Node(lo, hi, guards)
        (stack[-1].children if stack else roots).append(node)
        stack.append(node)
    return roots


def _postorder(roots: list[_Node]) -> list[_Node]:
    out: list[_Node] = []
    todo = [(n, False) for n in reversed(roots)]
    while todo:
        node, done = todo.pop()
        if done:
            out.append(node)
            continue
        todo.append((node, True))
        todo.extend((c, False) for c in reversed(node.children))
    return out


def laminar_disjoint(spans: Sequence[Span]) -> Guard | None:
    """No two present intervals share a point; None if two intervals cross.

    Nested intervals overlap only along the nesting, so per node: at most one of
    its equal intervals is present, and if one is, nothing below it is.
    """
    roots = _forest(spans)
    if roots is None:
        return None
    facts: list[Guard] = []
    below: dict[int, Guard] = {}
    here: dict[int, Guard] = {}
    for node in _postorder(roots):
        gs = node.guards
        facts += [_not_both(a, b) for k, a in enumerate(gs) for b in gs[k + 1:]]
        here[id(node)] = _any(gs)
        under = _any([_any([here[id(c)], below[id(c)]]) for c in node.children])
        below[id(node)] = under
        facts.append(_not_both(here[id(node)], under))
    return _all(facts)


def _not_both(a: Guard, b: Guard) -> Guard:
    if a is False or b is False:
        return True
    if a is True:
        return _neg(b)
    if b is True:
        return _neg(a)
    return z3.Or(z3.Not(a), z3.Not(b))


def _neg(g: Guard) -> Guard:
    return (not g) if isinstance(g, bool) else z3.Not(g)


def laminar_cover(spans: Sequence[Span], lo: int, hi: int) -> Guard | None:
    """Every point of lo .. hi lies in a present interval; None if two intervals cross.

    Points are covered only by nested intervals, so a node is covered when it is
    present or its children tile it and each is covered.
    """
    if hi <= lo:
        return True
    roots = _forest(spans)
    if roots is None:
        return None
    covered: dict[int, Guard] = {}
    for node in _postorder(roots):
        covered[id(node)] = _any([_any(node.guards),
                                  _tiles(node.children, node.lo, node.hi, covered)])
    return _tiles(roots, lo, hi, covered, clip=True)


def _tiles(nodes: list[_Node], lo: int, hi: int, covered: dict[int, Guard],
           clip: bool = False) -> Guard:
    """The nodes meeting lo .. hi leave no gap in it and each is covered (clipped to
    lo .. hi when `clip`: a node that sticks out needs only its part inside)."""
    reach, facts = lo, []
    for node in nodes:
        if node.hi <= lo or node.lo >= hi:
            continue
        if node.lo > reach:
            return False
        if clip and (node.lo < lo or node.hi > hi):
            facts.append(_any([_any(node.guards), _tiles(node.children, max(lo, node.lo),
                                                         min(hi, node.hi), covered, True)]))
        else:
            facts.append(covered[id(node)])
        reach = node.hi
    return _all(facts) if reach >= hi else False


class SpanTable:
    """Constant intervals sorted by start, for `overlapping` queries.

    When the intervals nest, a query for an interval that is one of them is
    answered with shared terms: "something present at or below this node" (made
    once per node, O(n) in all) and the guards of its ancestors.
    """

    def __init__(self, spans: Sequence[Span]) -> None:
        live = sorted(((lo, hi, g) for g, lo, hi in spans if hi > lo and g is not False),
                      key=lambda s: (s[0], s[1]))
        self.starts = [lo for lo, _, _ in live]
        self.live = live
        self.longest = max((hi - lo for lo, hi, _ in live), default=0)
        self.nodes: dict[tuple[int, int], tuple[_Node, Guard]] = {}
        self.parent: dict[int, _Node] = {}
        roots = _forest(spans)
        if roots is not None:
            down: dict[int, Guard] = {}
            for node in _postorder(roots):
                down[id(node)] = _any([*node.guards, *(down[id(c)] for c in node.children)])
                for c in node.children:
                    self.parent[id(c)] = node
                self.nodes[(node.lo, node.hi)] = (node, down[id(node)])

    def overlapping(self, lo: int, hi: int) -> list[Guard]:
        """Guards whose disjunction says an interval sharing a point with lo .. hi
        is present: one per interval, or shared subtree terms."""
        if hi <= lo:
            return []
        hit = self.nodes.get((lo, hi))
        if hit is not None:
            node, down = hit
            out = [down]
            up = self.parent.get(id(node))
            while up is not None:
                out.extend(up.guards)
                up = self.parent.get(id(up))
            return out
        first = bisect.bisect_right(self.starts, lo - self.longest)
        last = bisect.bisect_left(self.starts, hi)
        return [g for a, b, g in self.live[first:last] if b > lo and a < hi]


GuardedSum = tuple[Sequence[tuple[Guard, int]], int]  # ([(guard, coefficient)], constant)


# guarded_sum and sum_delta walk terms of thousands of nodes through z3's Python API,
# and an action compiled once per argument value asks the same question each time
# (the sum after a step against `old(sum) - 2 ** order`, one order after another).
# Memoised by term id; each entry keeps its keys alive (an id is not reused while
# its term lives); cleared when it grows large and with z3's context (clear_memo).
_MEMO: dict[tuple[str, int, int], tuple[Any, Any, Any]] = {}
_MEMO_MAX = 4096


def _memo(kind: str, a: Any, b: Any, key_a: int, key_b: int, make: Any) -> Any:
    key = (kind, key_a, key_b)
    got = _MEMO.get(key)
    if got is None:
        if len(_MEMO) >= _MEMO_MAX:
            _MEMO.clear()
        got = (a, b, make())
        _MEMO[key] = got
    return got[2]


def clear_memo() -> None:
    """Forget every memoised answer (z3's context is about to be replaced)."""
    _MEMO.clear()


def guarded_sum(term: Any) -> GuardedSum | None:
    """A z3 Int term `c0 + sum(±If(g_i, c_i, 0))` as its slots and constant, in the
    order they appear; None for anything else (a symbolic coefficient, a product).
    A sum plus or minus constants gives the very slots object of that sum (so that
    sum_delta's memo knows it again)."""
    return _memo("sum", term, None, term.get_id(), -1, lambda: _guarded_sum(term))


def _guarded_sum(term: Any) -> GuardedSum | None:
    parts: list[tuple[Sequence[tuple[Guard, int]], int]] = []  # (slots, sign)
    slots: list[tuple[Guard, int]] = []
    offset = 0
    todo = [(term, 1, True)]  # a stack: children pushed last first, so read in order
    while todo:
        t, sign, top = todo.pop()
        if z3.is_int_value(t):
            offset += sign * t.as_long()
        elif (z3.is_add(t) or z3.is_sub(t)) and not top:
            inner = guarded_sum(t)  # a sum inside: its own memoised slots
            if inner is None:
                return None
            if slots:
                parts.append((tuple(slots), 1))
                slots = []
            parts.append((inner[0], sign))
            offset += sign * inner[1]
        elif z3.is_add(t):
            todo += [(c, sign, False) for c in reversed(t.children())]
        elif z3.is_sub(t):
            kids = t.children()
            todo += [(c, -sign, False) for c in reversed(kids[1:])] + [(kids[0], sign, False)]
        elif z3.is_app_of(t, z3.Z3_OP_ITE) and z3.is_int_value(t.arg(2)) \
                and t.arg(2).as_long() == 0 and z3.is_int_value(t.arg(1)):
            slots.append((t.arg(0), sign * t.arg(1).as_long()))
        else:
            return None
    if slots:
        parts.append((tuple(slots), 1))
    if len(parts) == 1 and parts[0][1] == 1:
        return parts[0][0], offset
    return [(g, sign * c) for ps, sign in parts for g, c in ps], offset


@dataclass(frozen=True)
class Delta:
    """sum(c for (lit, c) in ups if lit) - sum(c for (lit, c) in downs if lit): the
    change of a sum over the slots whose guard differs."""

    ups: tuple[tuple[Any, int], ...]
    downs: tuple[tuple[Any, int], ...]

    def term(self) -> Any:
        """The change as an Int term (a sum of if-then-else terms)."""
        return z3.Sum(z3.IntVal(0), *(z3.If(lit, c, 0) for lit, c in self.ups),
                      *(z3.If(lit, -c, 0) for lit, c in self.downs))

    def compare(self, op: str, k: int) -> Any:
        """The Bool `self op k` as one pseudo-Boolean constraint over the literals
        (z3's PbEq/PbLe/PbGe; a literal with a negative coefficient is negated). The
        solver reasons about it as one constraint, not as a sum of if-then-else
        terms: half the work on buddy's accounting steps at 256 pages."""
        lits: list[tuple[Any, int]] = []
        bound = k
        for lit, c in [*self.ups, *((g, -c) for g, c in self.downs)]:
            if c > 0:
                lits.append((lit, c))
            elif c < 0:  # c*x == c - c*(not x)
                lits.append((z3.Not(lit), -c))
                bound -= c
        if not lits:
            return {"==": 0 == bound, "!=": 0 != bound, "<": 0 < bound, "<=": 0 <= bound,
                    ">": 0 > bound, ">=": 0 >= bound}[op]
        if op in ("==", "!="):
            eq = z3.PbEq(lits, bound)
            return eq if op == "==" else z3.Not(eq)
        if op in ("<", "<="):
            return z3.PbLe(lits, bound - (op == "<"))
        return z3.PbGe(lits, bound + (op == ">"))


def sum_delta(a: Any, b: Any) -> tuple[Delta, int] | None:
    """For two sums of guarded constants over the same slots (slot i has the same
    coefficient in both, as a collection's sum before and after a step): (d, k) with
    a - b == d + k, where d sums only over the slots whose guard differs: +c_i where
    g_i and not h_i, -c_i where h_i and not g_i. The solver then reasons about the
    few slots a step changes instead of two sums over all of them (an accounting
    property at 64 pages: 1 s against no answer in 60 s). None when the shapes
    differ."""
    sb = guarded_sum(b)  # first: b is often a constant (a bound), and a a long sum
    if sb is None or len(sb[0]) < 2:
        return None
    sa = guarded_sum(a)
    if sa is None or len(sa[0]) != len(sb[0]):
        return None
    d = _memo("delta", sa[0], sb[0], id(sa[0]), id(sb[0]), lambda: _slots_delta(sa[0], sb[0]))
    return None if d is None else (d, sa[1] - sb[1])


def _slots_delta(sa: Sequence[tuple[Guard, int]], sb: Sequence[tuple[Guard, int]],
                 ) -> Delta | None:
    """sum(sa) - sum(sb) without their constants, over the slots that differ; None
    when a slot's coefficient differs."""
    if any(ca != cb for (_, ca), (_, cb) in zip(sa, sb, strict=True)):
        return None
    ups, downs = [], []
    for (g, c), (h, _) in zip(sa, sb, strict=True):
        if g.eq(h):
            continue
        lost, gained = _change(g, h)
        ups.append((lost, c))
        downs.append((gained, c))
    return Delta(tuple(ups), tuple(downs))


def _change(g: Any, h: Any) -> tuple[Any, Any]:
    """(g and not h, h and not g) for two Bool terms, read off h's shape when h is g
    after a step: `(g and not off) or on`, `g and not off` or `g or on` (a bit set
    if `on`, else cleared if `off`): then (g and off and not on, on and not g),
    which is false wherever the step's `on` and `off` are, without a case split
    on g itself."""
    on, kept = None, h
    if z3.is_or(h) and h.num_args() == 2 and not h.arg(0).eq(g):
        on, kept = h.arg(0), h.arg(1)
    off = None
    if z3.is_and(kept) and kept.num_args() == 2 and kept.arg(0).eq(g) \
            and z3.is_not(kept.arg(1)):
        off = kept.arg(1).arg(0)
    elif not kept.eq(g):
        return z3.And(g, z3.Not(h)), z3.And(h, z3.Not(g))
    lost = z3.BoolVal(False) if off is None else (
        z3.And(g, off) if on is None else z3.And(g, off, z3.Not(on)))
    gained = z3.BoolVal(False) if on is None else z3.And(on, z3.Not(g))
    return lost, gained
