"""The typed syntax tree of a spec: small frozen nodes, each with its source span.

The parser builds these and nothing else; checking, concrete evaluation and the
Z3 compiler are separate passes over the same nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Span:
    """Where a node sits in its file: 1-based lines and columns, end exclusive."""

    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        return f"{self.line}:{self.column}"


NOWHERE = Span(0, 0, 0, 0)


# ---------------------------------------------------------------- expressions


@dataclass(frozen=True)
class Expr:
    """Base class of every expression node."""

    span: Span = field(compare=False, repr=False)


@dataclass(frozen=True)
class IntLit(Expr):
    """An integer literal: `42`, `0x1000`."""

    value: int = 0


@dataclass(frozen=True)
class BoolLit(Expr):
    """`true` or `false`."""

    value: bool = False


@dataclass(frozen=True)
class NoneLit(Expr):
    """`none`: what an operation returning "int?" returns when it has nothing."""


@dataclass(frozen=True)
class Name(Expr):
    """A name: a state variable, a bound variable, a parameter or a `def`."""

    id: str = ""


@dataclass(frozen=True)
class Field(Expr):
    """`record.field`."""

    obj: Expr = None  # type: ignore[assignment]
    name: str = ""


@dataclass(frozen=True)
class Call(Expr):
    """`f(args)`: a builtin (aligned, disjoint, contains, old, ...) or a `def`."""

    func: str = ""
    args: tuple[Expr, ...] = ()


@dataclass(frozen=True)
class RecordLit(Expr):
    """`Block{pfn: p, order: 0}`: a record value built in the spec."""

    type_name: str = ""
    fields: tuple[tuple[str, Expr], ...] = ()


@dataclass(frozen=True)
class Unary(Expr):
    """`not e` or `-e`."""

    op: str = ""
    operand: Expr = None  # type: ignore[assignment]


@dataclass(frozen=True)
class Binary(Expr):
    """A binary operator: arithmetic, bitwise, comparison, `in`, boolean connective."""

    op: str = ""
    left: Expr = None  # type: ignore[assignment]
    right: Expr = None  # type: ignore[assignment]


@dataclass(frozen=True)
class Interval(Expr):
    """`lo .. hi`: the integers lo <= i < hi (a range of pages, say)."""

    lo: Expr = None  # type: ignore[assignment]
    hi: Expr = None  # type: ignore[assignment]


@dataclass(frozen=True)
class Binder(Expr):
    """`x in C` (or `x, y in C`: distinct members of C) with an optional `step`."""

    names: tuple[str, ...] = ()
    domain: Expr = None  # type: ignore[assignment]
    step: Expr | None = None


@dataclass(frozen=True)
class Quantifier(Expr):
    """`forall binders: body` or `exists binders: body`."""

    kind: str = "forall"
    binders: tuple[Binder, ...] = ()
    body: Expr = None  # type: ignore[assignment]


@dataclass(frozen=True)
class Aggregate(Expr):
    """`count(x in C: cond)` or `sum(x in C: expr)`."""

    kind: str = "count"
    binders: tuple[Binder, ...] = ()
    body: Expr | None = None


@dataclass(frozen=True)
class Let(Expr):
    """`let x = value in body`."""

    name: str = ""
    value: Expr = None  # type: ignore[assignment]
    body: Expr = None  # type: ignore[assignment]


@dataclass(frozen=True)
class IfElse(Expr):
    """`if cond then a else b`."""

    cond: Expr = None  # type: ignore[assignment]
    then: Expr = None  # type: ignore[assignment]
    orelse: Expr = None  # type: ignore[assignment]


# ---------------------------------------------------------------- items


@dataclass(frozen=True)
class Define:
    """`def name(params) = body`: a named helper, expanded where it is used."""

    name: str
    params: tuple[str, ...]
    body: Expr
    span: Span = field(compare=False, repr=False)


@dataclass(frozen=True)
class Invariant:
    """`invariant name "doc": body`: must hold in every reachable state."""

    name: str
    doc: str
    body: Expr
    span: Span = field(compare=False, repr=False)


@dataclass(frozen=True)
class Action:
    """`after op(params) returns r "doc": body`: must hold across every step of op.

    In the body, `old(e)` is e in the state before the step, `r` is what the
    operation returned, and `raised` / `raised(ValueError)` whether it failed.
    """

    name: str
    op: str
    params: tuple[str, ...]
    result: str | None
    doc: str
    body: Expr
    span: Span = field(compare=False, repr=False)


Property = Invariant | Action


@dataclass(frozen=True)
class Spec:
    """A parsed spec file."""

    path: str
    source: str
    subsystem: str
    doc: str
    defines: tuple[Define, ...]
    invariants: tuple[Invariant, ...]
    actions: tuple[Action, ...]
    header_span: Span = field(compare=False, repr=False, default=NOWHERE)

    @property
    def properties(self) -> tuple[Property, ...]:
        return self.invariants + self.actions

    def define(self, name: str) -> Define | None:
        return next((d for d in self.defines if d.name == name), None)

    def property(self, name: str) -> Property | None:
        return next((p for p in self.properties if p.name == name), None)
