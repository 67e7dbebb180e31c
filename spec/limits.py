"""How big a spec may be, checked once after parsing, so no later pass fails on size.

Every pass after the parser (type checker, concrete evaluator, Z3 compiler,
explanation) walks expressions recursively, one or a few Python frames per level
of nesting, and `def`s are expanded where they are used. Instead of rewriting
each pass as a loop, mmcheck bounds what they can meet and makes room for it:

- nesting: at most MAX_DEPTH levels per property, counting the bodies of the
  defs it uses (expanded in place) and each binder of a quantifier as a level;
  `fit_recursion_limit()` raises Python's recursion limit to FRAMES_PER_LEVEL
  frames per level. That is safe on the C stack: CPython 3.11 runs pure-Python
  calls without C recursion, and the passes that recurse through C (dataclass
  `==` and `hash`, generators) were measured to overflow an 8 MiB stack only past
  10,000 levels. A smaller stack (ulimit -s) lowers MAX_DEPTH in proportion.
- expanded size: at most MAX_EXPANDED nodes once defs are expanded, so a chain
  of defs that each use the previous one twice (2**n nodes) is an error, not a hang.
- numbers: literals of at most MAX_INT_BITS bits (about 3,700 decimal digits,
  below Python's 4,300-digit conversion limit); the evaluator holds its results
  to the same bound, so every value it computes can be printed.

The parser itself is Lark's LALR automaton (a loop over an explicit stack) and the
parse tree becomes an AST without recursion, so any nesting parses.
"""

from __future__ import annotations

import dataclasses
import resource
import sys
from collections.abc import Iterator, Mapping

from mmcheck.spec import ast
from mmcheck.spec.errors import SpecSyntaxError

MAX_DEPTH = 2000
MAX_EXPANDED = 200_000
MAX_INT_BITS = 12_288
FRAMES_PER_LEVEL = 8
_MEASURED_STACK = 8 << 20  # the stack MAX_DEPTH was measured against

Item = ast.Define | ast.Invariant | ast.Action


def max_depth() -> int:
    """MAX_DEPTH, lowered in proportion where the stack is smaller than 8 MiB."""
    soft, _ = resource.getrlimit(resource.RLIMIT_STACK)
    if soft == resource.RLIM_INFINITY or soft >= _MEASURED_STACK:
        return MAX_DEPTH
    return max(100, MAX_DEPTH * soft // _MEASURED_STACK)


def fit_recursion_limit() -> None:
    """Raise Python's recursion limit (never lower it) to fit max_depth() levels."""
    want = max_depth() * FRAMES_PER_LEVEL + 1000
    if sys.getrecursionlimit() < want:
        sys.setrecursionlimit(want)


def fits(v: int) -> bool:
    """Whether a computed value is within MAX_INT_BITS (bools and non-ints always are)."""
    return v.__class__ is not int or v.bit_length() <= MAX_INT_BITS


def power_fits(a: int, b: int) -> bool:
    """Whether a ** b (b >= 0) can fit, judged before computing it."""
    return abs(a) <= 1 or (abs(a).bit_length() - 1) * b <= MAX_INT_BITS


def children(e: ast.Expr) -> Iterator[ast.Expr]:
    """The sub-expressions of e, in source order (record fields' values included)."""
    for fld in dataclasses.fields(e):
        v = getattr(e, fld.name)
        if isinstance(v, ast.Expr):
            yield v
        elif isinstance(v, tuple):
            for x in v:
                if isinstance(x, ast.Expr):
                    yield x
                elif isinstance(x, tuple) and len(x) == 2 and isinstance(x[1], ast.Expr):
                    yield x[1]


def _def_used(e: ast.Expr, defines: Mapping[str, ast.Define]) -> str | None:
    """The def e expands to: a call of it, or (without parameters) its bare name."""
    if isinstance(e, ast.Call) and e.func in defines:
        return e.func
    if isinstance(e, ast.Name) and e.id in defines and not defines[e.id].params:
        return e.id
    return None


def _level(e: ast.Expr) -> int:
    """How many levels of nesting e adds: each binder of a quantifier is one."""
    if isinstance(e, (ast.Quantifier, ast.Aggregate)):
        return max(1, len(e.binders))
    return 1


@dataclasses.dataclass(frozen=True)
class Measure:
    """An expression's nesting depth and node count with its defs expanded, and the
    node at which the depth first passes the limit (None while within it)."""

    depth: int
    size: int
    too_deep: ast.Expr | None


def measure(
    body: ast.Expr, defines: Mapping[str, ast.Define], expanded: Mapping[str, Measure]
) -> Measure:
    """Depth and size of body, each def use counting as its (already measured) body."""
    limit = max_depth()
    depth, size, too_deep = 0, 0, None
    stack: list[tuple[ast.Expr, int]] = [(body, 0)]
    while stack:
        e, above = stack.pop()
        here = above + _level(e)
        used = _def_used(e, defines)
        inner = expanded.get(used) if used else None
        total = here + (inner.depth if inner else 0)
        size = min(size + 1 + (inner.size if inner else 0), MAX_EXPANDED + 1)
        if total > depth:
            depth = total
            if too_deep is None and total > limit:
                too_deep = e
        # A def's arguments may be substituted deep into its body: count them below it.
        stack.extend((c, total) for c in children(e))
    return Measure(depth, size, too_deep)


def _def_order(defines: Mapping[str, ast.Define]) -> list[str]:
    """Defs so that each comes after those its body uses (a cycle, which the type
    checker reports, is cut where it closes); iterative, for chains of any length."""
    uses = {
        name: [u for c in _walk(d.body) if (u := _def_used(c, defines))]
        for name, d in defines.items()
    }
    order: list[str] = []
    state: dict[str, int] = {}  # 1 = being visited, 2 = done
    for root in defines:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(uses[root]))]
        while stack:
            name, pending = stack[-1]
            nxt = next((u for u in pending if u not in state), None)
            if nxt is None:
                stack.pop()
                state[name] = 2
                order.append(name)
            else:
                state[nxt] = 1
                stack.append((nxt, iter(uses[nxt])))
    return order


def _walk(e: ast.Expr) -> Iterator[ast.Expr]:
    stack = [e]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(children(node))


def _error(spec: ast.Spec, node: ast.Expr | Item, message: str, hint: str) -> SpecSyntaxError:
    return SpecSyntaxError(message, path=spec.path, source=spec.source, span=node.span, hint=hint)


def check_limits(spec: ast.Spec) -> None:
    """Raise SpecSyntaxError at the first item nested too deeply or expanding too far."""
    defines = {d.name: d for d in spec.defines}
    expanded: dict[str, Measure] = {}
    for name in _def_order(defines):
        expanded[name] = measure(defines[name].body, defines, expanded)
    items: list[Item] = sorted(
        (*spec.defines, *spec.properties), key=lambda i: (i.span.line, i.span.column)
    )
    limit = max_depth()
    for item in items:
        m = expanded[item.name] if isinstance(item, ast.Define) else None
        m = m or measure(item.body, defines, expanded)
        if m.too_deep is not None:
            raise _error(
                spec,
                m.too_deep,
                f"'{item.name}' is nested {m.depth} levels deep; mmcheck reads at most {limit}",
                "the bodies of the defs it uses count where they are used; "
                "state a long chain with a quantifier or count over a collection instead",
            )
        if m.size > MAX_EXPANDED:
            raise _error(
                spec,
                item,
                f"'{item.name}' expands to more than {MAX_EXPANDED:,} nodes once its defs "
                "are expanded",
                "a def is copied into every place that uses it; a chain of defs that each "
                "use the previous one twice doubles at every link",
            )
