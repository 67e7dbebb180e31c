"""Why a property is false: the bindings and the sub-formula that make it so.

Run once per violation (never on the hot path): it walks the property's AST
again, using the compiled closures for the values of sub-expressions, and
follows the first reason it finds down to an atom, e.g.

    for a = Block(pfn=0, order=2), b = Block(pfn=2, order=1):
      disjoint(span(a), span(b)) is false: span(a) = 0 .. 4, span(b) = 2 .. 4
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from mmcheck.checker import decode
from mmcheck.checker.evaluate import ActionContext, Bag, CompiledSpec, EvalError, Frame
from mmcheck.spec import ast

MAX_DEPTH = 12


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
    def why_false(self, e: ast.Expr, f: Frame, depth: int = 0) -> list[str]:
        if depth > MAX_DEPTH:
            return [f"{self.text(e)} is false"]
        try:
            return self._why_false(e, f, depth)
        except EvalError as err:
            return [f"{self.text(err.node)}: {err}"]

    def _why_false(self, e: ast.Expr, f: Frame, depth: int) -> list[str]:
        d = depth + 1
        if isinstance(e, ast.Quantifier) and e.kind == "forall":
            each = self.compiler.bindings(e.binders)
            for _ in each(f):
                if not self.value(e.body, f):
                    names = [n for b in e.binders for n in b.names]
                    binding = ", ".join(f"{n} = {self.fmt(f.env[n], n)}" for n in names)
                    lines = self.why_false(e.body, f, d)
                    return [f"for {binding}:"] + ["  " + x for x in lines]
            return [f"{self.text(e)} is false"]
        if isinstance(e, ast.Quantifier):
            doms = ", ".join(self.text(b.domain) for b in e.binders)
            return [f"no choice from {doms} makes {self.text(e.body)} true"]
        if isinstance(e, ast.Binary) and e.op == "and":
            part = e.left if not self.value(e.left, f) else e.right
            return self.why_false(part, f, d)
        if isinstance(e, ast.Binary) and e.op == "->":
            return [f"{self.text(e.left)} holds, but"] + self.why_false(e.right, f, d)
        if isinstance(e, ast.Binary) and e.op == "or":
            return [f"neither {self.text(e.left)} nor {self.text(e.right)} holds"] + self.why_false(
                e.left, f, d
            )
        if isinstance(e, ast.Binary) and e.op == "<->":
            lv, rv = self.value(e.left, f), self.value(e.right, f)
            sides = (
                f"{self.text(e.left)} is {self.fmt(bool(lv))} "
                f"but {self.text(e.right)} is {self.fmt(bool(rv))}"
            )
            false_side = e.left if not lv else e.right
            return [sides, *self.why_false(false_side, f, d)]
        if isinstance(e, ast.Unary) and e.op == "not":
            return self.why_true(e.operand, f, d)
        if isinstance(e, ast.Let):
            saved = dict(f.env)
            f.env[e.name] = self.value(e.value, f)
            try:
                return [f"with {e.name} = {self.fmt(f.env[e.name], e.name)}:"] + self.why_false(
                    e.body, f, d
                )
            finally:
                f.env = saved
        if isinstance(e, ast.IfElse):
            branch = e.then if self.value(e.cond, f) else e.orelse
            return self.why_false(branch, f, d)
        if isinstance(e, ast.Call) and e.func == "old":
            current = f.state
            f.state = f.old  # type: ignore[assignment]
            try:
                return ["before the step:"] + ["  " + x for x in self.why_false(e.args[0], f, d)]
            finally:
                f.state = current
        if isinstance(e, ast.Call) and e.func in self.compiler.defines:
            return self._in_define(e, f, d, self.why_false)
        return [self.atom(e, f)]

    def why_true(self, e: ast.Expr, f: Frame, depth: int) -> list[str]:
        d = depth + 1
        if isinstance(e, ast.Quantifier) and e.kind == "exists":
            each = self.compiler.bindings(e.binders)
            for _ in each(f):
                if self.value(e.body, f):
                    names = [n for b in e.binders for n in b.names]
                    binding = ", ".join(f"{n} = {self.fmt(f.env[n], n)}" for n in names)
                    return [f"{self.text(e.body)} holds for {binding}"]
        if isinstance(e, ast.Unary) and e.op == "not":
            return self.why_false(e.operand, f, d)
        if isinstance(e, ast.Binary) and e.op == "or":
            part = e.left if self.value(e.left, f) else e.right
            return self.why_true(part, f, d)
        if isinstance(e, ast.Call) and e.func in self.compiler.defines:
            return self._in_define(e, f, d, self.why_true)
        return [self.atom(e, f, want=False)]

    def _in_define(self, e: ast.Call, f: Frame, depth: int, how: Any) -> list[str]:
        d = self.compiler.defines[e.func]
        values = [self.value(a, f) for a in e.args]
        outer = f.env
        f.env = dict(zip(d.params, values))
        try:
            args = ", ".join(f"{p} = {self.fmt(v, p)}" for p, v in zip(d.params, values))
            head = f"in {e.func}({args}):" if args else f"in {e.func}:"
            return [head] + ["  " + x for x in how(d.body, f, depth)]
        finally:
            f.env = outer

    def atom(self, e: ast.Expr, f: Frame, want: bool = True) -> str:
        verdict = "is false" if want else "holds"
        parts: list[ast.Expr] = []
        if isinstance(e, ast.Binary):
            parts = [e.left, e.right]
        elif isinstance(e, ast.Call):
            parts = [] if e.func == "raised" else list(e.args)
        shown = []
        for p in parts:
            if isinstance(p, (ast.IntLit, ast.BoolLit, ast.NoneLit)):
                continue
            try:
                shown.append(f"{self.text(p)} = {self.fmt(self.value(p, f), self.text(p))}")
            except EvalError:
                continue
        return f"{self.text(e)} {verdict}" + (": " + ", ".join(shown) if shown else "")


def explain_invariant(compiled: CompiledSpec, name: str, state: Mapping[str, Any]) -> list[str]:
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
) -> list[str]:
    ctx = ActionContext(dict(zip(act.params, args)), result, raised)
    if act.result is not None:
        ctx.args = {**ctx.args, act.result: result}
    return Explainer(compiled).why_false(act.body, Frame(new, old, action=ctx))
