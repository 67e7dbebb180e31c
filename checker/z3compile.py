"""The Z3 back end: the same spec AST as the concrete evaluator, compiled to formulas.

Values are Python constants wherever they are known (so a quantifier unrolled
over concrete slots folds most of itself away) and z3 terms where they are not.
A value that depends on a small symbolic choice, such as `2 ** order` for a
symbolic order, is kept as `Cases` (one value per choice) rather than as a
nonlinear term: `aligned(x, 2 ** b.order)` over a concrete pfn x then becomes
a disjunction of constant tests, which the solver handles instantly.

Quantifiers over collections unroll over the encoding's slots, each guarded;
over intervals with symbolic bounds they unroll over the encoding's integer
universe (`universe`, 0..npages for the buddy allocator) with guards.

Bounds the compilation assumes (an encoding chooses them to cover its values):
a symbolic exponent or shift lies in 0..exponent_bound, a symbolic operand of
&, |, ^ and a symbolic interval bound lie in the universe. Outside them a value
is wrong, so a Z3 counterexample is always replayed on the concrete model
before it is reported (an unconfirmed one is reported as such).
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import z3
from mmcheck.checker.symbolic.base import (
    SymCollection,
    SymOptional,
    SymRecord,
    SymState,
    SymStep,
    pow2,
)
from mmcheck.checker.z3collections import (
    SlotIndex,
    SpanTable,
    laminar_cover,
    laminar_disjoint,
    sum_delta,
)
from mmcheck.spec import ast
from mmcheck.spec.analysis import covered_interval, free_names, mentions, pairwise_disjoint
from mmcheck.spec.limits import MAX_INT_BITS, fits, power_fits
from mmcheck.spec.loader import CheckedSpec

MAX_CASES = 256
MAX_SPLIT = 64  # the largest argument domain an action is compiled once per value of


class Unsupported(Exception):
    """A construct the Z3 back end cannot compile (the message names it and where)."""

    def __init__(self, message: str, node: ast.Expr) -> None:
        super().__init__(f"line {node.span.line}: {message}")
        self.node = node


@dataclass(frozen=True)
class Cases:
    """A value chosen by mutually exclusive, exhaustive conditions: [(cond, value)].

    `term`, when set, is the canonical z3 term of the same value (see base.pow2).
    """

    cases: tuple[tuple[Any, Any], ...]
    term: Any = None

    @classmethod
    def over(cls, term: Any, domain: Sequence[int]) -> Cases:
        """A term known to lie in `domain` (the encoding asserts it), as a case split:
        how an encoding hands the compiler an argument of a small finite domain."""
        return cls(tuple((term == d, d) for d in domain), term)


@dataclass(frozen=True)
class SymInterval:
    lo: Any
    hi: Any


class _NoneValue:
    pass


NONE = _NoneValue()


class _Unknown:
    """A value outside the domain a case split models (see Z3Compiler.small_cases)."""


UNKNOWN = _Unknown()


def const(v: Any) -> Any:
    """A z3 literal as a Python constant, anything else unchanged."""
    if isinstance(v, z3.IntNumRef):
        return v.as_long()
    if isinstance(v, z3.BoolRef):
        true_id, false_id = _truth_ids(v.ctx)
        i = v.get_id()  # one call into z3, where is_true/is_false take eight
        if i == true_id:
            return True
        if i == false_id:
            return False
    return v


_TRUTH: dict[int, tuple[z3.Context, int, int]] = {}


def _truth_ids(ctx: z3.Context) -> tuple[int, int]:
    """The ast ids of True and False in a context (z3 shares equal terms)."""
    hit = _TRUTH.get(id(ctx))
    if hit is None or hit[0] is not ctx:
        hit = (ctx, z3.BoolVal(True, ctx).get_id(), z3.BoolVal(False, ctx).get_id())
        _TRUTH[id(ctx)] = hit
    return hit[1], hit[2]


def is_const(v: Any) -> bool:
    return isinstance(v, (int, bool))


def b_and(*xs: Any) -> Any:
    out = []
    for x in xs:
        x = const(x)
        if x is False:
            return False
        if x is not True:
            out.append(x)
    if not out:
        return True
    return out[0] if len(out) == 1 else z3.And(*out)


def b_or(*xs: Any) -> Any:
    """The disjunction, folded: constants, and x or not x (a guard implying itself)."""
    out = []
    for x in xs:
        x = const(x)
        if x is True:
            return True
        if x is not False:
            out.append(x)
    if not out:
        return False
    if 1 < len(out) <= 3 and _complementary(out):  # g -> body, as b_implies makes it
        return True
    return out[0] if len(out) == 1 else z3.Or(*out)


def _complementary(terms: list[Any]) -> bool:
    """Some term of the disjunction (or of a disjunction inside it) is the negation
    of another: `g -> (... or g or ...)`, which guarded unrolling makes often."""
    flat: list[Any] = []
    for t in terms:
        flat.extend(t.children() if z3.is_or(t) else (t,))
    ids = {t.get_id() for t in flat}
    return any(z3.is_not(t) and t.arg(0).get_id() in ids for t in flat)


def b_not(x: Any) -> Any:
    x = const(x)
    if is_const(x):
        return not x
    return z3.Not(x)


def b_implies(a: Any, b: Any) -> Any:
    return b_or(b_not(a), b)


def b_iff(a: Any, b: Any) -> Any:
    a, b = const(a), const(b)
    if is_const(a) and is_const(b):
        return a == b
    if is_const(a):
        return b if a else b_not(b)
    if is_const(b):
        return a if b else b_not(a)
    return a == b


def to_term(v: Any) -> Any:
    """A value as a single z3 term (Cases become an If chain)."""
    if isinstance(v, Cases):
        if v.term is not None:
            return v.term
        (c0, v0), *rest = v.cases
        term = to_term(v0) if not rest else None
        if rest:
            term = to_term(rest[-1][1])
            for c, val in reversed(((c0, v0), *rest[:-1])):
                term = z3.If(_as_bool(c), to_term(val), term)
        return term
    if v is True or v is False:
        return z3.BoolVal(v)
    if isinstance(v, int):
        return z3.IntVal(v)
    return v


def _as_bool(c: Any) -> Any:
    return z3.BoolVal(c) if isinstance(c, bool) else c


def lift(fn: Any, *vals: Any) -> Any:
    """Apply fn to values, splitting over Cases; folds when every case agrees."""
    idx = next((i for i, v in enumerate(vals) if isinstance(v, Cases)), None)
    if idx is None:
        return fn(*vals)
    cases = []
    for c, v in vals[idx].cases:  # type: ignore[union-attr]
        sub = list(vals)
        sub[idx] = v
        cases.append((c, lift(fn, *sub)))
    return _cases(cases)


def _cases(cases: list[tuple[Any, Any]]) -> Any:
    flat: list[tuple[Any, Any]] = []
    for c, v in cases:
        c = const(c)
        if c is False:
            continue
        if isinstance(v, Cases):
            flat.extend((b_and(c, c2), v2) for c2, v2 in v.cases)
        else:
            flat.append((c, v))
    values = [v for _, v in flat]
    if all(is_const(v) and not isinstance(v, bool) for v in values) or all(
        isinstance(v, bool) for v in values
    ):
        if len(set(values)) == 1:
            return values[0]
    if all(isinstance(v, bool) or isinstance(v, z3.BoolRef) for v in values):
        # A boolean chosen by cases is a disjunction of (cond and value).
        return b_or(*(b_and(c, v) for c, v in flat))
    if len(flat) > MAX_CASES:
        return to_term(Cases(tuple(flat)))
    if len(flat) == 1:
        return flat[0][1]
    return Cases(tuple(flat))


def _arith(op: str, a: Any, b: Any) -> Any:
    a, b = const(a), const(b)
    if is_const(a) and is_const(b):
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op in ("/", "//"):
            return a // b if b else 0
        if op == "%":
            return a % b if b else 0
        if op == "<<":
            return a << b if 0 <= b < 4096 else 0
        if op == ">>":
            return a >> b if 0 <= b < 4096 else 0
        if op == "&":
            return a & b
        if op == "|":
            return a | b
        if op == "^":
            return a ^ b
        if op == "**":
            return a**b if 0 <= b <= 4096 else 0
    if op == "+":
        return to_term(a) + to_term(b)
    if op == "-":
        return to_term(a) - to_term(b)
    if op == "*":
        return to_term(a) * to_term(b)
    if op in ("/", "//") and is_const(b) and b > 0:
        return to_term(a) / b  # z3 Int division floors for positive divisors
    if op == "%" and is_const(b) and b > 0:
        return to_term(a) % b
    raise _NeedsCases(op)


class _NeedsCases(Exception):
    pass


_COMPARE = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
            ">": operator.gt, ">=": operator.ge}


def _cmp(op: str, a: Any, b: Any) -> Any:
    """a op b, folded when both are known; only `op` is built (a Bool field has
    == and != but no order)."""
    a, b = const(a), const(b)
    if is_const(a) and is_const(b):
        return _COMPARE[op](a, b)
    ta, tb = to_term(a), to_term(b)
    if ta.eq(tb):  # the same term (z3 shares equal terms): a sum equal to itself
        return op in ("==", "<=", ">=")
    if z3.is_int(ta) and (z3.is_add(ta) or z3.is_sub(ta)):
        delta = sum_delta(ta, tb)  # a sum before and after a step: compare the change
        if delta is not None:
            return delta[0].compare(op, -delta[1])
    return _COMPARE[op](ta, tb)


class Z3Compiler:
    """Compiles one checked spec's properties over symbolic states and steps."""

    def __init__(self, checked: CheckedSpec, universe: range, exponent_bound: int = 24) -> None:
        self.checked = checked
        self.spec = checked.spec
        self.defines = {d.name: d for d in self.spec.defines}
        self.universe = universe
        self.exponent_bound = exponent_bound
        self.records = {r.name: [n for n, _ in r.fields] for r in checked.vocabulary.records}
        # Caches keyed by object ids; each entry keeps its key objects alive.
        self._indexes: dict[int, SlotIndex] = {}
        self._span_cache: dict[tuple[int, ...], tuple[Any, list[tuple[Any, Any]]]] = {}
        self._tables: dict[int, tuple[Any, SpanTable]] = {}
        self._fixed_cache: dict[int, tuple[Any, Any]] = {}
        self._reads: dict[int, tuple[ast.Expr, set[str] | None]] = {}
        self._calls: dict[tuple[Any, ...], tuple[Any, Any]] = {}

    # -- entry points
    def invariant(self, inv: ast.Invariant, s: SymState) -> Any:
        return to_term(self.expr(inv.body, _Env(s, None, None, {})))

    def action(self, act: ast.Action, old: SymState, t: SymStep, new: SymState) -> Any:
        """The action's body on step t, as a formula that holds when t is not this op."""
        body = self._split(act, t, lambda names: self.expr(act.body, _Env(new, old, t, names)))
        return to_term(b_implies(t.is_op[act.op], body))

    def action_premises(self, act: ast.Action, old: SymState, t: SymStep, new: SymState,
                        raised: bool = False) -> list[Any]:
        """Goals for a step on which act says something: t runs act's operation,
        raising or not as `raised` says, and first the premise of a top-level `->`
        (else nothing more), then, for a conjunction of implications, the premise of
        each. (A property about failures, `raised -> unchanged`, says something only
        on a step that raised.)"""
        ran = b_and(t.is_op[act.op], t.raised if raised else b_not(t.raised))
        goals = []
        for left in _premises(act.body):
            premise: Any = True
            if left is not None:
                premise = self._split(
                    act, t, lambda names, e=left: self.expr(e, _Env(new, old, t, names)))
            goals.append(to_term(b_and(ran, premise)))
        return goals

    def _names(self, act: ast.Action, t: SymStep) -> dict[str, Any]:
        """The action's parameter and result names bound to step t's terms."""
        names: dict[str, Any] = dict(zip(act.params, (t.args[act.op][p] for p in t.args[act.op])))
        if act.result is not None:
            r = t.results[act.op]
            # An operation that raised returned nothing, as in a concrete trace.
            names[act.result] = (
                SymOptional(b_or(r.is_none, t.raised), r.value) if isinstance(r, SymOptional) else r
            )
        return names

    def _split(self, act: ast.Action, t: SymStep, compile_with: Any) -> Any:
        """compile_with(names), once per value of each argument whose domain the
        encoding declares small (SymStep.domains), with that argument a constant:
        And(the argument is one of them, each value -> its formula). Without such
        domains, once with the symbolic arguments."""
        names = self._names(act, t)
        domains = t.domains.get(act.op, {})
        small = [(mine, domains[theirs]) for mine, theirs in zip(act.params, t.args[act.op])
                 if theirs in domains and len(domains[theirs]) <= MAX_SPLIT]
        combos = 1
        for _, dom in small:
            combos *= len(dom)
        if not small or combos > MAX_CASES:
            return compile_with(names)
        conds, parts = [], []
        for values in itertools.product(*(dom for _, dom in small)):
            fixed = {p: v for (p, _), v in zip(small, values)}
            cond = b_and(*(_cmp("==", names[p], v) for p, v in fixed.items()))
            conds.append(cond)
            parts.append(b_implies(cond, compile_with({**names, **fixed})))
        return b_and(b_or(*conds), *parts)

    # -- expressions
    def expr(self, e: ast.Expr, env: _Env) -> Any:
        return getattr(self, "_" + type(e).__name__)(e, env)

    def _IntLit(self, e: ast.IntLit, env: _Env) -> Any:
        return e.value

    def _BoolLit(self, e: ast.BoolLit, env: _Env) -> Any:
        return e.value

    def _NoneLit(self, e: ast.NoneLit, env: _Env) -> Any:
        return NONE

    def _Name(self, e: ast.Name, env: _Env) -> Any:
        if e.id in env.names:
            return env.names[e.id]
        if e.id == "raised":
            assert env.step is not None
            return env.step.raised
        if e.id in self.defines:
            return self._Call(ast.Call(e.span, e.id, ()), env)
        if e.id not in env.state.values:
            # An encoding may leave out what it does not model (a reference's white box).
            raise Unsupported(f"'{e.id}' is not part of the symbolic encoding", e)
        return env.state.values[e.id]

    def _Field(self, e: ast.Field, env: _Env) -> Any:
        obj = self.expr(e.obj, env)

        def get(o: Any) -> Any:
            if isinstance(o, SymInterval):
                return o.lo if e.name == "lo" else o.hi
            if isinstance(o, SymRecord):
                return const(o.fields[e.name])
            raise Unsupported(f"field '.{e.name}' of {type(o).__name__}", e)

        return lift(get, obj)

    def _RecordLit(self, e: ast.RecordLit, env: _Env) -> Any:
        return SymRecord(e.type_name, {n: self.expr(v, env) for n, v in e.fields})

    def _Unary(self, e: ast.Unary, env: _Env) -> Any:
        v = self.expr(e.operand, env)
        if e.op == "not":
            return lift(b_not, v)
        return lift(lambda x: _arith("-", 0, x), v)

    def _Binary(self, e: ast.Binary, env: _Env) -> Any:
        op = e.op
        if op in ("and", "or", "->", "<->"):
            a = self.expr(e.left, env)
            if op == "and" and const(a) is False:
                return False
            if op == "->" and const(a) is False:
                return True
            if op == "or" and const(a) is True:
                return True
            b = self.expr(e.right, env)
            fn = {"and": b_and, "or": b_or, "->": b_implies, "<->": b_iff}[op]
            return lift(fn, a, b)
        a, b = self.expr(e.left, env), self.expr(e.right, env)
        if op in ("in", "not in"):
            r = self.member(a, b, e)
            return b_not(r) if op == "not in" else r
        if op in ("==", "!="):
            r = self.equal(a, b, e)
            return b_not(r) if op == "!=" else r
        if op in ("<", "<=", ">", ">="):
            return lift(lambda x, y: _cmp(op, self.num(x), self.num(y)), a, b)
        if op == "+" and isinstance(a, SymCollection):
            return SymCollection(a.element_type, a.slots + b.slots)
        return self.arith(op, a, b, e)

    def num(self, v: Any) -> Any:
        """An int-like value: an optional that the type checker proved not none is its value."""
        if isinstance(v, SymOptional):
            return v.value
        return v

    def arith(self, op: str, a: Any, b: Any, e: ast.Expr) -> Any:
        a, b = const(self.num(a)), const(self.num(b))
        if op == "**" and const(a) == 2 and not is_const(b) and not isinstance(b, Cases):
            # 2 ** k: a case split with the canonical term shared with encodings.
            k = to_term(b)
            cases = [(k == j, 1 << j) for j in range(self.exponent_bound)]
            cases.append((z3.Or(k < 0, k >= self.exponent_bound), 0))
            return Cases(tuple(cases), pow2(k, self.exponent_bound))
        if op in ("**", "<<", ">>") and not is_const(b) and not isinstance(b, Cases):
            b = self.small_cases(b)
        elif op in ("%", "/", "//") and not is_const(b) and not isinstance(b, Cases):
            # A divisor that is neither known nor a case split: exact, if nonlinear.
            return lift(
                lambda x: {"%": to_term(x) % to_term(b)}.get(op, to_term(x) / to_term(b)), a
            )
        elif op in ("&", "|", "^") and not is_const(b) and not isinstance(b, Cases):
            b = self.small_cases(b, self.universe)
        if op in ("<<", ">>", "&", "|", "^") and not is_const(a) and not isinstance(a, Cases):
            a = self.small_cases(a, self.universe)

        def go(x: Any, y: Any) -> Any:
            if x is UNKNOWN or y is UNKNOWN:
                return z3.FreshInt("unmodelled")
            if op == "**" and is_const(x) and is_const(y) and not power_fits(x, y):
                raise Unsupported(f"a value with more than {MAX_INT_BITS:,} bits", e)
            try:
                v = _arith(op, x, y)
            except _NeedsCases:
                raise Unsupported(f"'{op}' between two symbolic values", e) from None
            if is_const(v) and not fits(v):  # as the concrete evaluator (spec/limits.py)
                raise Unsupported(f"a value with more than {MAX_INT_BITS:,} bits", e)
            return v

        return lift(go, a, b)

    def small_cases(self, v: Any, domain: range | None = None) -> Cases:
        """A symbolic int as Cases over a small domain (an exponent, a shift, a divisor).

        Outside the domain the value is UNKNOWN: whatever it feeds becomes a fresh,
        unconstrained term, so a proof cannot rest on a value the compilation did
        not model (a counterexample that does is replayed, and not confirmed)."""
        dom = domain if domain is not None else range(0, self.exponent_bound + 1)
        term = to_term(v)
        cases: list[tuple[Any, Any]] = [(term == k, k) for k in dom]
        inside = z3.And(term >= dom.start, term < dom.stop)
        cases.append((z3.Not(inside), UNKNOWN))
        return Cases(tuple(cases))

    def equal(self, a: Any, b: Any, e: ast.Expr) -> Any:
        if a is NONE and b is NONE:
            return True
        if b is NONE and isinstance(a, SymOptional):
            return a.is_none
        if a is NONE and isinstance(b, SymOptional):
            return b.is_none
        if isinstance(a, SymOptional) and isinstance(b, SymOptional):
            return b_and(a.is_none == b.is_none, b_or(a.is_none, _cmp("==", a.value, b.value)))
        if isinstance(a, SymOptional):
            return b_and(b_not(a.is_none), lift(lambda y: _cmp("==", a.value, y), b))
        if isinstance(b, SymOptional):
            return self.equal(b, a, e)
        if isinstance(a, SymRecord) and isinstance(b, SymRecord):
            return b_and(*(self.equal(a.fields[k], b.fields[k], e) for k in a.fields))
        if isinstance(a, SymInterval) and isinstance(b, SymInterval):
            return b_and(self.equal(a.lo, b.lo, e), self.equal(a.hi, b.hi, e))
        if isinstance(a, Cases) and isinstance(b, Cases) and a.term is not None \
                and b.term is not None:
            return a.term == b.term  # one atom, not a split over every pair of cases
        return lift(lambda x, y: _cmp("==", x, y), a, b)

    def member(self, x: Any, coll: Any, e: ast.Expr) -> Any:
        if isinstance(coll, SymInterval):
            return lift(
                lambda v, lo, hi: b_and(_cmp("<=", lo, v), _cmp("<", v, hi)),
                self.num(x),
                coll.lo,
                coll.hi,
            )
        if isinstance(coll, SymCollection):
            return b_or(*(b_and(g, self.equal(x, rec, e)) for g, rec in self._candidates(x, coll)))
        raise Unsupported("'in' needs an interval or a collection", e)

    def _Interval(self, e: ast.Interval, env: _Env) -> Any:
        return SymInterval(self.num(self.expr(e.lo, env)), self.num(self.expr(e.hi, env)))

    def _IfElse(self, e: ast.IfElse, env: _Env) -> Any:
        c = const(self.expr(e.cond, env))
        if c is True:
            return self.expr(e.then, env)
        if c is False:
            return self.expr(e.orelse, env)
        return _cases([(c, self.expr(e.then, env)), (b_not(c), self.expr(e.orelse, env))])

    def _Let(self, e: ast.Let, env: _Env) -> Any:
        return self.expr(e.body, env.bind({e.name: self.expr(e.value, env)}))

    # -- quantifiers
    def assignments(self, binders: tuple[ast.Binder, ...], env: _Env) -> Iterator[tuple[Any, _Env]]:
        """Every assignment of the binders: (guard, env with the names bound)."""
        if not binders:
            yield True, env
            return
        b, rest = binders[0], binders[1:]
        dom = self.expr(b.domain, env)
        if isinstance(dom, SymCollection):
            slots = list(dom.slots)
            if len(b.names) == 1:
                combos: Any = ((s,) for s in slots)
            else:
                combos = itertools.permutations(slots, len(b.names))
            for combo in combos:
                guard = b_and(*(g for g, _ in combo))
                if guard is False:
                    continue
                inner = env.bind({n: rec for n, (_, rec) in zip(b.names, combo)})
                for g2, env2 in self.assignments(rest, inner):
                    yield b_and(guard, g2), env2
            return
        if not isinstance(dom, SymInterval):
            raise Unsupported("a quantifier over something that is not a collection or interval", b)
        step = self.expr(b.step, env) if b.step is not None else 1
        lo, hi = const(dom.lo), const(dom.hi)
        values = range(lo, hi) if is_const(lo) and is_const(hi) else self.universe
        if len(b.names) > 1:
            raise Unsupported("'x, y in lo .. hi' over an interval", b)
        (name,) = b.names
        fixed = is_const(lo) and is_const(hi)
        step = const(step)
        if not is_const(step) and not isinstance(step, Cases):
            step = self.small_cases(step, range(1, self.universe.stop + 1))
        if fixed and is_const(step) and step > 0:
            values = range(lo, hi, step)  # the values on the step, not every integer
        for i in values:
            inside = True if fixed else b_and(_cmp("<=", dom.lo, i), _cmp("<", i, dom.hi))
            guard = b_and(inside, self._on_step(i, dom.lo, step))
            if guard is False:
                continue
            for g2, env2 in self.assignments(rest, env.bind({name: i})):
                yield b_and(guard, g2), env2

    def _on_step(self, i: int, lo: Any, step: Any) -> Any:
        """i is lo plus a multiple of step."""
        if const(step) == 1:
            return True
        if not is_const(const(lo)):
            raise Unsupported(
                "'step' over an interval with a symbolic start", ast.NoneLit(ast.NOWHERE)
            )
        offset = i - const(lo)
        return lift(
            lambda sv: z3.FreshBool("unmodelled") if sv is UNKNOWN
            else _cmp("==", _arith("%", offset, sv), 0) if const(sv) != 0 else False, step
        )

    def _Quantifier(self, e: ast.Quantifier, env: _Env) -> Any:
        for plan in (self._disjoint_plan, self._cover_plan, self._overlap_plan,
                     self._lookup_plan):
            out = plan(e, env)
            if out is not None:
                return out
        parts = []
        for guard, inner in self.assignments(e.binders, env):
            body = self.expr(e.body, inner)
            if e.kind == "forall":
                parts.append(lift(lambda bv, g=guard: b_implies(g, bv), body))
            else:
                parts.append(lift(lambda bv, g=guard: b_and(g, bv), body))
        return b_and(*parts) if e.kind == "forall" else b_or(*parts)

    # -- plans over structured collections (z3collections.py); None: unroll instead

    def _candidates(self, x: Any, coll: SymCollection) -> Sequence[tuple[Any, Any]]:
        """The slots of coll that may equal x: by the index of its constant fields."""
        if not isinstance(x, SymRecord) or not coll.slots:
            return coll.slots
        known = {}
        for name, v in x.fields.items():
            v = const(v)
            if is_const(v) and not isinstance(v, bool):
                known[name] = v
        picked = self._index(coll).candidates(known)
        return coll.slots if picked is None else [coll.slots[i] for i in picked]

    def _index(self, coll: SymCollection) -> SlotIndex:
        key = id(coll.slots)
        if key not in self._indexes:
            self._indexes[key] = SlotIndex(coll.slots)
        return self._indexes[key]

    def _spans(self, dom: SymCollection, name: str, g: ast.Expr,
               env: _Env) -> list[tuple[Any, Any]]:
        """(guard, g(slot)) for every slot that may be present; computed once per
        collection and state when g reads no local name but `name`."""
        if id(g) not in self._reads:
            self._reads[id(g)] = (g, free_names(g, self.defines))
        reads = self._reads[id(g)][1]
        key = None
        if reads is not None and not (reads - {name}) & set(env.names):
            key = (id(dom.slots), id(g), id(env.state), id(env.old))
            hit = self._span_cache.get(key)
            if hit is not None:
                return hit[1]
        out = [(guard, self.expr(g, env.bind({name: rec}))) for guard, rec in dom.slots
               if const(guard) is not False]
        if key is not None:
            self._span_cache[key] = ((dom.slots, env.state, env.old), out)
        return out

    def _disjoint_plan(self, e: ast.Quantifier, env: _Env) -> Any:
        """`forall a, b in C: disjoint(g(a), g(b))`: over nested constant intervals a
        forest with shared terms (O(n)); else each unordered pair once."""
        shape = pairwise_disjoint(e, self.defines)
        if shape is None:
            return None
        name, g = shape
        dom = self.expr(e.binders[0].domain, env)
        if not isinstance(dom, SymCollection):
            raise Unsupported("pairs over something that is not a collection", e)
        spans = self._spans(dom, name, g, env)
        fixed = _const_spans(spans)
        if fixed is not None:
            folded = laminar_disjoint(fixed)
            if folded is not None:
                return folded
        parts = []
        for (ga, a), (gb, b) in itertools.combinations(spans, 2):
            guard = b_and(ga, gb)
            if guard is False:
                continue
            parts.append(b_implies(guard, self.disjoint(a, b)))
        return b_and(*parts)

    def _cover_plan(self, e: ast.Quantifier, env: _Env) -> Any:
        """`forall q in lo .. hi: exists b in C: q in g(b)` over constant intervals:
        shared "all of x is covered" terms over the nesting forest."""
        shape = covered_interval(e, self.defines)
        if shape is None:
            return None
        outer, _, domain, name, g = shape
        assert isinstance(outer.domain, ast.Interval)
        lo = const(self.num(self.expr(outer.domain.lo, env)))
        hi = const(self.num(self.expr(outer.domain.hi, env)))
        dom = self.expr(domain, env)
        if not (is_const(lo) and is_const(hi) and isinstance(dom, SymCollection)):
            return None
        fixed = _const_spans(self._spans(dom, name, g, env))
        return None if fixed is None else laminar_cover(fixed, lo, hi)

    def _overlap_plan(self, e: ast.Quantifier, env: _Env) -> Any:
        """`exists a in C: not disjoint(g(a), E)` and `forall a in C: disjoint(g(a), E)`
        with E free of a: g computed once per slot; a sorted table of constant
        intervals answers for a constant E."""
        shape = _overlap_shape(e)
        if shape is None:
            return None
        name, g, other = shape
        dom = self.expr(e.binders[0].domain, env)
        if not isinstance(dom, SymCollection):
            return None
        spans = self._spans(dom, name, g, env)
        target = self.expr(other, env)
        if not isinstance(target, SymInterval):
            return None
        lo, hi = const(target.lo), const(target.hi)
        fixed = self._fixed(spans)
        if fixed is not None and is_const(lo) and is_const(hi):
            meets = b_or(*self._table(spans, fixed).overlapping(lo, hi))
        elif fixed is not None:
            meets = _meets_symbolic(fixed, target)
        else:
            meets = b_or(*(b_and(gd, b_not(self.disjoint(sp, target))) for gd, sp in spans))
        return meets if e.kind == "exists" else b_not(meets)

    def _table(self, spans: list[tuple[Any, Any]], fixed: list[tuple[Any, int, int]]) -> SpanTable:
        key = id(spans)
        if key not in self._tables:
            self._tables[key] = (spans, SpanTable(fixed))
        return self._tables[key][1]

    def _fixed(self, spans: list[tuple[Any, Any]]) -> list[tuple[Any, int, int]] | None:
        """_const_spans(spans), once per spans list."""
        key = id(spans)
        if key not in self._fixed_cache:
            self._fixed_cache[key] = (spans, _const_spans(spans))
        return self._fixed_cache[key][1]

    def _lookup_plan(self, e: ast.Quantifier, env: _Env) -> Any:
        """`exists p in C: p.f == E` (E free of p, constant): the slots with f == E."""
        if e.kind != "exists" or len(e.binders) != 1:
            return None
        b = e.binders[0]
        body = e.body
        if len(b.names) != 1 or b.step is not None or not (
                isinstance(body, ast.Binary) and body.op == "=="):
            return None
        (x,) = b.names
        for probe, other in ((body.left, body.right), (body.right, body.left)):
            if (isinstance(probe, ast.Field) and isinstance(probe.obj, ast.Name)
                    and probe.obj.id == x and not mentions(other, x)):
                dom = self.expr(b.domain, env)
                value = const(self.num(self.expr(other, env)))
                if not isinstance(dom, SymCollection) or not is_const(value):
                    return None
                table = self._index(dom).by_field.get(probe.name) if dom.slots else {}
                if table is None:
                    return None
                return b_or(*(dom.slots[i][0] for i in table.get(value, [])))
        return None

    def disjoint(self, a: SymInterval, b: SymInterval) -> Any:
        alo, blo = const(a.lo), const(b.lo)
        if is_const(alo) and is_const(blo):
            # With known starts, only the lower interval's end matters (or an empty one).
            if alo > blo:
                a, b, alo, blo = b, a, blo, alo
            empty_a = lift(lambda hi: _cmp("<=", hi, alo), a.hi)
            empty_b = lift(lambda hi: _cmp("<=", hi, blo), b.hi)
            if alo == blo:
                return b_or(empty_a, empty_b)
            return b_or(lift(lambda hi: _cmp("<=", hi, blo), a.hi), empty_a, empty_b)
        return lift(
            lambda alo, ahi, blo, bhi: b_or(
                _cmp("<=", ahi, alo),
                _cmp("<=", bhi, blo),
                _cmp("<=", ahi, blo),
                _cmp("<=", bhi, alo),
            ),
            a.lo,
            a.hi,
            b.lo,
            b.hi,
        )

    def _Aggregate(self, e: ast.Aggregate, env: _Env) -> Any:
        terms = []
        for guard, inner in self.assignments(e.binders, env):
            if e.kind == "count":
                cond = b_and(guard, self.expr(e.body, inner)) if e.body is not None else guard
                cond = const(cond)
                if cond is True:
                    terms.append(1)
                elif cond is not False:
                    terms.append(z3.If(to_term(cond), 1, 0))
            else:
                assert e.body is not None
                value = self.num(self.expr(e.body, inner))
                g = const(guard)
                if g is True:
                    terms.append(value)
                elif g is not False:
                    terms.append(z3.If(to_term(g), to_term(value), 0))
        consts = sum(t for t in terms if isinstance(t, int) and not isinstance(t, bool))
        symbolic = [
            to_term(t) for t in terms if not (isinstance(t, int) and not isinstance(t, bool))
        ]
        if not symbolic:
            return consts
        return (
            z3.Sum(*symbolic) + consts
            if consts
            else (z3.Sum(*symbolic) if len(symbolic) > 1 else symbolic[0])
        )

    # -- calls
    def _Call(self, e: ast.Call, env: _Env) -> Any:
        f = e.func
        if f in self.defines:
            d = self.defines[f]
            args = {p: self.expr(a, env) for p, a in zip(d.params, e.args)}
            return self._define(d, args, env)
        if f == "old":
            if env.old is None:
                raise Unsupported("old() outside an action", e)
            return self.expr(e.args[0], _Env(env.old, None, env.step, env.names))
        if f == "raised":
            assert env.step is not None
            return self._raised_as(e, env.step)
        args = [self.expr(a, env) for a in e.args]
        if f == "aligned":
            x, n = (self.num(a) for a in args)
            return lift(self._aligned, x, n)
        if f == "disjoint":
            return self.disjoint(*args)
        if f == "contains":
            a, b = args
            if isinstance(b, SymInterval):
                return lift(
                    lambda alo, ahi, blo, bhi: b_or(
                        _cmp("<=", bhi, blo), b_and(_cmp("<=", alo, blo), _cmp("<=", bhi, ahi))
                    ),
                    a.lo,
                    a.hi,
                    b.lo,
                    b.hi,
                )
            return self.member(b, a, e)
        if f == "len":
            (a,) = args
            if isinstance(a, SymInterval):
                return lift(
                    lambda lo, hi: max(hi - lo, 0)
                    if is_const(lo) and is_const(hi)
                    else z3.If(to_term(hi) >= to_term(lo), to_term(hi) - to_term(lo), 0),
                    const(a.lo),
                    const(a.hi),
                )
            return self._count_slots(a)
        if f == "abs":
            (a,) = args
            return lift(
                lambda x: (
                    abs(x) if is_const(x) else z3.If(to_term(x) >= 0, to_term(x), -to_term(x))
                ),
                self.num(a),
            )
        a, b = (self.num(x) for x in args)
        if f == "min":
            return lift(
                lambda x, y: (
                    min(x, y)
                    if is_const(x) and is_const(y)
                    else z3.If(to_term(x) <= to_term(y), to_term(x), to_term(y))
                ),
                a,
                b,
            )
        return lift(
            lambda x, y: (
                max(x, y)
                if is_const(x) and is_const(y)
                else z3.If(to_term(x) >= to_term(y), to_term(x), to_term(y))
            ),
            a,
            b,
        )

    def _define(self, d: ast.Define, args: dict[str, Any], env: _Env) -> Any:
        """A define's body with its parameters bound to `args`, compiled once per
        define, state (old state, step) and argument values: its body sees nothing
        else (a define's call is the same formula wherever it is made), so the calls
        an action repeats (a helper called for every zone, every split value) share it.
        Arguments are matched by value when they are Python constants, else by identity
        (the entry holds them, so an id is never reused while it stands)."""
        key = (d.name, id(env.state), id(env.old), id(env.step),
               *((type(v), v) if is_const(v) else (None, id(v)) for v in args.values()))
        hit = self._calls.get(key)
        if hit is not None:
            return hit[1]
        out = self.expr(d.body, _Env(env.state, env.old, env.step, args))
        self._calls[key] = ((env.state, env.old, env.step, tuple(args.values())), out)
        return out

    @staticmethod
    def _raised_as(e: ast.Call, step: SymStep) -> Any:
        """raised(E): the step raised E (`raised` itself where the encoding tells no
        exceptions apart; False for an exception it never raises)."""
        if not e.args or not step.raised_as:
            return step.raised
        return step.raised_as.get(e.args[0].id, False)  # type: ignore[attr-defined]

    @staticmethod
    def _aligned(x: Any, n: Any) -> Any:
        n = const(n)
        if is_const(n):
            return n != 0 and _cmp("==", _arith("%", x, n), 0)
        # A divisor that is neither known nor a small case split: nonlinear, but exact.
        return z3.And(to_term(n) != 0, to_term(x) % to_term(n) == 0)

    def _count_slots(self, c: SymCollection) -> Any:
        terms = [
            z3.If(to_term(g), 1, 0) if not is_const(const(g)) else int(const(g)) for g, _ in c.slots
        ]
        return z3.Sum(*[to_term(t) for t in terms]) if terms else 0


def _const_spans(spans: list[tuple[Any, Any]]) -> list[tuple[Any, int, int]] | None:
    """(guard, lo, hi) when every value is an interval with constant bounds, else None."""
    out = []
    for guard, sp in spans:
        if not isinstance(sp, SymInterval):
            return None
        lo, hi = const(sp.lo), const(sp.hi)
        if not (is_const(lo) and is_const(hi)) or isinstance(lo, bool) or isinstance(hi, bool):
            return None
        out.append((const(guard), lo, hi))
    return out


def _meets_symbolic(fixed: list[tuple[Any, int, int]], target: SymInterval) -> Any:
    """Some present constant interval shares a point with the symbolic `target`:
    target nonempty, and for some interval a .. b, target.lo < b and a < target.hi
    (each distinct bound's atom made once)."""
    lo, hi = to_term(target.lo), to_term(target.hi)
    below: dict[int, Any] = {}
    above: dict[int, Any] = {}
    parts = []
    for guard, a, b in fixed:
        if guard is False or b <= a:
            continue
        if b not in below:
            below[b] = lo < b
        if a not in above:
            above[a] = hi > a
        parts.append(z3.And(below[b], above[a]) if guard is True
                     else z3.And(to_term(guard), below[b], above[a]))
    if not parts:
        return False
    return b_and(lo < hi, z3.Or(*parts) if len(parts) > 1 else parts[0])


def _overlap_shape(e: ast.Quantifier) -> tuple[str, ast.Expr, ast.Expr] | None:
    """For `exists a in C: not disjoint(X, Y)` / `forall a in C: disjoint(X, Y)` with
    exactly one of X, Y mentioning a: (a, that one, the other)."""
    if len(e.binders) != 1 or len(e.binders[0].names) != 1 or e.binders[0].step is not None:
        return None
    (name,) = e.binders[0].names
    body = e.body
    if e.kind == "exists":
        if not (isinstance(body, ast.Unary) and body.op == "not"):
            return None
        body = body.operand
    if not (isinstance(body, ast.Call) and body.func == "disjoint" and len(body.args) == 2):
        return None
    x, y = body.args
    if mentions(x, name) and not mentions(y, name):
        return name, x, y
    if mentions(y, name) and not mentions(x, name):
        return name, y, x
    return None


@dataclass(frozen=True)
class _Env:
    state: SymState
    old: SymState | None
    step: SymStep | None
    names: Mapping[str, Any]

    def bind(self, more: Mapping[str, Any]) -> _Env:
        return _Env(self.state, self.old, self.step, {**self.names, **more})


def _premises(body: ast.Expr) -> list[ast.Expr | None]:
    """What a body's goals assume: `A -> B`: [A]; a conjunction of implications:
    [None (nothing), then the premise of each]; anything else: [None]."""
    if isinstance(body, ast.Binary) and body.op == "->":
        return [body.left]
    return [None, *_implications(body)]


def _implications(body: ast.Expr) -> list[ast.Expr]:
    """The premises of the implications a top-level conjunction states."""
    if isinstance(body, ast.Binary) and body.op == "->":
        return [body.left]
    if isinstance(body, ast.Binary) and body.op == "and":
        return _implications(body.left) + _implications(body.right)
    return []
