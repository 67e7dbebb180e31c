"""Why a property is false: the bindings and the sub-formula that make it so.

Run once per violation (never on the hot path): it walks the property's AST
again, using the compiled closures for the values of sub-expressions, and
follows the first reason it finds down to an atom, e.g.

    for a = Block(pfn=0, order=2), b = Block(pfn=2, order=1):
      disjoint(span(a), span(b)) is false: span(a) = 0 .. 4, span(b) = 2 .. 4

The answer is data, a tuple of `Why` nodes: each has its sentence, the values it
names (the bindings, the sub-expressions' values) and the reasons under it.
Reports print `lines(...)`; a state picture points at `named(...)`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mmcheck.checker import decode
from mmcheck.checker.evaluate import ActionContext, Bag, CompiledSpec, EvalError, Frame
from mmcheck.spec import ast

MAX_DEPTH = 12


@dataclass(frozen=True)
class Why:
    """One reason: its sentence, the values it names, and the reasons under it
    (printed indented below it)."""

    text: str
    values: tuple[tuple[str, Any], ...] = ()  # (name or sub-expression, its value)
    under: tuple[Why, ...] = ()
    binds: bool = False  # a quantifier's binding ("for b = ...:")

    def lines(self) -> list[str]:
        return [self.text] + ["  " + x for u in self.under for x in u.lines()]

    def labelled(self) -> Iterator[tuple[str, Any, bool]]:
        """(label, value, bound by a quantifier) for every value, in order."""
        for label, value in self.values:
            yield label, value, self.binds
        for u in self.under:
            yield from u.labelled()


def lines(whys: Sequence[Why]) -> tuple[str, ...]:
    """An explanation as the report prints it."""
    return tuple(x for w in whys for x in w.lines())


def named(whys: Sequence[Why]) -> list[Any]:
    """Every value an explanation names, in the order it names them."""
    return [v for w in whys for _, v, _ in w.labelled()]


def numbers(whys: Sequence[Why], *keys: str) -> frozenset[int]:
    """The integers an explanation gives for one of `keys` (pfn, start, va...): a value
    whose name ends in the key (b.pfn = 3), or a record's field of that name, in the
    quantifiers' bindings when there are some, else anywhere."""
    found = [(label, v) for w in whys for label, v, bound in w.labelled()]
    bound = [(label, v) for w in whys for label, v, b in w.labelled() if b]
    out: set[int] = set()
    for label, v in bound or found:
        _numbers(label, v, keys, out)
    return frozenset(out)


def fields_in(values: Sequence[Any], *keys: str) -> frozenset[int]:
    """The integer fields named one of `keys` of the records among `values`, looking into
    records' fields and the first members of collections, as format_value prints them."""
    out: set[int] = set()
    for v in values:
        _numbers("", v, keys, out)
    return frozenset(out)


def _numbers(label: str, v: Any, keys: tuple[str, ...], out: set[int], limit: int = 8) -> None:
    if isinstance(v, int) and not isinstance(v, bool):
        if label.rsplit(".", 1)[-1] in keys:
            out.add(v)
    elif isinstance(v, tuple) and hasattr(v, "_fields"):
        for k in v._fields:
            _numbers(k, getattr(v, k), keys, out, limit)
    elif isinstance(v, (set, frozenset, list, tuple)):
        items = list(v)
        try:
            items.sort()
        except TypeError:
            pass
        for x in items[:limit]:
            _numbers("", x, keys, out, limit)


def format_value(v: Any, limit: int = 8, subsystem: str = "", name: str = "") -> str:
    """A value as a student reads it: Block(pfn=4, order=2), 4 .. 8, none. With the
    subsystem (and the name it is bound to), numbers are decoded as its headers
    spell them (checker/decode.py): 0x400000, PROT_READ|PROT_WRITE, EEXIST."""
    if v is None:
        return "none"
    if v is True or v is False:
        return "true" if v else "false"
    if isinstance(v, int) and subsystem:
        kind = decode.kind_of(subsystem, "", name) if name else "int"
        return decode.value_text(kind, v) if kind != "int" else decode.number_text(subsystem, v)
    if isinstance(v, range):
        lo, hi = (format_value(x, subsystem=subsystem) for x in (v.start, v.stop))
        return f"{lo} .. {hi}"
    if isinstance(v, tuple) and hasattr(v, "_fields"):
        inner = ", ".join(
            f"{k}={format_value(getattr(v, k), subsystem=subsystem, name=k)}" for k in v._fields
        )
        return f"{type(v).__name__}({inner})"
    if isinstance(v, tuple):
        return "(" + ", ".join(format_value(x, subsystem=subsystem) for x in v) + ")"
    if isinstance(v, (set, frozenset, list, Bag)) or (
        hasattr(v, "__iter__") and not isinstance(v, str)
    ):
        items = list(v)
        try:
            items.sort()
        except TypeError:
            pass
        shown = ", ".join(format_value(x, subsystem=subsystem) for x in items[:limit])
        more = f", ... ({len(items)} in all)" if len(items) > limit else ""
        return "{" + shown + more + "}"
    return str(v)


class Explainer:
    def __init__(self, compiled: CompiledSpec) -> None:
        self.compiled = compiled
        self.compiler = compiled.compiler
        self.source = compiled.spec.source
        self._cache: dict[int, Any] = {}
        self.subsystem = compiled.spec.subsystem

    def fmt(self, v: Any, name: str = "") -> str:
        """format_value, decoding numbers as this subsystem's headers spell them."""
        return format_value(v, subsystem=self.subsystem, name=name)

    def value(self, e: ast.Expr, f: Frame) -> Any:
        fn = self._cache.get(id(e))
        if fn is None:
            fn = self._cache[id(e)] = (e, self.compiler.compile(e, live=False))
        return fn[1](f)

    def text(self, e: ast.Expr) -> str:
        s = e.span
        lines = self.source.split("\n")  # the parser counts only "\n" as a line end
        if not (1 <= s.line <= len(lines)):
            return "?"
        if s.line == s.end_line:
            t = lines[s.line - 1][s.column - 1 : s.end_column - 1]
        else:
            t = "\n".join(
                [lines[s.line - 1][s.column - 1 :]]
                + lines[s.line : s.end_line - 1]
                + [lines[s.end_line - 1][: s.end_column - 1]]
            )
        t = re.sub(r"\s+", " ", t).strip()
        return t if len(t) <= 90 else t[:87] + "..."

    # -----------------------------------------------------------------
    def why_false(self, e: ast.Expr, f: Frame, depth: int = 0) -> list[Why]:
        if depth > MAX_DEPTH:
            return [Why(f"{self.text(e)} is false")]
        try:
            return self._why_false(e, f, depth)
        except EvalError as err:
            return [Why(f"{self.text(err.node)}: {err}")]

    def _binding(self, e: ast.Quantifier, f: Frame) -> tuple[str, tuple[Any, ...]]:
        names = [n for b in e.binders for n in b.names]
        values = tuple((n, f.env[n]) for n in names)
        text = ", ".join(f"{n} = {self.fmt(v, n)}" for n, v in values)
        return text, values

    def _why_false(self, e: ast.Expr, f: Frame, depth: int) -> list[Why]:
        d = depth + 1
        if isinstance(e, ast.Quantifier) and e.kind == "forall":
            each = self.compiler.bindings(e.binders)
            for _ in each(f):
                if not self.value(e.body, f):
                    binding, values = self._binding(e, f)
                    return [Why(f"for {binding}:", values, tuple(self.why_false(e.body, f, d)),
                                binds=True)]
            return [Why(f"{self.text(e)} is false")]
        if isinstance(e, ast.Quantifier):
            doms = ", ".join(self.text(b.domain) for b in e.binders)
            return [Why(f"no choice from {doms} makes {self.text(e.body)} true")]
        if isinstance(e, ast.Binary) and e.op == "and":
            part = e.left if not self.value(e.left, f) else e.right
            return self.why_false(part, f, d)
        if isinstance(e, ast.Binary) and e.op == "->":
            return [Why(f"{self.text(e.left)} holds, but"), *self.why_false(e.right, f, d)]
        if isinstance(e, ast.Binary) and e.op == "or":
            return [Why(f"neither {self.text(e.left)} nor {self.text(e.right)} holds"),
                    *self.why_false(e.left, f, d)]
        if isinstance(e, ast.Binary) and e.op == "<->":
            lv, rv = self.value(e.left, f), self.value(e.right, f)
            sides = (
                f"{self.text(e.left)} is {self.fmt(bool(lv))} "
                f"but {self.text(e.right)} is {self.fmt(bool(rv))}"
            )
            false_side = e.left if not lv else e.right
            return [Why(sides), *self.why_false(false_side, f, d)]
        if isinstance(e, ast.Unary) and e.op == "not":
            return self.why_true(e.operand, f, d)
        if isinstance(e, ast.Let):
            saved = dict(f.env)
            f.env[e.name] = self.value(e.value, f)
            try:
                bound = f.env[e.name]
                return [Why(f"with {e.name} = {self.fmt(bound, e.name)}:", ((e.name, bound),)),
                        *self.why_false(e.body, f, d)]
            finally:
                f.env = saved
        if isinstance(e, ast.IfElse):
            branch = e.then if self.value(e.cond, f) else e.orelse
            return self.why_false(branch, f, d)
        if isinstance(e, ast.Call) and e.func == "old":
            current = f.state
            f.state = f.old  # type: ignore[assignment]
            try:
                return [Why("before the step:", (), tuple(self.why_false(e.args[0], f, d)))]
            finally:
                f.state = current
        if isinstance(e, ast.Call) and e.func in self.compiler.defines:
            return self._in_define(e, f, d, self.why_false)
        return [self.atom(e, f)]

    def why_true(self, e: ast.Expr, f: Frame, depth: int) -> list[Why]:
        d = depth + 1
        if isinstance(e, ast.Quantifier) and e.kind == "exists":
            each = self.compiler.bindings(e.binders)
            for _ in each(f):
                if self.value(e.body, f):
                    binding, values = self._binding(e, f)
                    return [Why(f"{self.text(e.body)} holds for {binding}", values)]
        if isinstance(e, ast.Unary) and e.op == "not":
            return self.why_false(e.operand, f, d)
        if isinstance(e, ast.Binary) and e.op == "or":
            part = e.left if self.value(e.left, f) else e.right
            return self.why_true(part, f, d)
        if isinstance(e, ast.Call) and e.func in self.compiler.defines:
            return self._in_define(e, f, d, self.why_true)
        return [self.atom(e, f, want=False)]

    def _in_define(self, e: ast.Call, f: Frame, depth: int, how: Any) -> list[Why]:
        d = self.compiler.defines[e.func]
        values = [self.value(a, f) for a in e.args]
        outer = f.env
        f.env = dict(zip(d.params, values))
        try:
            args = ", ".join(f"{p} = {self.fmt(v, p)}" for p, v in zip(d.params, values))
            head = f"in {e.func}({args}):" if args else f"in {e.func}:"
            return [Why(head, tuple(zip(d.params, values)), tuple(how(d.body, f, depth)))]
        finally:
            f.env = outer

    def atom(self, e: ast.Expr, f: Frame, want: bool = True) -> Why:
        verdict = "is false" if want else "holds"
        parts: list[ast.Expr] = []
        if isinstance(e, ast.Binary):
            parts = [e.left, e.right]
        elif isinstance(e, ast.Call):
            parts = [] if e.func == "raised" else list(e.args)
        shown, values = [], []
        for p in parts:
            if isinstance(p, (ast.IntLit, ast.BoolLit, ast.NoneLit)) or self.text(p).isupper():
                continue  # a literal or a named constant (ENOMEM, PAGE) says what it is
            try:
                value = self.value(p, f)
            except EvalError:
                continue
            shown.append(f"{self.text(p)} = {self.fmt(value, self.text(p))}")
            values.append((self.text(p), value))
        text = f"{self.text(e)} {verdict}" + (": " + ", ".join(shown) if shown else "")
        return Why(text, tuple(values))


def explain_invariant(compiled: CompiledSpec, name: str, state: Mapping[str, Any]) -> list[Why]:
    inv = compiled.spec.property(name)
    assert isinstance(inv, ast.Invariant)
    return Explainer(compiled).why_false(inv.body, Frame(state))


def explain_action(
    compiled: CompiledSpec,
    act: ast.Action,
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    args: tuple[int, ...],
    result: object,
    raised: str | None,
) -> list[Why]:
    ctx = ActionContext(dict(zip(act.params, args)), result, raised)
    if act.result is not None:
        ctx.args = {**ctx.args, act.result: result}
    return Explainer(compiled).why_false(act.body, Frame(new, old, action=ctx))
