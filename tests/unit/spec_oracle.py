"""A slow, direct reading of the spec language's semantics: the oracle for the evaluator.

Written from docs/spec-language.md, not from checker/evaluate.py: no plans, no
memo, no closures; each node is evaluated by walking the tree with a plain dict
of bound names. Intervals are `Iv(lo, hi)` pairs, collections plain lists. It
also counts live atoms by the documented rule (comparisons, `in`, aligned,
disjoint, contains and `raised`, except inside an implication's premise, a
binder's domain or step, or an aggregate; and reads of `bool` fields), so
vacuity can be compared too.

Used by test_evaluate.py and test_spec_fuzz.py (imported as a sibling module).
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from mmcheck.model.vocabulary import Vocabulary
from mmcheck.spec import ast


class Undefined(Exception):
    """The value does not exist: division by zero, a negative exponent, a zero step."""


@dataclass(frozen=True)
class Iv:
    """The interval lo .. hi: the integers i with lo <= i < hi (empty when hi <= lo)."""

    lo: int
    hi: int

    def __contains__(self, x: object) -> bool:
        return isinstance(x, int) and self.lo <= x < self.hi

    def __len__(self) -> int:
        return max(self.hi - self.lo, 0)

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.lo, self.hi))


def from_python(v: Any) -> Any:
    """A value the evaluator returned, in the oracle's representation."""
    if isinstance(v, range):
        return Iv(v.start, v.stop)
    return v


class Oracle:
    """Evaluates expressions of one parsed spec over one state (and one step)."""

    def __init__(
        self,
        spec: ast.Spec,
        vocabulary: Vocabulary,
        state: Mapping[str, Any],
        old: Mapping[str, Any] | None = None,
        args: Mapping[str, Any] | None = None,
        raised: str | None = None,
    ) -> None:
        self.defines = {d.name: d for d in spec.defines}
        self.records = {
            r.name: collections.namedtuple(r.name, [n for n, _ in r.fields])
            for r in vocabulary.records
        }
        self.state, self.old = state, old
        self.args = dict(args or {})
        self.raised = raised
        self.live = 0

    # ---------------------------------------------------------------- entry points
    def holds(self, e: ast.Expr) -> bool:
        return bool(self.ev(e, dict(self.args), True))

    def value(self, e: ast.Expr) -> Any:
        return self.ev(e, dict(self.args), True)

    # ---------------------------------------------------------------- the walk
    def atom(self, live: bool, v: bool) -> bool:
        if live:
            self.live += 1
        return v

    def ev(self, e: ast.Expr, env: dict[str, Any], live: bool) -> Any:
        if isinstance(e, (ast.IntLit, ast.BoolLit)):
            return e.value
        if isinstance(e, ast.NoneLit):
            return None
        if isinstance(e, ast.Name):
            return self.name(e.id, env, live)
        if isinstance(e, ast.Field):
            obj = self.ev(e.obj, env, live)
            if isinstance(obj, Iv):
                return obj.lo if e.name == "lo" else obj.hi
            v = getattr(obj, e.name)
            return self.atom(live, v) if isinstance(v, bool) else v
        if isinstance(e, ast.RecordLit):
            given = {k: self.ev(v, env, live) for k, v in e.fields}
            return self.records[e.type_name](**given)
        if isinstance(e, ast.Unary):
            v = self.ev(e.operand, env, live)
            return (not v) if e.op == "not" else -v
        if isinstance(e, ast.Binary):
            return self.binary(e, env, live)
        if isinstance(e, ast.Interval):
            return Iv(self.ev(e.lo, env, live), self.ev(e.hi, env, live))
        if isinstance(e, ast.Quantifier):
            results = (self.ev(e.body, inner, live) for inner in self.assignments(e.binders, env))
            return all(results) if e.kind == "forall" else any(results)
        if isinstance(e, ast.Aggregate):
            total = 0
            for inner in self.assignments(e.binders, env):
                if e.body is None:
                    total += 1
                elif e.kind == "count":
                    total += 1 if self.ev(e.body, inner, False) else 0
                else:
                    total += self.ev(e.body, inner, False)
            return total
        if isinstance(e, ast.Let):
            return self.ev(e.body, {**env, e.name: self.ev(e.value, env, live)}, live)
        if isinstance(e, ast.IfElse):
            branch = e.then if self.ev(e.cond, env, live) else e.orelse
            return self.ev(branch, env, live)
        if isinstance(e, ast.Call):
            return self.call(e, env, live)
        raise TypeError(f"no such node: {e!r}")

    def name(self, name: str, env: dict[str, Any], live: bool) -> Any:
        if name in env:
            return env[name]
        if name == "raised":
            return self.atom(live, self.raised is not None)
        if name in self.defines:
            return self.ev(self.defines[name].body, {}, live)
        return self.state[name]

    def binary(self, e: ast.Binary, env: dict[str, Any], live: bool) -> Any:
        op = e.op
        if op == "and":
            return bool(self.ev(e.left, env, live)) and bool(self.ev(e.right, env, live))
        if op == "or":
            return bool(self.ev(e.left, env, live)) or bool(self.ev(e.right, env, live))
        if op == "->":
            return (not self.ev(e.left, env, False)) or bool(self.ev(e.right, env, live))
        if op == "<->":
            return bool(self.ev(e.left, env, live)) == bool(self.ev(e.right, env, live))
        a, b = self.ev(e.left, env, live), self.ev(e.right, env, live)
        if op in ("in", "not in"):
            inside = a in b if isinstance(b, Iv) else any(a == x for x in b)
            return self.atom(live, inside != (op == "not in"))
        if op in ("==", "!="):
            return self.atom(live, (a == b) == (op == "=="))
        if op in ("<", "<=", ">", ">="):
            return self.atom(live, {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op])
        if op == "+" and not isinstance(a, int):
            return list(a) + list(b)
        return arith(op, a, b)

    def assignments(self, binders: tuple[ast.Binder, ...], env: dict[str, Any]) -> Iterator[dict]:
        """Every assignment of the binders, in order; `a, b in C` = distinct positions of C."""
        if not binders:
            yield env
            return
        b, rest = binders[0], binders[1:]
        dom = self.ev(b.domain, env, False)
        if b.step is not None:
            step = self.ev(b.step, env, False)
            if step <= 0:
                raise Undefined(f"step {step}")
            items = list(range(dom.lo, dom.hi, step))
        else:
            items = list(dom)
        for combo in itertools.permutations(items, len(b.names)):
            yield from self.assignments(rest, {**env, **dict(zip(b.names, combo, strict=True))})

    def call(self, e: ast.Call, env: dict[str, Any], live: bool) -> Any:
        f = e.func
        if f in self.defines:
            d = self.defines[f]
            values = [self.ev(a, env, live) for a in e.args]
            return self.ev(d.body, dict(zip(d.params, values, strict=True)), live)
        if f == "old":
            assert self.old is not None
            current, self.state = self.state, self.old
            try:
                return self.ev(e.args[0], env, live)
            finally:
                self.state = current
        if f == "raised":
            return self.atom(live, self.raised == e.args[0].id)  # type: ignore[attr-defined]
        args = [self.ev(a, env, live) for a in e.args]
        if f == "aligned":
            x, n = args
            return self.atom(live, n != 0 and x % n == 0)
        if f == "disjoint":
            i, j = args
            apart = len(i) == 0 or len(j) == 0 or i.hi <= j.lo or j.hi <= i.lo
            return self.atom(live, apart)
        if f == "contains":
            i, x = args
            if isinstance(x, Iv):  # every member of x is in i
                return self.atom(live, len(x) == 0 or (i.lo <= x.lo and x.hi <= i.hi))
            return self.atom(live, x in i)
        if f == "len":
            return len(args[0])
        if f == "abs":
            return abs(args[0])
        return min(args) if f == "min" else max(args)


def arith(op: str, a: int, b: int) -> int:
    """Python's integer operators (floor division), undefined where the language says so."""
    if op in ("/", "//", "%") and b == 0:
        raise Undefined(f"{op} by zero")
    if op == "**" and not 0 <= b <= 4096:
        raise Undefined(f"exponent {b}")
    if op in ("<<", ">>") and not 0 <= b <= 4096:
        raise Undefined(f"shift by {b}")
    return _ARITH[op](a, b)


_ARITH = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a // b,
    "//": lambda a, b: a // b,
    "%": lambda a, b: a % b,
    "**": lambda a, b: a**b,
    "<<": lambda a, b: a << b,
    ">>": lambda a, b: a >> b,
    "&": lambda a, b: a & b,
    "|": lambda a, b: a | b,
    "^": lambda a, b: a ^ b,
}
