"""The type checker: every name exists, every operator gets the types it needs.

It runs once, up front, so a misspelt field or a forgotten `none` guard fails
when the spec is loaded, never in the middle of a run. It also records what
each property reads (`PropertyInfo`), which the engines use to re-check only
what a step can have changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from mmcheck.model.vocabulary import Vocabulary
from mmcheck.spec import ast
from mmcheck.spec.errors import SpecTypeError, did_you_mean
from mmcheck.spec.types import (
    BOOL,
    INT,
    INTERVAL,
    NONE,
    OPT_INT,
    CollectionT,
    IntervalT,
    RecordT,
    Type,
    parse_type,
)

BUILTINS: dict[str, str] = {
    "aligned": "aligned(x, n): x is a multiple of n",
    "disjoint": "disjoint(I, J): intervals I and J share no integer",
    "contains": "contains(I, x) or contains(I, J): x (or all of J) lies in interval I",
    "min": "min(a, b)",
    "max": "max(a, b)",
    "abs": "abs(a)",
    "len": "len(I) or len(C): the length of an interval or the size of a collection",
    "old": "old(e): e in the state before the step (action properties only)",
    "raised": "raised or raised(ValueError): the operation failed (action properties only)",
}

_RENAME = "choose another name for the bound variable"

ARITH = {"+", "-", "*", "/", "//", "%", "**", "<<", ">>", "&", "|", "^"}
ORDER = {"<", "<=", ">", ">="}
EQUALITY = {"==", "!="}
LOGIC = {"and", "or", "->", "<->"}


@dataclass
class PropertyInfo:
    """What one property reads: state names, and whether it reads them through old()."""

    reads: set[str] = field(default_factory=set)
    reads_old: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class _Scope:
    """Names visible at a point: bound variables, narrowing facts, where we are."""

    locals: dict[str, Type]
    action: ast.Action | None = None
    in_old: bool = False
    narrowed: frozenset[str] = frozenset()  # int? names a test showed are not none here

    def bind(self, **names: Type) -> _Scope:
        return replace(self, locals={**self.locals, **names}, narrowed=self.narrowed - set(names))

    def narrow(self, names: Iterable[str]) -> _Scope:
        """The int? `names` as ints (and still comparable with none: `r != none` stays legal)."""
        found = set(names)
        locals_ = {**self.locals, **dict.fromkeys(found, INT)}
        return replace(self, locals=locals_, narrowed=self.narrowed | found)


class _Checker:
    def __init__(self, spec: ast.Spec, vocabulary: Vocabulary) -> None:
        self.spec = spec
        self.vocab = vocabulary
        self.errors: list[SpecTypeError] = []
        self.state: dict[str, Type] = {}
        for var in vocabulary.state:
            self.state[var.name] = parse_type(var.type, vocabulary)
        self.defines = {d.name: d for d in spec.defines}
        self.expanding: list[str] = []
        self.info = PropertyInfo()

    # -- reporting
    def error(self, node: ast.Expr | ast.Define | ast.Action, msg: str, hint: str | None = None):
        self.errors.append(
            SpecTypeError(
                msg, path=self.spec.path, source=self.spec.source, span=node.span, hint=hint
            )
        )
        return None

    def expect(self, node: ast.Expr, got: Type | None, want: Type, what: str) -> None:
        if got is None or got == want:
            return
        if got == OPT_INT and want == INT:
            self.error(
                node,
                f"{what} may be none here",
                f"guard it first, e.g. `{_text(self.spec, node)} != none -> ...`",
            )
            return
        self.error(node, f"{what} must be {want}, not {got}")

    def bind(self, node: ast.Expr | ast.Define | ast.Action, names: tuple[str, ...]) -> None:
        """Names a binder, let, def or action introduces must be new: a name means one
        thing throughout a spec, so neither a reader nor a back end has to work out
        whether `npages` in a def's body is the state or a caller's bound variable."""
        for i, n in enumerate(names):
            if n in names[:i]:
                self.error(node, f"'{n}' is bound twice here", _RENAME)
            elif n in self.state:
                self.error(
                    node,
                    f"'{n}' would hide the state name '{n}' of the "
                    f"{self.vocab.subsystem} vocabulary",
                    _RENAME,
                )
            elif n in self.defines or n == "raised":
                what = "the def" if n in self.defines else "the builtin"
                self.error(node, f"'{n}' would hide {what} '{n}'", _RENAME)

    # -- items
    def check(self) -> dict[str, PropertyInfo]:
        infos: dict[str, PropertyInfo] = {}
        seen: set[str] = set()
        for d in self.spec.defines:
            if d.name in BUILTINS or d.name in self.state:
                self.error(
                    d,
                    f"'def {d.name}' hides the "
                    f"{'builtin' if d.name in BUILTINS else 'state name'} of the same name",
                    "choose another name",
                )
            if d.name in seen:
                self.error(d, f"'{d.name}' is defined twice")
            seen.add(d.name)
            self.bind(d, d.params)
        for prop in self.spec.properties:
            if prop.name in seen:
                self.error(
                    prop,
                    f"'{prop.name}' names two items",
                    "give each invariant, action and def its own name",
                )
            seen.add(prop.name)
            self.info = PropertyInfo()
            if isinstance(prop, ast.Invariant):
                got = self.expr(prop.body, _Scope({}))
            else:
                got = self.action(prop)
            if got is not None and got != BOOL:
                self.error(prop.body, f"the body of '{prop.name}' must be bool, not {got}")
            infos[prop.name] = self.info
        return infos

    def action(self, act: ast.Action) -> Type | None:
        op = self.vocab.operation(act.op)
        if op is None:
            names = [o.name for o in self.vocab.operations]
            return self.error(
                act,
                f"the {self.vocab.subsystem} model has no operation '{act.op}'",
                did_you_mean(act.op, names) or f"its operations are: {', '.join(names)}",
            )
        if len(act.params) != len(op.params):
            sig = ", ".join(p for p, _ in op.params)
            return self.error(
                act, f"'{act.op}' takes {len(op.params)} parameter(s): {act.op}({sig})"
            )
        self.bind(act, act.params + ((act.result,) if act.result is not None else ()))
        names: dict[str, Type] = {}
        for given, (_, ptype) in zip(act.params, op.params):
            names[given] = parse_type(ptype, self.vocab)
        if act.result is not None:
            if op.returns == "none":
                return self.error(
                    act,
                    f"'{act.op}' returns nothing, so 'returns {act.result}' binds nothing",
                    "remove 'returns ...'",
                )
            names[act.result] = parse_type(op.returns, self.vocab)
        return self.expr(act.body, _Scope(names, act))

    # -- expressions
    def expr(self, e: ast.Expr, sc: _Scope) -> Type | None:
        method = getattr(self, "_" + type(e).__name__)
        return method(e, sc)

    def _IntLit(self, e: ast.IntLit, sc: _Scope) -> Type:
        return INT

    def _BoolLit(self, e: ast.BoolLit, sc: _Scope) -> Type:
        return BOOL

    def _NoneLit(self, e: ast.NoneLit, sc: _Scope) -> Type:
        return NONE

    def _Name(self, e: ast.Name, sc: _Scope) -> Type | None:
        if e.id in sc.locals:
            return sc.locals[e.id]
        if e.id == "raised":
            if sc.action is None:
                return self.error(e, "'raised' only means something in an action property")
            return BOOL
        if e.id in self.state:
            (self.info.reads_old if sc.in_old else self.info.reads).add(e.id)
            return self.state[e.id]
        if e.id in self.defines:
            return self._Call(ast.Call(e.span, e.id, ()), sc)
        visible = list(sc.locals) + list(self.state) + list(self.defines)
        hint = did_you_mean(e.id, visible) or (
            f"names of the {self.vocab.subsystem} vocabulary: {', '.join(self.state)}"
        )
        return self.error(e, f"unknown name '{e.id}'", hint)

    def _Field(self, e: ast.Field, sc: _Scope) -> Type | None:
        obj = self.expr(e.obj, sc)
        if obj is None:
            return None
        if isinstance(obj, IntervalT) and e.name in ("lo", "hi"):
            return INT
        if not isinstance(obj, RecordT):
            return self.error(e, f"'.{e.name}' needs a record, and this is {obj}")
        rec = self.vocab.record(obj.name)
        assert rec is not None
        fields = dict(rec.fields)
        if e.name not in fields:
            return self.error(
                e,
                f"{obj.name} has no field '{e.name}'",
                did_you_mean(e.name, fields) or f"its fields are: {', '.join(fields)}",
            )
        return parse_type(fields[e.name], self.vocab)

    def _RecordLit(self, e: ast.RecordLit, sc: _Scope) -> Type | None:
        rec = self.vocab.record(e.type_name)
        if rec is None:
            names = [r.name for r in self.vocab.records]
            return self.error(
                e, f"unknown record type '{e.type_name}'", did_you_mean(e.type_name, names)
            )
        fields = dict(rec.fields)
        given = dict(e.fields)
        unknown = False
        # A field's name has no span of its own: errors about names point at the literal.
        for i, (name, value) in enumerate(e.fields):
            if any(name == earlier for earlier, _ in e.fields[:i]):
                self.error(e, f"field '{name}' is given twice")
                continue
            if name not in fields:
                self.error(e, f"{rec.name} has no field '{name}'", did_you_mean(name, fields))
                unknown = True
                continue
            self.expect(
                value, self.expr(value, sc), parse_type(fields[name], self.vocab), f"field '{name}'"
            )
        missing = [f for f in fields if f not in given]
        if missing and not unknown:  # a misspelt field already explains the missing one
            return self.error(
                e,
                f"{rec.name}{{...}} leaves out {', '.join(missing)}",
                "a record literal gives every field",
            )
        return RecordT(rec.name)

    def _Unary(self, e: ast.Unary, sc: _Scope) -> Type | None:
        t = self.expr(e.operand, sc)
        if e.op == "not":
            self.expect(e.operand, t, BOOL, "the operand of 'not'")
            return BOOL
        self.expect(e.operand, t, INT, "the operand of '-'")
        return INT

    def _Binary(self, e: ast.Binary, sc: _Scope) -> Type | None:
        op = e.op
        if op in LOGIC:
            left = self.expr(e.left, sc)
            right_scope = sc
            if op in ("and", "->"):
                right_scope = sc.narrow(_not_none(e.left, sc, True))
            elif op == "or":
                right_scope = sc.narrow(_not_none(e.left, sc, False))
            right = self.expr(e.right, right_scope)
            self.expect(e.left, left, BOOL, f"the left side of '{op}'")
            self.expect(e.right, right, BOOL, f"the right side of '{op}'")
            return BOOL
        left, right = self.expr(e.left, sc), self.expr(e.right, sc)
        if left is None or right is None:
            return None
        if op in ("in", "not in"):
            if isinstance(right, IntervalT):
                self.expect(e.left, left, INT, "a member of an interval")
            elif isinstance(right, CollectionT):
                self.expect(e.left, left, right.element, f"a member of {right}")
            else:
                self.error(
                    e.right, f"'{op}' needs an interval or a collection on its right, not {right}"
                )
            return BOOL
        if op in EQUALITY:
            sides = (e.left, e.right)
            narrowed_vs_none = any(isinstance(x, ast.NoneLit) for x in sides) and any(
                isinstance(x, ast.Name) and x.id in sc.narrowed for x in sides
            )
            if not _comparable(left, right) and not narrowed_vs_none:
                self.error(e, f"cannot compare {left} with {right}")
            elif isinstance(left, CollectionT):
                # Neither back end defines it (a set against a list? order? duplicates?).
                self.error(
                    e,
                    f"'{op}' is not defined on collections",
                    "compare their members: (forall x in A: x in B) and (forall x in B: x in A)",
                )
            return BOOL
        if op == "+" and isinstance(left, CollectionT):
            if not isinstance(right, CollectionT) or right.element != left.element:
                return self.error(
                    e, f"'+' joins two collections of the same records, not {left} and {right}"
                )
            return CollectionT(left.element, bag=True)
        what = "an operand of" if op in ARITH else "a side of"
        self.expect(e.left, left, INT, f"{what} '{op}'")
        self.expect(e.right, right, INT, f"{what} '{op}'")
        return BOOL if op in ORDER else INT

    def _Interval(self, e: ast.Interval, sc: _Scope) -> Type:
        self.expect(e.lo, self.expr(e.lo, sc), INT, "the start of an interval")
        self.expect(e.hi, self.expr(e.hi, sc), INT, "the end of an interval")
        return INTERVAL

    def binders(self, binders: tuple[ast.Binder, ...], sc: _Scope) -> _Scope:
        for b in binders:
            dom = self.expr(b.domain, sc)
            if isinstance(dom, IntervalT):
                elem: Type | None = INT
            elif isinstance(dom, CollectionT):
                elem = dom.element
                if b.step is not None:
                    self.error(b.step, "'step' only applies to an interval")
            else:
                if dom is not None:
                    self.error(
                        b.domain, f"a quantifier ranges over an interval or a collection, not {dom}"
                    )
                elem = None  # unknown: uses of the names report nothing more
            if b.step is not None:
                self.expect(b.step, self.expr(b.step, sc), INT, "a step")
            self.bind(b, b.names)
            sc = sc.bind(**{n: elem for n in b.names})
        return sc

    def _Quantifier(self, e: ast.Quantifier, sc: _Scope) -> Type:
        inner = self.binders(e.binders, sc)
        self.expect(e.body, self.expr(e.body, inner), BOOL, f"the body of '{e.kind}'")
        return BOOL

    def _Aggregate(self, e: ast.Aggregate, sc: _Scope) -> Type:
        inner = self.binders(e.binders, sc)
        if e.kind == "sum":
            if e.body is None:
                self.error(e, "sum(x in C: EXPR) needs the expression to add up")
            else:
                self.expect(e.body, self.expr(e.body, inner), INT, "what sum adds up")
        elif e.body is not None:
            self.expect(e.body, self.expr(e.body, inner), BOOL, "the condition of count")
        return INT

    def _Let(self, e: ast.Let, sc: _Scope) -> Type | None:
        value = self.expr(e.value, sc)
        self.bind(e, (e.name,))
        if value is None:
            return None
        return self.expr(e.body, sc.bind(**{e.name: value}))

    def _IfElse(self, e: ast.IfElse, sc: _Scope) -> Type | None:
        self.expect(e.cond, self.expr(e.cond, sc), BOOL, "the condition of 'if'")
        then = self.expr(e.then, sc.narrow(_not_none(e.cond, sc, True)))
        orelse = self.expr(e.orelse, sc.narrow(_not_none(e.cond, sc, False)))
        if then is not None and orelse is not None and not _comparable(then, orelse):
            return self.error(e, f"the branches of 'if' have different types: {then} and {orelse}")
        if then != orelse and orelse is not None:
            return OPT_INT  # int with int?, or int? with none
        return then

    def _Call(self, e: ast.Call, sc: _Scope) -> Type | None:
        f, args = e.func, e.args
        if f in self.defines:
            return self.call_define(e, sc)
        if f not in BUILTINS:
            names = list(BUILTINS) + list(self.defines)
            return self.error(
                e, f"unknown function '{f}'", did_you_mean(f, names) or "define it with 'def'"
            )
        if f == "old":
            if sc.action is None:
                return self.error(e, "old(...) only means something in an action property")
            if sc.in_old:
                return self.error(e, "old(...) inside old(...) means nothing more")
            if len(args) != 1:
                return self.error(e, "old takes one expression")
            return self.expr(args[0], replace(sc, in_old=True))
        if f == "raised":
            if sc.action is None:
                return self.error(e, "raised(...) only means something in an action property")
            op = self.vocab.operation(sc.action.op)
            errs = op.raises if op else ()
            if len(args) != 1 or not isinstance(args[0], ast.Name):
                return self.error(
                    e, "raised takes the name of an exception, e.g. raised(ValueError)"
                )
            if args[0].id not in errs:
                return self.error(
                    args[0],
                    f"'{sc.action.op}' never raises {args[0].id}",
                    f"it raises: {', '.join(errs) or 'nothing'}",
                )
            return BOOL
        types = [self.expr(a, sc) for a in args]
        if any(t is None for t in types):
            return None
        want = {"aligned": 2, "disjoint": 2, "contains": 2, "min": 2, "max": 2, "abs": 1, "len": 1}[
            f
        ]
        if len(args) != want:
            return self.error(e, f"{f} takes {want} argument(s): {BUILTINS[f]}")
        if f == "aligned":
            for a, t in zip(args, types):
                self.expect(a, t, INT, "an argument of aligned")
            return BOOL
        if f == "disjoint":
            for a, t in zip(args, types):
                self.expect(a, t, INTERVAL, "an argument of disjoint")
            return BOOL
        if f == "contains":
            self.expect(args[0], types[0], INTERVAL, "the first argument of contains")
            if types[1] not in (INT, INTERVAL):
                self.error(
                    args[1],
                    f"the second argument of contains must be int or interval, not {types[1]}",
                )
            return BOOL
        if f == "len":
            if not isinstance(types[0], (IntervalT, CollectionT)):
                self.error(args[0], f"len takes an interval or a collection, not {types[0]}")
            return INT
        for a, t in zip(args, types):
            self.expect(a, t, INT, f"an argument of {f}")
        return INT

    def call_define(self, e: ast.Call, sc: _Scope) -> Type | None:
        d = self.defines[e.func]
        if len(e.args) != len(d.params):
            return self.error(e, f"'{d.name}' takes {len(d.params)} argument(s), not {len(e.args)}")
        if d.name in self.expanding:
            return self.error(
                e,
                f"'{d.name}' uses itself",
                "a def is expanded where it is used, so it cannot recurse",
            )
        args = {p: self.expr(a, sc) for p, a in zip(d.params, e.args)}
        if any(t is None for t in args.values()):
            return None
        self.expanding.append(d.name)
        before = len(self.errors)
        try:
            # A def sees its parameters, the state and other defs: not the caller's locals.
            result = self.expr(d.body, _Scope(dict(args), sc.action, sc.in_old))  # type: ignore[arg-type]
        finally:
            self.expanding.pop()
        for err in self.errors[before:]:
            if err.hint is None:
                err.hint = f"in '{d.name}', used at line {e.span.line}"
        return result


def _comparable(a: Type, b: Type) -> bool:
    if a == b:
        return True
    pair = {a, b}
    return pair in ({INT, OPT_INT}, {OPT_INT, NONE})


def _not_none(e: ast.Expr, sc: _Scope, when: bool) -> list[str]:
    """Names of type int? that cannot be none where `e` evaluated to `when`.

    A loop over an explicit stack, and nothing to do where no int? name is in
    scope: a chain of a thousand `and`s is checked in linear time."""
    if OPT_INT not in sc.locals.values():
        return []
    found: list[str] = []
    stack = [(e, when)]
    while stack:
        e, when = stack.pop()
        if isinstance(e, ast.Binary):
            if e.op in ("==", "!="):
                # `r != none` or `none != r`
                name = e.left if isinstance(e.right, ast.NoneLit) else e.right
                other = e.right if name is e.left else e.left
                if (
                    isinstance(name, ast.Name)
                    and isinstance(other, ast.NoneLit)
                    and sc.locals.get(name.id) == OPT_INT
                    and (e.op == "!=") == when
                ):
                    found.append(name.id)
            elif e.op == "and" and when or e.op == "or" and not when:
                stack.extend([(e.right, when), (e.left, when)])
        elif isinstance(e, ast.Unary) and e.op == "not":
            stack.append((e.operand, not when))
    return found


def _text(spec: ast.Spec, node: ast.Expr) -> str:
    s = node.span
    lines = spec.source.split("\n")
    if s.line == s.end_line and 1 <= s.line <= len(lines):
        return lines[s.line - 1][s.column - 1 : s.end_column - 1]
    return "x"


def typecheck(
    spec: ast.Spec, vocabulary: Vocabulary
) -> tuple[dict[str, PropertyInfo], list[SpecTypeError]]:
    """Check a parsed spec against a vocabulary: what each property reads, and the errors."""
    checker = _Checker(spec, vocabulary)
    infos = checker.check()
    # A def is checked where it is used: an error in its body is found at each use.
    # Report each once, in the order of the file.
    unique = {(err.message, err.span): err for err in reversed(checker.errors)}
    return infos, sorted(unique.values(), key=lambda err: (err.line, err.column))
