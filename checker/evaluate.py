"""The concrete evaluator: a spec's AST over a snapshot of plain Python values.

Each property is compiled once into nested Python closures (no per-step tree
walking), then run after every step of a trace. Three things beyond true/false:

- vacuity: every atom (a comparison, a predicate, `raised`, a read of a `bool`
  field) evaluated outside an antecedent counts as "live"; an evaluation with
  no live atom proved nothing
  (a forall over an empty set, an implication whose premise was false);
- explanation: when a property fails, `explain` walks the same AST once more,
  slowly, and says which bindings and which sub-formula made it false;
- plans: a few shapes with a much faster algorithm are recognised at compile
  time (pairwise disjoint intervals: sort and compare neighbours, O(n log n)
  instead of O(n^2)).
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from mmcheck.model.vocabulary import Vocabulary
from mmcheck.spec import ast
from mmcheck.spec.analysis import (
    covered_interval,
    free_names,
    membership_only,
    mentions,
    pairwise_disjoint,
)
from mmcheck.spec.limits import MAX_INT_BITS, fits, power_fits
from mmcheck.spec.loader import CheckedSpec


class EvalError(Exception):
    """A spec failed to evaluate on a state (division by zero, a bad shift, ...)."""

    def __init__(self, message: str, node: ast.Expr) -> None:
        super().__init__(message)
        self.node = node


@dataclass
class ActionContext:
    """What an action property sees of its step."""

    args: Mapping[str, int]
    result: object = None
    raised: str | None = None  # the exception's class name


@dataclass
class Frame:
    """The evaluation state: current and old snapshot, bound names, the live count."""

    state: Mapping[str, Any]
    old: Mapping[str, Any] | None = None
    env: dict[str, Any] = field(default_factory=dict)
    action: ActionContext | None = None
    live: int = 0
    deps: list[tuple[str, Any]] | None = None  # membership queries, while a memo records


Fn = Callable[[Frame], Any]


class Bag:
    """`A + B` of two collections: iterates both, duplicates kept."""

    __slots__ = ("parts",)

    def __init__(self, *parts: Iterable) -> None:
        self.parts = parts

    def __iter__(self) -> Iterator:
        return itertools.chain.from_iterable(self.parts)

    def __contains__(self, item: object) -> bool:
        return any(item in p for p in self.parts)

    def __len__(self) -> int:
        return sum(_size(p) for p in self.parts)


def _size(c: Iterable) -> int:
    if isinstance(c, range):
        return _range_len(c)
    try:
        return len(c)  # type: ignore[arg-type]
    except TypeError:
        return sum(1 for _ in c)


def _range_len(r: range) -> int:
    """len(r), also past sys.maxsize (where len() raises OverflowError)."""
    return max(0, -((r.start - r.stop) // r.step)) if r.step > 0 else len(r)


def _members(c: Any) -> Any:
    """A collection in a form where `in` is fast."""
    if isinstance(c, (set, frozenset, dict, Bag, range)):
        return c
    return frozenset(c)


def interval(lo: int, hi: int) -> range:
    """`lo .. hi`, empty when hi <= lo; `.lo`/`.hi` stay as written (as in the Z3 back end)."""
    return range(lo, hi)


def _equal(a: Any, b: Any) -> bool:
    # Python compares ranges as sequences, so every empty range equals every other;
    # the language (and Z3) compares an interval's bounds.
    return a == b and (a.__class__ is not range or (a.start, a.stop) == (b.start, b.stop))


def _disjoint(a: range, b: range) -> bool:
    return not a or not b or max(a.start, b.start) >= min(a.stop, b.stop)


def _contains(a: range, x: int | range) -> bool:
    if isinstance(x, range):
        return not x or (a.start <= x.start and x.stop <= a.stop)
    return a.start <= x < a.stop


def _floordiv(a: int, b: int, node: ast.Expr) -> int:
    if b == 0:
        raise EvalError("division by zero", node)
    return a // b


def _mod(a: int, b: int, node: ast.Expr) -> int:
    if b == 0:
        raise EvalError("modulo by zero", node)
    return a % b


def _pow(a: int, b: int, node: ast.Expr) -> int:
    if b < 0 or b > 4096:
        raise EvalError(f"exponent {b} is out of range", node)
    if not power_fits(a, b):
        raise _too_large(node)
    return _bounded(a**b, node)


def _shift(a: int, b: int, left: bool, node: ast.Expr) -> int:
    if b < 0 or b > 4096:
        raise EvalError(f"shift by {b} is out of range", node)
    return _bounded(a << b, node) if left else a >> b


def _bounded(v: int, node: ast.Expr) -> int:
    """v, if it has at most MAX_INT_BITS bits (spec/limits.py): every value the
    evaluator computes stays small enough to compute with quickly and to print."""
    if not fits(v):
        raise _too_large(node)
    return v


def _too_large(node: ast.Expr) -> EvalError:
    return EvalError(f"a value here has more than {MAX_INT_BITS:,} bits", node)


def _aligned(x: int, n: int) -> bool:
    return n != 0 and x % n == 0


_ARITH: dict[str, Callable[[int, int, ast.Expr], int]] = {
    "+": lambda a, b, n: _bounded(a + b, n),
    "-": lambda a, b, n: _bounded(a - b, n),
    "*": lambda a, b, n: _bounded(a * b, n),
    "/": _floordiv,
    "//": _floordiv,
    "%": _mod,
    "**": _pow,
    "<<": lambda a, b, n: _shift(a, b, True, n),
    ">>": lambda a, b, n: _shift(a, b, False, n),
    "&": lambda a, b, n: a & b,
    "|": lambda a, b, n: a | b,
    "^": lambda a, b, n: a ^ b,
}

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": _equal,
    "!=": lambda a, b: not _equal(a, b),
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


class Compiler:
    """Compiles the expressions of one checked spec into closures."""

    def __init__(self, checked: CheckedSpec) -> None:
        self.spec = checked.spec
        self.vocab: Vocabulary = checked.vocabulary
        self.defines = {d.name: d for d in self.spec.defines}
        self.field_index = {
            r.name: {name: i for i, (name, _) in enumerate(r.fields)} for r in self.vocab.records
        }
        self.state_names = {s.name for s in self.vocab.state}
        types = [(name, t) for r in self.vocab.records for name, t in r.fields]
        self.bool_fields = {n for n, t in types if t == "bool"} - {
            n for n, t in types if t != "bool"
        }
        self.scalar_state = {s.name for s in self.vocab.state if s.type in ("int", "bool", "int?")}
        self.bound_names = _bound_names(self.spec)
        self.memoize = True
        self.record_types = {
            r.name: collections.namedtuple(r.name, [n for n, _ in r.fields])
            for r in self.vocab.records
        }

    def compile(self, e: ast.Expr, live: bool = True) -> Fn:
        """A closure computing e; atoms count as live unless `live` is false."""
        return getattr(self, "_" + type(e).__name__)(e, live)

    # atoms -----------------------------------------------------------------
    def _counted(self, fn: Fn, live: bool) -> Fn:
        if not live:
            return fn

        def counted(f: Frame) -> Any:
            f.live += 1
            return fn(f)

        return counted

    def _IntLit(self, e: ast.IntLit, live: bool) -> Fn:
        v = e.value
        return lambda f: v

    def _BoolLit(self, e: ast.BoolLit, live: bool) -> Fn:
        v = e.value
        return lambda f: v

    def _NoneLit(self, e: ast.NoneLit, live: bool) -> Fn:
        return lambda f: None

    def _Name(self, e: ast.Name, live: bool) -> Fn:
        name = e.id
        if name == "raised":
            return self._counted(
                lambda f: f.action is not None and f.action.raised is not None, live
            )
        if name in self.defines and not self.defines[name].params:
            return self._Call(ast.Call(e.span, name, ()), live)

        if name in self.state_names and name not in self.bound_names:
            return lambda f: f.state[name]  # no binder anywhere shadows it

        def lookup(f: Frame) -> Any:
            env = f.env
            if name in env:
                return env[name]
            if f.action is not None and name in f.action.args:
                return f.action.args[name]
            return f.state[name]

        return lookup

    def _Field(self, e: ast.Field, live: bool) -> Fn:
        obj = self.compile(e.obj, live)
        name = e.name
        if name in ("lo", "hi"):
            # An interval's bounds, or a record field of that name.
            def bound(f: Frame) -> Any:
                v = obj(f)
                if isinstance(v, range):
                    return v.start if name == "lo" else v.stop
                return getattr(v, name)

            return bound
        indices = {i[name] for i in self.field_index.values() if name in i}
        if len(indices) == 1:
            (idx,) = indices
            read: Fn = lambda f: obj(f)[idx]  # noqa: E731
        else:
            read = lambda f: getattr(obj(f), name)  # noqa: E731
        # A bool field is an atom: `m.shared -> m.writable` says something when m is shared.
        return self._counted(read, live and name in self.bool_fields)

    def _RecordLit(self, e: ast.RecordLit, live: bool) -> Fn:
        order = self.field_index[e.type_name]
        given = dict(e.fields)
        parts = [self.compile(given[name], live) for name in sorted(order, key=order.__getitem__)]
        # A namedtuple equals (and hashes as) the model's own record of the same values.
        make = self.record_types[e.type_name]._make
        return lambda f: make(p(f) for p in parts)

    def _Unary(self, e: ast.Unary, live: bool) -> Fn:
        if e.op == "not":
            inner = self.compile(e.operand, live)
            return lambda f: not inner(f)
        inner = self.compile(e.operand, live)
        return lambda f: -inner(f)

    def _Binary(self, e: ast.Binary, live: bool) -> Fn:
        op = e.op
        if op in ("and", "or", "->", "<->"):
            return self._logic(e, live)
        left, right = self.compile(e.left, live), self.compile(e.right, live)
        if op in _COMPARE:
            cmp = _COMPARE[op]
            return self._counted(lambda f: cmp(left(f), right(f)), live)
        if op in ("in", "not in"):
            neg = op == "not in"
            if (
                isinstance(e.right, ast.Name)
                and e.right.id in self.state_names
                and e.right.id not in self.bound_names
            ):
                coll = e.right.id

                def member(f: Frame) -> bool:
                    key = left(f)
                    if f.deps is not None:
                        f.deps.append((coll, key))  # a memo depends on this answer
                    return (key in _members(f.state[coll])) != neg

                return self._counted(member, live)
            return self._counted(lambda f: (left(f) in _members(right(f))) != neg, live)
        if op == "+":

            def plus(f: Frame) -> Any:
                a, b = left(f), right(f)
                if isinstance(a, int):
                    return _bounded(a + b, e)
                return Bag(a, b)

            return plus
        arith = _ARITH[op]
        return lambda f: arith(left(f), right(f), e)

    def _logic(self, e: ast.Binary, live: bool) -> Fn:
        op = e.op
        if op == "->":
            premise, conclusion = self.compile(e.left, False), self.compile(e.right, live)
            return lambda f: (not premise(f)) or conclusion(f)
        left, right = self.compile(e.left, live), self.compile(e.right, live)
        if op == "and":
            return lambda f: left(f) and right(f)
        if op == "or":
            return lambda f: left(f) or right(f)
        return lambda f: bool(left(f)) == bool(right(f))

    def _Interval(self, e: ast.Interval, live: bool) -> Fn:
        lo, hi = self.compile(e.lo, live), self.compile(e.hi, live)
        return lambda f: interval(lo(f), hi(f))

    def _IfElse(self, e: ast.IfElse, live: bool) -> Fn:
        cond, then, orelse = (self.compile(x, live) for x in (e.cond, e.then, e.orelse))
        return lambda f: then(f) if cond(f) else orelse(f)

    def _Let(self, e: ast.Let, live: bool) -> Fn:
        value, body, name = self.compile(e.value, live), self.compile(e.body, live), e.name

        def let(f: Frame) -> Any:
            saved = f.env.get(name, _MISSING)
            f.env[name] = value(f)
            try:
                return body(f)
            finally:
                _restore(f.env, name, saved)

        return let

    # quantifiers -----------------------------------------------------------
    def bindings(self, binders: tuple[ast.Binder, ...]) -> Callable[[Frame], Iterator[None]]:
        """A generator over every assignment of the binders, set in f.env in turn."""
        compiled = [
            (
                b.names,
                self.compile(b.domain, False),
                self.compile(b.step, False) if b.step else None,
            )
            for b in binders
        ]

        def domain_values(f: Frame, dom: Fn, step: Fn | None) -> Iterable:
            d = dom(f)
            if step is not None:
                s = step(f)
                if s <= 0:
                    raise EvalError(f"step {s} must be positive", binders[0])
                return range(d.start, d.stop, s)
            return d

        def assign(f: Frame, i: int) -> Iterator[None]:
            if i == len(compiled):
                yield None
                return
            names, dom, step = compiled[i]
            values = domain_values(f, dom, step)
            env = f.env
            saved = [env.get(n, _MISSING) for n in names]
            try:
                if len(names) == 1:
                    (n,) = names
                    for v in values:
                        env[n] = v
                        yield from assign(f, i + 1)
                else:
                    # `a, b in C`: distinct members (distinct positions) of C.
                    items = list(values)
                    for combo in itertools.permutations(range(len(items)), len(names)):
                        for n, k in zip(names, combo):
                            env[n] = items[k]
                        yield from assign(f, i + 1)
            finally:
                for n, s in zip(names, saved):
                    _restore(env, n, s)

        return lambda f: assign(f, 0)

    def _Quantifier(self, e: ast.Quantifier, live: bool) -> Fn:
        # A plan counts itself live only where the loop it replaces would have
        # evaluated an atom: a forall over no pair, an exists over nothing, is vacuous.
        plan = (
            self._pairwise_disjoint_plan(e, live)
            or self._lookup_plan(e, live)
            or self._cover_plan(e, live)
        )
        if plan is not None:
            return plan
        memo = self._memo_forall(e, live)
        if memo is not None:
            return memo
        body = self.compile(e.body, live)
        b = e.binders[0]
        if len(e.binders) == 1 and len(b.names) == 1 and b.step is None:
            return self._single(e.kind == "forall", b.names[0], self.compile(b.domain, False), body)
        each = self.bindings(e.binders)
        if e.kind == "forall":
            return lambda f: all(body(f) for _ in each(f))
        return lambda f: any(body(f) for _ in each(f))

    @staticmethod
    def _single(forall: bool, x: str, dom: Fn, body: Fn) -> Fn:
        """One binder, one name: a plain loop (the common case, kept fast)."""

        def quantify(f: Frame) -> bool:
            env = f.env
            saved = env.get(x, _MISSING)
            try:
                for v in dom(f):
                    env[x] = v
                    if bool(body(f)) != forall:
                        return not forall
                return forall
            finally:
                _restore(env, x, saved)

        return quantify

    def pure_in(self, e: ast.Expr, name: str) -> tuple[str, ...] | None:
        """The scalar state names e reads, if e reads nothing but `name` and such scalars."""
        names = free_names(e, self.defines)
        if names is None or not self.memoize:
            return None
        names.discard(name)
        if not names <= self.scalar_state:
            return None
        return tuple(sorted(names))

    def _memo_forall(self, e: ast.Quantifier, live: bool) -> Fn | None:
        """`forall x in C: P(x)` checked incrementally, when P reads only x, scalar
        state and (through `X in S` alone) state collections S.

        Each element's verdict is remembered with the membership queries it made;
        after a step it still stands unless a scalar changed or one of its queried
        keys is in the symmetric difference of S's old and new values (computed
        in C for frozensets). So a step re-checks only what it can have changed.
        """
        if e.kind != "forall" or len(e.binders) != 1 or not self.memoize:
            return None
        b = e.binders[0]
        if len(b.names) != 1 or b.step is not None or isinstance(b.domain, ast.Interval):
            return None
        (x,) = b.names
        names = free_names(e.body, self.defines)
        if names is None or free_names(b.domain, self.defines) is None:
            return None
        names.discard(x)
        scalars = tuple(sorted(n for n in names if n in self.scalar_state))
        colls = {n for n in names if n in self.state_names and n not in self.scalar_state}
        if names - set(scalars) - colls or (
            colls and not membership_only(e.body, colls, self.defines)
        ):
            return None
        colls_t = tuple(sorted(colls))
        dom, body = self.compile(b.domain, False), self.compile(e.body, live)
        return _IncrementalForall(x, scalars, colls_t, dom, body).check

    def pure_function(self, e: ast.Expr, name: str) -> Callable[[Frame, Any], Any]:
        """g(x) for a per-element expression g; remembered per x when g is pure in x."""
        g = self.compile(e, False)
        scalars = self.pure_in(e, name)

        def plain(f: Frame, item: Any) -> Any:
            f.env[name] = item
            return g(f)

        if scalars is None:
            return plain
        memo: dict[Any, Any] = {}
        key_of: list[tuple] = [()]

        def remembered(f: Frame, item: Any) -> Any:
            key = tuple(f.state[n] for n in scalars)
            if key != key_of[0] or len(memo) > 200_000:
                memo.clear()
                key_of[0] = key
            try:
                return memo[item]
            except KeyError:
                value = memo[item] = plain(f, item)
                return value

        return remembered

    def _Aggregate(self, e: ast.Aggregate, live: bool) -> Fn:
        each = self.bindings(e.binders)
        if e.kind == "count" and e.body is None:
            if len(e.binders) == 1 and len(e.binders[0].names) == 1 and e.binders[0].step is None:
                dom = self.compile(e.binders[0].domain, False)
                return lambda f: _size(dom(f))
            return lambda f: sum(1 for _ in each(f))
        body = self.compile(e.body, False) if e.body is not None else None
        assert body is not None
        if e.kind == "count":
            return lambda f: sum(1 for _ in each(f) if body(f))
        return lambda f: _bounded(sum(body(f) for _ in each(f)), e)

    def _pairwise_disjoint_plan(self, e: ast.Quantifier, live: bool) -> Fn | None:
        """`forall a, b in C: disjoint(g(a), g(b))`: sort the intervals, compare neighbours."""
        shape = pairwise_disjoint(e, self.defines)
        if shape is None:
            return None
        x, ga = shape
        b = e.binders[0]
        dom = self.compile(b.domain, False)
        g = self.pure_function(ga, x)

        def plan(f: Frame) -> bool:
            env = f.env
            saved = env.get(x, _MISSING)
            spans = []
            n = 0
            try:
                for item in dom(f):
                    n += 1
                    r = g(f, item)
                    if len(r):
                        spans.append((r.start, r.stop))
            finally:
                _restore(env, x, saved)
            if live and n >= 2:
                f.live += 1
            spans.sort()
            return all(spans[i][1] <= spans[i + 1][0] for i in range(len(spans) - 1))

        return plan

    def _cover_plan(self, e: ast.Quantifier, live: bool) -> Fn | None:
        """`forall q in lo .. hi: exists b in C: q in g(b)`: sweep the sorted intervals g(b)."""
        shape = covered_interval(e, self.defines)
        if shape is None:
            return None
        outer, _, domain, name, g_expr = shape
        assert isinstance(outer.domain, ast.Interval)
        lo_fn, hi_fn = self.compile(outer.domain.lo, False), self.compile(outer.domain.hi, False)
        dom, g = self.compile(domain, False), self.pure_function(g_expr, name)

        def plan(f: Frame) -> bool:
            lo, hi = lo_fn(f), hi_fn(f)
            env = f.env
            saved = env.get(name, _MISSING)
            spans = []
            reaches_atom = live and lo < hi  # the loop would evaluate `q in g(b)`
            try:
                for item in dom(f):
                    if reaches_atom:
                        f.live += 1
                        reaches_atom = False
                    r = g(f, item)
                    # g(b) is an interval: `q in g(b)` with q an int type-checks no other way.
                    if len(r):
                        spans.append((r.start, r.stop))
            finally:
                _restore(env, name, saved)
            spans.sort()
            reach = lo
            for start, stop in spans:
                if start > reach:
                    break
                reach = max(reach, stop)
            return reach >= hi

        return plan

    def _lookup_plan(self, e: ast.Quantifier, live: bool) -> Fn | None:
        """`exists b in C: b.f == E` (E free of b): one hash lookup in an index of C by f."""
        if e.kind != "exists" or len(e.binders) != 1:
            return None
        b = e.binders[0]
        if len(b.names) != 1 or b.step is not None:
            return None
        (x,) = b.names
        body = e.body
        if not (isinstance(body, ast.Binary) and body.op == "=="):
            return None
        for probe, key in ((body.left, body.right), (body.right, body.left)):
            if (
                isinstance(probe, ast.Field)
                and isinstance(probe.obj, ast.Name)
                and probe.obj.id == x
                and not mentions(key, x)
            ):
                break
        else:
            return None
        dom, key_fn, field_name = (
            self.compile(b.domain, False),
            self.compile(key, False),
            probe.name,
        )
        if isinstance(b.domain, ast.Interval):
            return None
        cache: dict[int, tuple[object, frozenset]] = {}

        def lookup(f: Frame) -> bool:
            coll = dom(f)
            hit = cache.get(id(coll))
            if hit is None or hit[0] is not coll:
                if len(cache) > 32:
                    cache.clear()
                hit = (coll, frozenset(getattr(item, field_name) for item in coll))
                cache[id(coll)] = hit
            if live and hit[1]:
                f.live += 1
            return key_fn(f) in hit[1]

        return lookup

    # calls -------------------------------------------------------------------
    def _Call(self, e: ast.Call, live: bool) -> Fn:
        f_name = e.func
        if f_name in self.defines:
            return self._call_define(e, live)
        if f_name == "old":
            inner = self.compile(e.args[0], live)

            def old(f: Frame) -> Any:
                assert f.old is not None, "old() outside an action"
                current = f.state
                f.state = f.old
                try:
                    return inner(f)
                finally:
                    f.state = current

            return old
        if f_name == "raised":
            want = e.args[0].id  # type: ignore[attr-defined]
            return self._counted(lambda f: f.action is not None and f.action.raised == want, live)
        args = [self.compile(a, live) for a in e.args]
        if f_name == "aligned":
            x, n = args
            return self._counted(lambda f: _aligned(x(f), n(f)), live)
        if f_name == "disjoint":
            a, b = args
            return self._counted(lambda f: _disjoint(a(f), b(f)), live)
        if f_name == "contains":
            a, b = args
            return self._counted(lambda f: _contains(a(f), b(f)), live)
        if f_name == "len":
            (a,) = args
            return lambda f: _size(a(f))
        if f_name == "abs":
            (a,) = args
            return lambda f: abs(a(f))
        fn = min if f_name == "min" else max
        a, b = args
        return lambda f: fn(a(f), b(f))

    def _call_define(self, e: ast.Call, live: bool) -> Fn:
        d = self.defines[e.func]
        args = [self.compile(a, live) for a in e.args]
        body = self.compile(d.body, live)
        params = d.params
        if not params:
            return body

        def call(f: Frame) -> Any:
            # A def sees only its parameters (and the state), never the caller's locals.
            outer = f.env
            f.env = dict(zip(params, [a(f) for a in args]))
            try:
                return body(f)
            finally:
                f.env = outer

        return call


_MISSING = object()


def _bound_names(spec: ast.Spec) -> set[str]:
    """Every name a binder, let, def parameter or action parameter introduces."""
    out: set[str] = set()
    for d in spec.defines:
        out.update(d.params)
    for a in spec.actions:
        out.update(a.params)
        if a.result:
            out.add(a.result)

    def walk(e: object) -> None:
        if isinstance(e, ast.Binder):
            out.update(e.names)
        if isinstance(e, ast.Let):
            out.add(e.name)
        if isinstance(e, ast.Expr):
            for v in vars(e).values():
                for x in v if isinstance(v, tuple) else (v,):
                    walk(x[1] if isinstance(x, tuple) and len(x) == 2 else x)

    for item in (*spec.defines, *spec.invariants, *spec.actions):
        walk(item.body)
    return out


def _restore(env: dict, name: str, saved: object) -> None:
    if saved is _MISSING:
        env.pop(name, None)
    else:
        env[name] = saved


_Hit = tuple[bool, int, tuple[tuple[str, Any], ...]]  # verdict, live atoms, queries made


class _IncrementalForall:
    """The state of one incrementally checked `forall x in C: P(x)` (see _memo_forall).

    Full pass: every element, its remembered verdict reused unless a key it
    queried changed. Delta pass (the domain and the queried collections are
    frozensets, the scalars are unchanged and the last verdict was true): only
    the elements added to C and those watching a changed key are evaluated, so
    a step costs what it changed, not the size of C.
    """

    def __init__(
        self, x: str, scalars: tuple[str, ...], colls: tuple[str, ...], dom: Fn, body: Fn
    ) -> None:
        self.x, self.scalars, self.colls, self.dom, self.body = x, scalars, colls, dom, body
        self.memo: dict[Any, _Hit] = {}
        self.watchers: dict[tuple[str, Any], set[Any]] = {}
        self.scalar_key: tuple | None = None
        self.prev: dict[str, Any] = {}
        self.prev_dom: frozenset | None = None
        self.live_total = 0

    def _forget(self, item: Any) -> None:
        hit = self.memo.pop(item, None)
        if hit is None:
            return
        self.live_total -= hit[1]
        for dep in hit[2]:
            w = self.watchers.get(dep)
            if w is not None:
                w.discard(item)
                if not w:
                    del self.watchers[dep]

    def _evaluate(self, f: Frame, item: Any) -> _Hit:
        self._forget(item)
        before = f.live
        f.env[self.x] = item
        f.deps = [] if self.colls else None
        ok = bool(self.body(f))
        hit = (ok, f.live - before, tuple(f.deps or ()))
        f.live = before  # the caller adds the live atoms of the whole domain
        self.memo[item] = hit
        self.live_total += hit[1]
        for dep in hit[2]:
            self.watchers.setdefault(dep, set()).add(item)
        return hit

    def _reset(self) -> None:
        self.memo.clear()
        self.watchers.clear()
        self.live_total = 0
        self.prev_dom = None

    def check(self, f: Frame) -> bool:
        key = tuple(f.state[n] for n in self.scalars)
        if key != self.scalar_key or len(self.memo) > 200_000:
            self._reset()
            self.scalar_key = key
        # Forget, now, every verdict that asked about a key whose answer changed:
        # the memo then holds only valid verdicts, however this pass ends.
        stale: set[Any] = set()
        for n in self.colls:
            cur, old = f.state[n], self.prev.get(n)
            self.prev[n] = cur
            if old is cur:
                continue
            if isinstance(cur, frozenset) and isinstance(old, frozenset):
                for k in cur ^ old:
                    stale.update(self.watchers.get((n, k), ()))
            else:
                self._reset()  # no cheap difference: start again
        for item in stale:
            self._forget(item)
        domain = self.dom(f)
        outer_env, outer_deps = f.env, f.deps
        f.env = {}
        try:
            if isinstance(domain, frozenset) and self.prev_dom is not None:
                ok = self._delta(f, domain, stale)
            else:
                ok = self._full(f, domain)
        finally:
            f.env, f.deps = outer_env, outer_deps
        self.prev_dom = domain if ok and isinstance(domain, frozenset) else None
        return ok

    def _delta(self, f: Frame, domain: frozenset, stale: set[Any]) -> bool:
        """Only what changed: new elements and those whose queried answers changed."""
        assert self.prev_dom is not None
        for item in self.prev_dom - domain:
            self._forget(item)
        for item in (domain - self.prev_dom) | (stale & domain):
            hit = self._evaluate(f, item)
            if not hit[0]:
                f.live += hit[1]
                return False
        f.live += self.live_total
        return True

    def _full(self, f: Frame, domain: Any) -> bool:
        seen = 0
        for item in domain:
            hit = self.memo.get(item)
            if hit is None:
                hit = self._evaluate(f, item)
            f.live += hit[1]
            seen += 1
            if not hit[0]:
                return False
        if len(self.memo) > seen and isinstance(domain, (frozenset, set)):
            # Elements no longer in the domain must not count in live_total.
            for item in [i for i in self.memo if i not in domain]:
                self._forget(item)
        return True


# ------------------------------------------------------------------- properties


@dataclass
class Verdict:
    """The outcome of one evaluation of one property."""

    holds: bool
    live: bool  # false when the evaluation proved nothing (vacuous)
    error: str | None = None  # the property could not be evaluated


class CompiledSpec:
    """A checked spec compiled for concrete evaluation.

    `incremental=False` re-evaluates everything after every step (the reference
    the incremental checking is tested against).
    """

    def __init__(self, checked: CheckedSpec, incremental: bool = True) -> None:
        self.checked = checked
        self.compiler = Compiler(checked)
        self.compiler.memoize = incremental
        self.invariants = {i.name: self.compiler.compile(i.body) for i in checked.spec.invariants}
        self.actions: dict[str, list[tuple[ast.Action, Fn]]] = {}
        for a in checked.spec.actions:
            self.actions.setdefault(a.op, []).append((a, self.compiler.compile(a.body)))

    @property
    def spec(self) -> ast.Spec:
        return self.checked.spec

    def check_invariant(self, name: str, state: Mapping[str, Any]) -> Verdict:
        frame = Frame(state)
        try:
            holds = bool(self.invariants[name](frame))
        except EvalError as err:
            return Verdict(False, True, f"{err} (line {err.node.span.line})")
        return Verdict(holds, frame.live > 0)

    def check_action(
        self,
        act: ast.Action,
        fn: Fn,
        old: Mapping[str, Any],
        new: Mapping[str, Any],
        args: tuple[int, ...],
        result: object,
        raised: str | None,
    ) -> Verdict:
        ctx = ActionContext(dict(zip(act.params, args)), result, raised)
        if act.result is not None:
            ctx.args = {**ctx.args, act.result: result}
        frame = Frame(new, old, action=ctx)
        try:
            holds = bool(fn(frame))
        except EvalError as err:
            return Verdict(False, True, f"{err} (line {err.node.span.line})")
        return Verdict(holds, frame.live > 0)
