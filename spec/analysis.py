"""Small syntactic facts about spec expressions, shared by both back ends."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

from mmcheck.spec import ast


def substitute(e: ast.Expr, mapping: Mapping[str, ast.Expr]) -> ast.Expr:
    """e with names replaced (callers use it only where no binder shadows them)."""
    if isinstance(e, ast.Name):
        return mapping.get(e.id, e)
    if not isinstance(e, ast.Expr):
        return e
    changes: dict[str, Any] = {}
    for fld in dataclasses.fields(e):
        if fld.name == "span":
            continue
        v = getattr(e, fld.name)
        if isinstance(v, ast.Expr):
            changes[fld.name] = substitute(v, mapping)
        elif isinstance(v, tuple):
            changes[fld.name] = tuple(_substitute_item(x, mapping) for x in v)
    return dataclasses.replace(e, **changes)


def _substitute_item(x: Any, mapping: Mapping[str, ast.Expr]) -> Any:
    if isinstance(x, ast.Expr):
        return substitute(x, mapping)
    if isinstance(x, tuple) and len(x) == 2 and isinstance(x[1], ast.Expr):
        return (x[0], substitute(x[1], mapping))
    return x


def mentions(e: ast.Expr, name: str) -> bool:
    return substitute(e, {name: ast.Name(e.span, "\0")}) != e


def subexpressions(e: ast.Expr) -> Iterator[ast.Expr]:
    """e and every expression inside it, e first."""
    yield e
    for fld in dataclasses.fields(e):
        if fld.name == "span":
            continue
        v = getattr(e, fld.name)
        for x in v if isinstance(v, tuple) else (v,):
            if isinstance(x, tuple) and len(x) == 2:
                x = x[1]
            if isinstance(x, ast.Expr):
                yield from subexpressions(x)


def says_raised(e: ast.Expr) -> bool:
    """e reads whether the step raised (`raised` or `raised(E)`): an action about failure."""
    return any(isinstance(x, ast.Name) and x.id == "raised"
               or isinstance(x, ast.Call) and x.func == "raised" for x in subexpressions(e))


def expand_call(e: ast.Expr, defines: Mapping[str, ast.Define]) -> ast.Expr:
    """A call of a `def`, with its body substituted in (one level)."""
    if isinstance(e, ast.Call) and e.func in defines:
        d = defines[e.func]
        return substitute(d.body, dict(zip(d.params, e.args)))
    return e


def pairwise_disjoint(
    e: ast.Quantifier, defines: Mapping[str, ast.Define]
) -> tuple[str, ast.Expr] | None:
    """For `forall a, b in C: disjoint(g(a), g(b))`: (a, g(a)); None for any other shape.

    Such a body is symmetric in a and b, so each unordered pair needs checking once.
    """
    if e.kind != "forall" or len(e.binders) != 1:
        return None
    b = e.binders[0]
    if len(b.names) != 2 or b.step is not None:
        return None
    body = expand_call(e.body, defines)
    if not (isinstance(body, ast.Call) and body.func == "disjoint" and len(body.args) == 2):
        return None
    x, y = b.names
    ga, gb = body.args
    if substitute(ga, {x: ast.Name(ga.span, y)}) != gb or mentions(ga, y) or mentions(gb, x):
        return None
    return x, ga


def covered_interval(
    e: ast.Quantifier, defines: Mapping[str, ast.Define]
) -> tuple[ast.Binder, str, ast.Expr, str, ast.Expr] | None:
    """For `forall q in lo .. hi: exists b in C: q in g(b)`: (q's binder, q, C, b, g(b)).

    Such a property says the intervals g(b) cover lo .. hi; a sweep over them
    sorted decides it without visiting every q.
    """
    if e.kind != "forall" or len(e.binders) != 1:
        return None
    outer = e.binders[0]
    if (
        len(outer.names) != 1
        or outer.step is not None
        or not isinstance(outer.domain, ast.Interval)
    ):
        return None
    (q,) = outer.names
    inner = e.body
    if not (
        isinstance(inner, ast.Quantifier) and inner.kind == "exists" and len(inner.binders) == 1
    ):
        return None
    b = inner.binders[0]
    if len(b.names) != 1 or b.step is not None or mentions(b.domain, q):
        return None
    body = inner.body
    if not (
        isinstance(body, ast.Binary)
        and body.op == "in"
        and isinstance(body.left, ast.Name)
        and body.left.id == q
        and not mentions(body.right, q)
    ):
        return None
    return outer, q, b.domain, b.names[0], body.right


def free_names(
    e: ast.Expr, defines: Mapping[str, ast.Define], _seen: frozenset[str] = frozenset()
) -> set[str] | None:
    """The names e reads from outside itself (state, parameters, enclosing binders),
    with `def`s expanded; None if e uses old() or raised (it depends on a step)."""
    if isinstance(e, ast.Name):
        if e.id == "raised":
            return None
        if e.id in defines and not defines[e.id].params:
            return _define_names(defines[e.id], defines, _seen)
        return {e.id}
    if isinstance(e, ast.Call):
        if e.func in ("old", "raised"):
            return None
        out: set[str] = set()
        for a in e.args:
            n = free_names(a, defines, _seen)
            if n is None:
                return None
            out |= n
        if e.func in defines:
            inner = _define_names(defines[e.func], defines, _seen)
            if inner is None:
                return None
            out |= inner
        return out
    if isinstance(e, (ast.Quantifier, ast.Aggregate)):
        out, bound = set(), set()
        for b in e.binders:
            for part in (b.domain, b.step):
                if part is None:
                    continue
                n = free_names(part, defines, _seen)
                if n is None:
                    return None
                out |= n - bound
            bound |= set(b.names)
        if e.body is not None:
            n = free_names(e.body, defines, _seen)
            if n is None:
                return None
            out |= n - bound
        return out
    if isinstance(e, ast.Let):
        v, b = free_names(e.value, defines, _seen), free_names(e.body, defines, _seen)
        if v is None or b is None:
            return None
        return v | (b - {e.name})
    out = set()
    for fld in dataclasses.fields(e):
        if fld.name == "span":
            continue
        v = getattr(e, fld.name)
        items = v if isinstance(v, tuple) else (v,)
        for x in items:
            if isinstance(x, tuple) and len(x) == 2 and isinstance(x[1], ast.Expr):
                x = x[1]
            if isinstance(x, ast.Expr):
                n = free_names(x, defines, _seen)
                if n is None:
                    return None
                out |= n
    return out


def _define_names(
    d: ast.Define, defines: Mapping[str, ast.Define], seen: frozenset[str]
) -> set[str] | None:
    if d.name in seen:
        return set()
    n = free_names(d.body, defines, seen | {d.name})
    return None if n is None else n - set(d.params)


def membership_only(
    e: ast.Expr, names: set[str], defines: Mapping[str, ast.Define], depth: int = 0
) -> bool:
    """Whether every use of `names` in e (defs included) is as `X in NAME` / `X not in NAME`.

    Then e depends on those collections only through membership answers, which
    is what lets a verdict be kept while the answers it asked for do not change.
    """
    if depth > 32:
        return False
    if isinstance(e, ast.Name):
        if e.id in defines and not defines[e.id].params:
            return membership_only(defines[e.id].body, names, defines, depth + 1)
        return e.id not in names
    if (
        isinstance(e, ast.Binary)
        and e.op in ("in", "not in")
        and isinstance(e.right, ast.Name)
        and e.right.id in names
    ):
        return membership_only(e.left, names, defines, depth + 1)
    if isinstance(e, ast.Call) and e.func in defines:
        d = defines[e.func]
        return all(
            membership_only(a, names, defines, depth + 1) for a in e.args
        ) and membership_only(d.body, names - set(d.params), defines, depth + 1)
    for fld in dataclasses.fields(e):
        if fld.name == "span":
            continue
        v = getattr(e, fld.name)
        for x in v if isinstance(v, tuple) else (v,):
            if isinstance(x, tuple) and len(x) == 2 and isinstance(x[1], ast.Expr):
                x = x[1]
            if isinstance(x, ast.Expr) and not membership_only(x, names, defines, depth + 1):
                return False
    return True
