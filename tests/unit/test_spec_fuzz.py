"""Fuzzing the spec front end and the evaluator (Hypothesis, derandomized, bounded).

(a) character soup and (b) token-level mutations of the real spec/lib/buddy.mm:
    `check_text` either accepts the text or raises SpecError, never anything
    else, and every error points at a line and column inside the file;
(c) random well-typed expressions over the buddy vocabulary parse, type-check
    and evaluate on a real BuddyAllocator snapshot (and step) raising nothing
    but evaluation errors, and agree with the slow oracle of spec_oracle.py;
(d) a pretty-printer (below) prints random trees back to text with as few
    parentheses as the precedence allows; reparsing gives the same tree.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mmcheck.checker.evaluate import CompiledSpec
from mmcheck.model.buddy import VOCABULARY, BuddyAllocator
from mmcheck.spec import ast
from mmcheck.spec.errors import SpecError
from mmcheck.spec.loader import SpecErrors, check_text
from mmcheck.spec.parser import parse_spec
from spec_oracle import Oracle, Undefined

LIBRARY = Path(__file__).resolve().parents[2] / "spec" / "lib" / "buddy.mm"
BUDDY_MM = LIBRARY.read_text(encoding="utf-8")

FUZZ = settings(
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def assert_checks_or_points_inside(text: str) -> None:
    """check_text(text) succeeds or raises SpecError(s) located inside the text."""
    try:
        check_text(text, "fuzz.mm")
    except SpecError as err:
        lines = text.split("\n")
        for e in err.errors if isinstance(err, SpecErrors) else [err]:
            assert 1 <= e.line <= len(lines), (e.render(), text)
            assert 1 <= e.column <= len(lines[e.line - 1]) + 1, (e.render(), text)
            rendered = e.render().split("\n")
            assert rendered[1] == f"  --> fuzz.mm:{e.line}:{e.column}"
            if text:  # the line, and a caret under the spot
                assert rendered[3].startswith(f"{e.line} | ") and "^" in rendered[4]


# ------------------------------------------------------------------ (a) soup

SOUP = st.lists(
    st.sampled_from(
        list("abcfinorstx_019 \n\t#\"'\\:.,()[]{}=<>!&|^+-*/%@$é") + ["\x00", "\u2028", "\r"]
        + ["spec ", "buddy ", "invariant ", "action ", "after ", "def ", "forall ", "in ",
           "free", "Block{", "pfn", "->", "..", "0x", "none", "count(", "step "]
    ),
    max_size=60,
).map("".join) | st.text(max_size=40)


@settings(FUZZ, max_examples=400)
@given(SOUP, st.booleans())
def test_character_soup_raises_only_spec_errors(text: str, with_header: bool) -> None:
    assert_checks_or_points_inside(("spec buddy\n" if with_header else "") + text)


# ------------------------------------------------------------------ (b) mutations

TOKENS = re.findall(r"\s+|#[^\n]*|\"[^\"\n]*\"|\w+|\*\*|->|<->|\.\.|[<>=!]=|.", BUDDY_MM)


@st.composite
def mutated_library(draw: st.DrawFn) -> str:
    tokens = list(TOKENS)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(tokens) - 1))
        how = draw(st.sampled_from(["delete", "duplicate", "swap", "replace", "truncate"]))
        if how == "delete":
            del tokens[i]
        elif how == "duplicate":
            tokens.insert(i, tokens[i])
        elif how == "swap":
            j = draw(st.integers(0, len(tokens) - 1))
            tokens[i], tokens[j] = tokens[j], tokens[i]
        elif how == "replace":
            tokens[i] = draw(st.sampled_from(TOKENS))
        else:
            tokens = tokens[:i]
        if not tokens:
            break
    return "".join(tokens)


def test_the_library_itself_checks() -> None:
    assert check_text(BUDDY_MM, "buddy.mm").spec.properties
    assert "".join(TOKENS) == BUDDY_MM


@settings(FUZZ, max_examples=250)
@given(mutated_library())
def test_mutated_library_raises_only_spec_errors(text: str) -> None:
    assert_checks_or_points_inside(text)


# ------------------------------------------------------------------ (c) well-typed expressions

COLLECTIONS = {
    "free": "Block", "allocated": "Block", "free_area": "Block", "free + allocated": "Block",
    "pages": "Page", "buddy_pages": "Page", "used_pages": "Page",
}
FIELDS = {"Block": ["pfn", "order"], "Page": ["pfn", "order", "refcount"]}
NAMES = "abcdeghjkmqstuvwxyz"


class Gen:
    """Random well-typed expressions; `env` holds the bound names in scope and their types."""

    def __init__(self, draw: st.DrawFn, action: bool) -> None:
        self.draw, self.action, self.fresh = draw, action, iter(NAMES)
        self.in_old = False  # old() does not nest

    def old(self, inner: Callable[[], str]) -> str:
        self.in_old = True
        try:
            return f"old({inner()})"
        finally:
            self.in_old = False

    @property
    def may_use_old(self) -> bool:
        return self.action and not self.in_old

    def pick(self, options: list[Callable[[], str]]) -> str:
        return self.draw(st.sampled_from(options))()

    def bound(self, env: dict[str, str], kind: str) -> list[str]:
        return [n for n, t in env.items() if t == kind]

    def int_(self, env: dict[str, str], d: int) -> str:
        leaves: list[Callable[[], str]] = [
            lambda: str(self.draw(st.integers(0, 40))),
            lambda: hex(self.draw(st.integers(0, 64))),
            lambda: self.draw(st.sampled_from(["npages", "max_order", "free_pages"])),
        ]
        for kind, fields in FIELDS.items():
            for n in self.bound(env, kind):
                leaves += [lambda n=n, fields=fields: f"{n}.{self.draw(st.sampled_from(fields))}"]
        for n in self.bound(env, "int"):
            leaves.append(lambda n=n: n)
        if self.action:
            leaves += [lambda: "o", lambda: "(if r != none then r else 7)"]
        if d <= 0:
            return self.pick(leaves)
        i = lambda: self.int_(env, d - 1)  # noqa: E731
        small = lambda: self.draw(st.sampled_from(["0", "1", "2", "3"]))  # noqa: E731
        composites: list[Callable[[], str]] = [
            lambda: f"({i()} {self.draw(st.sampled_from(['+', '-', '*', '&', '|', '^']))} {i()})",
            lambda: f"({i()} {self.draw(st.sampled_from(['//', '/', '%']))} {i()})",
            lambda: f"({i()} ** {small()})",
            lambda: f"({i()} {self.draw(st.sampled_from(['<<', '>>']))} {small()})",
            lambda: f"-{i()}",
            lambda: f"{self.draw(st.sampled_from(['min', 'max']))}({i()}, {i()})",
            lambda: f"abs({i()})",
            lambda: f"len({self.interval(env, d - 1)})",
            lambda: f"len({self.coll()[0]})",
            lambda: f"({self.interval(env, d - 1)}).{self.draw(st.sampled_from(['lo', 'hi']))}",
            lambda: f"(if {self.bool_(env, d - 1)} then {i()} else {i()})",
            lambda: self.let(env, d, self.int_),
            lambda: self.aggregate(env, d),
        ]
        if self.may_use_old:
            composites.append(lambda: self.old(i))
        return self.pick(leaves + composites)

    def coll(self) -> tuple[str, str]:
        name = self.draw(st.sampled_from(sorted(COLLECTIONS)))
        if self.may_use_old and self.draw(st.booleans()):
            return f"old({name})", COLLECTIONS[name]
        return name, COLLECTIONS[name]

    def binder(self, env: dict[str, str], d: int, pairs: bool = True) -> tuple[str, dict[str, str]]:
        """`x in C`, `x, y in C` or `x in 0 .. K step S`, and the scope it opens."""
        x = next(self.fresh)
        kinds = ["coll", "pair", "interval"] if pairs else ["coll", "interval"]
        how = self.draw(st.sampled_from(kinds))
        if how == "interval":
            hi = self.draw(st.sampled_from(["8", "npages", "max_order + 3"]))
            step = self.draw(st.sampled_from(["", " step 3", " step max_order"]))
            return f"{x} in 0 .. {hi}{step}", {**env, x: "int"}
        dom, kind = self.coll()
        if how == "pair" and kind == "Block" and "pages" not in dom:
            y = next(self.fresh)
            return f"{x}, {y} in {dom}", {**env, x: kind, y: kind}
        return f"{x} in {dom}", {**env, x: kind}

    def aggregate(self, env: dict[str, str], d: int) -> str:
        bind, inner = self.binder(env, d, pairs=False)
        how = self.draw(st.sampled_from(["count", "count_if", "sum"]))
        if how == "count":
            return f"count({bind})"
        if how == "count_if":
            return f"count({bind}: {self.bool_(inner, d - 1)})"
        return f"sum({bind}: {self.int_(inner, d - 1)})"

    def let(self, env: dict[str, str], d: int, body: Callable[[dict[str, str], int], str]) -> str:
        x = next(self.fresh)
        return f"(let {x} = {self.int_(env, d - 1)} in {body({**env, x: 'int'}, d - 1)})"

    def interval(self, env: dict[str, str], d: int) -> str:
        blocks = self.bound(env, "Block")
        options: list[Callable[[], str]] = [
            lambda: f"{self.int_(env, d)} .. {self.int_(env, d)}",
        ]
        options += [lambda b=b: f"span({b})" for b in blocks]
        return self.pick(options)

    def record(self, env: dict[str, str], d: int) -> str:
        options: list[Callable[[], str]] = [
            lambda: f"Block{{pfn: {self.int_(env, d)}, order: {self.int_(env, d)}}}",
        ]
        options += [lambda b=b: b for b in self.bound(env, "Block")]
        return self.pick(options)

    def bool_(self, env: dict[str, str], d: int) -> str:
        i = lambda: self.int_(env, max(d - 1, 0))  # noqa: E731
        leaves: list[Callable[[], str]] = [
            lambda: self.draw(st.sampled_from(["true", "false"])),
            lambda: f"{i()} {self.draw(st.sampled_from(['==', '!=', '<', '<=', '>', '>=']))} {i()}",
            lambda: f"aligned({i()}, {i()})",
            lambda: f"{i()} {self.draw(st.sampled_from(['in', 'not in']))} "
                    f"{self.interval(env, d - 1)}",
        ]
        leaves += [lambda p=p: f"{p}.buddy" for p in self.bound(env, "Page")]
        if self.action:
            leaves += [
                lambda: self.draw(st.sampled_from(["raised", "raised(ValueError)", "r == none"])),
                lambda: f"(r != none -> r {self.draw(st.sampled_from(['<', '>=', '==']))} {i()})",
            ]
        if d <= 0:
            return self.pick(leaves)
        b = lambda: self.bool_(env, d - 1)  # noqa: E731
        composites: list[Callable[[], str]] = [
            lambda: f"not ({b()})",
            lambda: f"({b()} {self.draw(st.sampled_from(['and', 'or', '->', '<->']))} {b()})",
            lambda: f"disjoint({self.interval(env, d - 1)}, {self.interval(env, d - 1)})",
            lambda: f"contains({self.interval(env, d - 1)}, {i()})",
            lambda: f"contains({self.interval(env, d - 1)}, {self.interval(env, d - 1)})",
            lambda: f"({self.interval(env, d - 1)}) == ({self.interval(env, d - 1)})",
            lambda: f"{self.record(env, d - 1)} {self.draw(st.sampled_from(['in', 'not in']))} "
                    f"{self.draw(st.sampled_from(['free', 'allocated', 'free_area']))}",
            lambda: f"{self.record(env, d - 1)} == {self.record(env, d - 1)}",
            lambda: self.quantifier(env, d),
            lambda: self.quantifier(env, d),
            lambda: f"(if {b()} then {b()} else {b()})",
            lambda: self.let(env, d, self.bool_),
        ]
        if self.may_use_old:
            composites.append(lambda: self.old(b))
        return self.pick(leaves + composites)

    def quantifier(self, env: dict[str, str], d: int) -> str:
        bind, inner = self.binder(env, d)
        kind = self.draw(st.sampled_from(["forall", "exists"]))
        return f"({kind} {bind}: {self.bool_(inner, d - 1)})"


def buddy_after_some_steps() -> BuddyAllocator:
    a = BuddyAllocator(37, 4)
    taken = [a.alloc(o) for o in (0, 2, 1, 0, 3, 0)]
    a.free(taken[1], 2)
    a.free(taken[3], 0)
    return a


SNAPSHOT = buddy_after_some_steps().snapshot()


def step(op: str, args: tuple[int, ...]):
    a = buddy_after_some_steps()
    old = a.snapshot()
    result, raised = None, None
    try:
        result = getattr(a, op)(*args)
    except ValueError:
        raised = "ValueError"
    return old, a.snapshot(), result, raised


STEPS = {o: step("alloc", (o,)) for o in (-1, 0, 2, 3, 9)}


@st.composite
def invariant_bodies(draw: st.DrawFn) -> str:
    return Gen(draw, action=False).bool_({}, draw(st.integers(0, 4)))


@st.composite
def action_bodies(draw: st.DrawFn) -> tuple[str, int]:
    body = Gen(draw, action=True).bool_({}, draw(st.integers(0, 4)))
    return body, draw(st.sampled_from(sorted(STEPS)))


DEFS = "def span(b) = b.pfn .. b.pfn + 2 ** b.order\n"


def compare(stats: Counter, spec: CompiledSpec, got, oracle: Oracle, body: ast.Expr) -> None:
    """The evaluator's verdict against the oracle's, where both have one."""
    try:
        want = oracle.holds(body)
    except Undefined:
        stats["undefined"] += 1
        return
    if got.error is not None:
        # Only a plan may fail where the loop it replaces stopped early.
        stats["evaluator error, oracle value"] += 1
        return
    assert (got.holds, got.live) == (want, oracle.live > 0)
    stats["compared"] += 1


def test_random_invariants_evaluate_like_the_oracle() -> None:
    stats: Counter = Counter()

    @settings(FUZZ, max_examples=300)
    @given(invariant_bodies())
    def run(body: str) -> None:
        try:
            checked = check_text(f"spec buddy\n{DEFS}invariant x: {body}\n", "gen.mm")
        except SpecError as err:
            pytest.fail(f"generated a spec that does not check:\n{err.render()}")
        c = CompiledSpec(checked)
        got = c.check_invariant("x", SNAPSHOT)  # nothing but EvalError is caught inside
        compare(stats, c, got, Oracle(c.spec, VOCABULARY, SNAPSHOT), c.spec.invariants[0].body)
        stats["holds" if got.holds else "fails"] += 1

    run()
    assert stats["compared"] >= 200, stats
    assert stats["holds"] >= 50 and stats["fails"] >= 50, stats


def test_random_action_bodies_evaluate_like_the_oracle() -> None:
    stats: Counter = Counter()

    @settings(FUZZ, max_examples=200)
    @given(action_bodies())
    def run(case: tuple[str, int]) -> None:
        body, order = case
        try:
            checked = check_text(
                f"spec buddy\n{DEFS}action z after alloc(o) returns r: {body}\n", "gen.mm"
            )
        except SpecError as err:
            pytest.fail(f"generated a spec that does not check:\n{err.render()}")
        c = CompiledSpec(checked)
        ((act, fn),) = c.actions["alloc"]
        old, new, result, raised = STEPS[order]
        got = c.check_action(act, fn, old, new, (order,), result, raised)
        oracle = Oracle(c.spec, VOCABULARY, new, old=old, args={"o": order, "r": result},
                        raised=raised)
        compare(stats, c, got, oracle, act.body)

    run()
    assert stats["compared"] >= 120, stats


# ------------------------------------------------------------------ (d) printer round trip

LEVEL = {
    "<->": 1, "->": 2, "or": 3, "and": 4,
    "==": 6, "!=": 6, "<": 6, "<=": 6, ">": 6, ">=": 6, "in": 6, "not in": 6,
    "|": 8, "^": 9, "&": 10, "<<": 11, ">>": 11, "+": 12, "-": 12,
    "*": 13, "/": 13, "//": 13, "%": 13, "**": 15,
}
OPEN_ENDED = (ast.Quantifier, ast.Let, ast.IfElse)  # their last part takes all to the right


def level(e: ast.Expr) -> int:
    if isinstance(e, ast.Binary):
        return LEVEL[e.op]
    if isinstance(e, ast.Interval):
        return 7
    if isinstance(e, ast.Unary):
        return 5 if e.op == "not" else 14
    if isinstance(e, OPEN_ENDED):
        return 5
    if isinstance(e, ast.IntLit) and e.value < 0:
        return 14  # printed as `-5`: a unary minus
    return 16


def show(e: ast.Expr, need: int = 1, tail: bool = True) -> str:
    """e as text with parentheses only where `need` (the context's level) or an
    open-ended form followed by more text requires them."""
    text = _show(e, tail or need > 5)
    if level(e) < need or (isinstance(e, OPEN_ENDED) and not tail):
        return f"({_show(e, True)})"
    return text


def _show(e: ast.Expr, tail: bool) -> str:
    if isinstance(e, ast.IntLit):
        return str(e.value)
    if isinstance(e, ast.BoolLit):
        return "true" if e.value else "false"
    if isinstance(e, ast.NoneLit):
        return "none"
    if isinstance(e, ast.Name):
        return e.id
    if isinstance(e, ast.Field):
        return f"{show(e.obj, 16, False)}.{e.name}"
    if isinstance(e, ast.Call):
        return f"{e.func}({', '.join(show(a) for a in e.args)})"
    if isinstance(e, ast.RecordLit):
        return e.type_name + "{" + ", ".join(f"{k}: {show(v)}" for k, v in e.fields) + "}"
    if isinstance(e, ast.Unary):
        if e.op == "not":
            return f"not {show(e.operand, 5, tail)}"
        return f"-{show(e.operand, 14, tail)}"
    if isinstance(e, ast.Interval):
        return f"{show(e.lo, 8, False)} .. {show(e.hi, 8, tail)}"
    if isinstance(e, ast.Binary):
        n = LEVEL[e.op]
        if e.op == "**":
            left, right = show(e.left, 16, False), show(e.right, 14, tail)
        elif e.op == "->":
            left, right = show(e.left, n + 1, False), show(e.right, n, tail)
        elif n in (1, 6):  # no chaining: both operands one level up
            left, right = show(e.left, n + 1, False), show(e.right, n + 1, tail)
        else:
            left, right = show(e.left, n, False), show(e.right, n + 1, tail)
        return f"{left} {e.op} {right}"
    if isinstance(e, (ast.Quantifier, ast.Aggregate)):
        binders = ", ".join(
            ", ".join(b.names) + f" in {show(b.domain, 7, False)}"
            + (f" step {show(b.step, 7, False)}" if b.step is not None else "")
            for b in e.binders
        )
        if isinstance(e, ast.Aggregate):
            return f"{e.kind}({binders}" + (f": {show(e.body)}" if e.body is not None else "") + ")"
        return f"{e.kind} {binders}: {show(e.body, 1, tail)}"
    if isinstance(e, ast.Let):
        return f"let {e.name} = {show(e.value, 7, False)} in {show(e.body, 1, tail)}"
    if isinstance(e, ast.IfElse):
        return f"if {show(e.cond)} then {show(e.then)} else {show(e.orelse, 1, tail)}"
    raise TypeError(e)


def show_spec(spec: ast.Spec) -> str:
    """A whole spec file, from its tree."""
    out = [f'spec {spec.subsystem} "{spec.doc}"' if spec.doc else f"spec {spec.subsystem}"]
    for d in spec.defines:
        params = f"({', '.join(d.params)})" if d.params else ""
        out.append(f"def {d.name}{params} = {show(d.body)}")
    for i in spec.invariants:
        doc = f' "{i.doc}"' if i.doc else ""
        out.append(f"invariant {i.name}{doc}: {show(i.body)}")
    for a in spec.actions:
        doc = f' "{a.doc}"' if a.doc else ""
        returns = f" returns {a.result}" if a.result else ""
        head = f"action {a.name}{doc} after {a.op}({', '.join(a.params)}){returns}"
        out.append(f"{head}: {show(a.body)}")
    return "\n".join(out) + "\n"


N = ast.NOWHERE
names = st.sampled_from(["a", "b", "x", "free", "npages", "counter", "forallx", "old"])
leaves = st.one_of(
    st.builds(lambda v: ast.IntLit(N, v), st.integers(-20, 0x1_0000)),
    st.builds(lambda v: ast.BoolLit(N, v), st.booleans()),
    st.just(ast.NoneLit(N)),
    st.builds(lambda n: ast.Name(N, n), names),
)


def binders_of(children: st.SearchStrategy) -> st.SearchStrategy:
    binder = st.builds(
        lambda ns, dom, step: ast.Binder(N, tuple(ns), dom, step),
        st.lists(names, min_size=1, max_size=3), children, st.none() | children,
    )
    return st.lists(binder, min_size=1, max_size=2).map(tuple)


def node(children: st.SearchStrategy) -> st.SearchStrategy:
    fields = st.sampled_from(["pfn", "order", "lo", "hi"])
    return st.one_of(
        st.builds(lambda op, a, b: ast.Binary(N, op, a, b), st.sampled_from(sorted(LEVEL)),
                  children, children),
        st.builds(lambda a: ast.Unary(N, "not", a), children),
        st.builds(lambda a: ast.Unary(N, "-", a), children.filter(
            lambda a: not isinstance(a, ast.IntLit))),  # the parser folds -<literal>
        st.builds(lambda a, b: ast.Interval(N, a, b), children, children),
        st.builds(lambda a, f: ast.Field(N, a, f), children, fields),
        st.builds(lambda f, args: ast.Call(N, f, tuple(args)), st.sampled_from(["f", "old", "min"]),
                  st.lists(children, max_size=3)),
        st.builds(lambda t, fs: ast.RecordLit(N, t, tuple(fs)), st.sampled_from(["Block", "Page"]),
                  st.lists(st.tuples(fields, children), max_size=2)),
        st.builds(lambda k, bs, body: ast.Quantifier(N, k, bs, body),
                  st.sampled_from(["forall", "exists"]), binders_of(children), children),
        st.builds(lambda k, bs, body: ast.Aggregate(N, k, bs, body),
                  st.sampled_from(["count", "sum"]), binders_of(children), st.none() | children),
        st.builds(lambda n, v, b: ast.Let(N, n, v, b), names, children, children),
        st.builds(lambda c, t, f: ast.IfElse(N, c, t, f), children, children, children),
    )


trees = st.recursive(leaves, node, max_leaves=14)


@settings(FUZZ, max_examples=300)
@given(trees)
def test_printed_trees_parse_back_to_themselves(tree: ast.Expr) -> None:
    text = show(tree)
    parsed = parse_spec(f"spec s\ninvariant x: {text}\n").invariants[0].body
    assert parsed == tree, text


def test_the_printer_uses_no_more_parentheses_than_needed() -> None:
    for text in ["a -> b -> c", "(a -> b) -> c", "not a and b", "not (a and b)", "2 ** 3 ** 2",
                 "(2 ** 3) ** 2", "-2 ** 2", "(-2) ** 2", "a - (b - c)", "a - b - c",
                 "(forall x in C: p) and q", "a and forall x in C: p or q", "x in 0 .. n + 1",
                 "f(forall x in C: p, q)", "if a then b else c or d", "(if a then b else c) or d"]:
        tree = parse_spec(f"spec s\ninvariant x: {text}").invariants[0].body
        assert show(tree) == text


def test_the_library_prints_and_parses_back() -> None:
    spec = parse_spec(BUDDY_MM, "buddy.mm")
    again = parse_spec(show_spec(spec), "again.mm")
    assert (again.subsystem, again.doc) == (spec.subsystem, spec.doc)
    assert again.defines == spec.defines
    assert again.invariants == spec.invariants
    assert again.actions == spec.actions
