"""The contract between a symbolic encoding of a subsystem and the Z3 spec compiler.

A symbolic encoding is a transition system written as plain functions over per-step
copies of the state (as in Z3's own bounded-model-checking examples):

    init(s)            a formula: s is an initial state
    trans(s, t, s2)    a formula: step t takes s to s2
    well_formed(s)     facts every reachable state has by construction of the
                       encoding (domains of variables), assumed in induction

Each state presents the subsystem's vocabulary (model/vocabulary.py) in symbolic
form, so the spec compiler can evaluate the very same AST it evaluates concretely:

    "int"/"bool"       a z3 ArithRef (Int sort) / BoolRef
    "int?"             SymOptional(is_none, value)
    record             SymRecord(fields: name -> ArithRef/BoolRef)
    "set[R]"/"list[R]" SymCollection(slots): a fixed number of slots, each with a
                       guard saying whether the slot holds an element now

Integers are z3 Int (mathematical integers, as Python's), never bit-vectors, so the
compiler needs no sort juggling. Collections have a fixed number of slots because
the memory size of a symbolic run is fixed (16 to 256 pages, say).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import z3
from mmcheck.model.vocabulary import Vocabulary

SymScalar = z3.ArithRef | z3.BoolRef


@dataclass(frozen=True)
class SymOptional:
    """An "int?" value: `value` means something only when `is_none` is false."""

    is_none: z3.BoolRef
    value: z3.ArithRef


@dataclass(frozen=True)
class SymRecord:
    """A record whose fields are z3 terms."""

    type_name: str
    fields: Mapping[str, SymScalar]


@dataclass(frozen=True)
class SymCollection:
    """A collection as a fixed list of (guard, record) slots.

    `forall x in C: P(x)` compiles to And(Implies(guard_i, P(rec_i)) for each slot).
    For a "set", two slots whose guards hold never carry equal records.
    """

    element_type: str
    slots: tuple[tuple[z3.BoolRef, SymRecord], ...]


SymValue = SymScalar | SymOptional | SymRecord | SymCollection


@dataclass(frozen=True)
class SymState:
    """One symbolic state: every vocabulary state name mapped to a symbolic value."""

    values: Mapping[str, SymValue]
    variables: tuple[z3.ExprRef, ...] = ()  # the z3 constants it is built from


@dataclass(frozen=True)
class SymStep:
    """One symbolic operation: which one ran, its arguments and what it returned.

    `is_op[name]` are mutually exclusive and one of them holds. `args[name][param]`
    are the z3 terms of that operation's parameters. `result` is the returned value
    (a SymOptional for "int?", an ArithRef for "int", None for "none"), meaningful
    when `raised` is false; `raised` holds when the operation failed with its error
    (ValueError for the buddy allocator) and left the state unchanged.
    """

    is_op: Mapping[str, z3.BoolRef]
    args: Mapping[str, Mapping[str, z3.ArithRef]]
    results: Mapping[str, SymValue | None]
    raised: z3.BoolRef
    variables: tuple[z3.ExprRef, ...] = ()
    # Optional, additive: domains[op][param] is a range that holds the argument's
    # value in EVERY step trans allows (trans must assert it). The spec compiler
    # then compiles an action once per value of a small domain, with the argument
    # a constant, so that `2 ** order` and friends fold away before Z3 sees them.
    domains: Mapping[str, Mapping[str, range]] = field(default_factory=dict)
    # For operations that raise more than one exception: name -> "the step raised
    # that one" (exclusive; their disjunction is `raised`). Empty: every name is `raised`.
    raised_as: Mapping[str, z3.BoolRef] = field(default_factory=dict)


@dataclass(frozen=True)
class ConcreteStep:
    """A step read back from a z3 model: what a trace records and a replay runs."""

    op: str
    args: tuple[int, ...]
    result: int | None = None
    raised: str | None = None  # the exception name, e.g. "ValueError"
    extra: Mapping[str, int] = field(default_factory=dict)


class SymbolicSystem(Protocol):
    """What the bounded and inductive engines need from an encoding.

    Optional, read with getattr: `decode_state(model, s)` -> a small dict of plain
    values, shown in counterexamples to induction; `successor(s, t)` -> the state
    step t leads s to as terms over s's and t's constants (equal to s2 under
    trans(s, t, s2)), or None: the induction step compiles its goals over it, so
    a bit the step does not touch is one term before and after.
    """

    vocabulary: Vocabulary

    def fresh_state(self, tag: str) -> SymState: ...

    def fresh_step(self, tag: str) -> SymStep: ...

    def init(self, s: SymState) -> z3.BoolRef: ...

    def trans(self, s: SymState, t: SymStep, s2: SymState) -> z3.BoolRef: ...

    def well_formed(self, s: SymState) -> z3.BoolRef: ...

    def decode_step(self, model: z3.ModelRef, t: SymStep) -> ConcreteStep: ...


def pow2(k: z3.ArithRef, bound: int) -> z3.ArithRef:
    """2**k for k in [0, bound) as an If chain (0 outside): THE term for a power of two.

    Encodings and the spec compiler build 2**k with this one function, so the
    same power is the same z3 term on both sides (z3 shares equal terms), and an
    identity such as "the counter equals the sum of the block sizes" is
    syntactic rather than a case analysis over every slot.
    """
    term: z3.ArithRef = z3.IntVal(0)
    for j in range(bound - 1, -1, -1):
        term = z3.If(k == j, 1 << j, term)
    return term


def within(term: z3.ArithRef, domain: Sequence[int]) -> z3.BoolRef:
    """term is one of `domain`: the domain fact of a variable with few values."""
    return z3.Or([term == d for d in domain])


def model_int(model: z3.ModelRef, term: z3.ExprRef) -> int:
    """The value of an Int or Bool term in `model` (a Bool as 0 or 1), completed where
    the model leaves it free: how encodings read a step back (decode_step)."""
    val = model.eval(term, model_completion=True)
    return int(z3.is_true(val)) if z3.is_bool(val) else val.as_long()


def decode_step(model: z3.ModelRef, t: SymStep) -> ConcreteStep:
    """The operation step t performed in `model`, as a trace records it: THE decoding
    every encoding uses (from its SymStep alone: `is_op`, `args` in parameter order,
    `results`, `raised`/`raised_as`).

    The result is read only when the step did not raise: an "int?" result is None
    when its is_none holds, an "int" result its value, an operation without a
    result None.
    """
    def holds(term: z3.BoolRef) -> bool:
        return z3.is_true(model.eval(term, model_completion=True))

    op = next((name for name, lit in t.is_op.items() if holds(lit)), next(iter(t.is_op)))
    raised = None
    if holds(t.raised):
        raised = next((name for name, lit in t.raised_as.items() if holds(lit)), "ValueError")
    args = tuple(model_int(model, a) for a in t.args[op].values())
    out = t.results.get(op)
    result = None
    if raised is None and isinstance(out, SymOptional):
        result = None if holds(out.is_none) else model_int(model, out.value)
    elif raised is None and out is not None and not isinstance(out, (SymRecord, SymCollection)):
        result = model_int(model, out)
    return ConcreteStep(op, args, result, raised)


def raising_goals(vocabulary: Vocabulary, t: SymStep) -> list[z3.BoolRef]:
    """Goals for solver-generated traces (an encoding's optional `coverage_goals`):
    step t runs an operation and raises one of the exceptions the vocabulary says it
    raises, one goal each, so that the action properties about refused calls are
    exercised on a submission (an action premise is asked only of steps that do
    not raise). `raised_as` names the exceptions; without it `raised` is the one."""
    goals = []
    for op in vocabulary.operations:
        names = [n for n in op.raises if n in t.raised_as] if t.raised_as else op.raises[:1]
        goals += [z3.And(t.is_op[op.name], t.raised_as.get(n, t.raised)) for n in names]
    return goals
