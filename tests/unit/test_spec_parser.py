"""The spec parser (spec/grammar.lark, spec/parser.py): text in, AST out.

Every construct of the language is parsed here and its tree checked. Operator
precedence and associativity are pinned by a table of expressions and the tree
each must give, written as s-expressions (`sexp` below), so a change to the
grammar that moves a level shows up as one readable failing row.
"""

from __future__ import annotations

import pytest
from mmcheck.spec import ast
from mmcheck.spec.errors import SpecSyntaxError
from mmcheck.spec.parser import load_spec, parse_spec


def sexp(e: ast.Expr | None) -> str:
    """A tree as a compact s-expression: `a -> b -> c` is `(-> a (-> b c))`."""
    if e is None:
        return "_"
    if isinstance(e, ast.IntLit):
        return str(e.value)
    if isinstance(e, ast.BoolLit):
        return "true" if e.value else "false"
    if isinstance(e, ast.NoneLit):
        return "none"
    if isinstance(e, ast.Name):
        return e.id
    if isinstance(e, ast.Unary):
        return f"({'neg' if e.op == '-' else e.op} {sexp(e.operand)})"
    if isinstance(e, ast.Binary):
        return f"({e.op} {sexp(e.left)} {sexp(e.right)})"
    if isinstance(e, ast.Interval):
        return f"(.. {sexp(e.lo)} {sexp(e.hi)})"
    if isinstance(e, ast.Field):
        return f"(. {sexp(e.obj)} {e.name})"
    if isinstance(e, ast.Call):
        return "(call " + " ".join([e.func, *map(sexp, e.args)]) + ")"
    if isinstance(e, ast.RecordLit):
        return "(" + " ".join([e.type_name, *(f"{k}={sexp(v)}" for k, v in e.fields)]) + ")"
    if isinstance(e, (ast.Quantifier, ast.Aggregate)):
        return f"({e.kind} {binders(e.binders)} {sexp(e.body)})"
    if isinstance(e, ast.Let):
        return f"(let {e.name} {sexp(e.value)} {sexp(e.body)})"
    if isinstance(e, ast.IfElse):
        return f"(if {sexp(e.cond)} {sexp(e.then)} {sexp(e.orelse)})"
    raise TypeError(e)


def binders(bs: tuple[ast.Binder, ...]) -> str:
    parts = []
    for b in bs:
        step = f" step {sexp(b.step)}" if b.step is not None else ""
        parts.append(f"{','.join(b.names)} in {sexp(b.domain)}{step}")
    return "[" + "; ".join(parts) + "]"


def expr(text: str) -> ast.Expr:
    """The body of `invariant x: TEXT` in a spec of its own."""
    return parse_spec(f"spec buddy\ninvariant x: {text}\n").invariants[0].body


# ------------------------------------------------------------------ precedence

PRECEDENCE = [
    # implication is right-associative, <-> is the loosest and does not chain
    ("a -> b -> c", "(-> a (-> b c))"),
    ("a <-> b -> c", "(<-> a (-> b c))"),
    ("a -> b <-> c", "(<-> (-> a b) c)"),
    ("a or b -> c or d", "(-> (or a b) (or c d))"),
    # or below and, both left-associative
    ("a or b and c", "(or a (and b c))"),
    ("a and b or c", "(or (and a b) c)"),
    ("a or b or c", "(or (or a b) c)"),
    ("a and b and c", "(and (and a b) c)"),
    # not binds tighter than and, looser than comparisons and `in`
    ("not a and b", "(and (not a) b)"),
    ("not not a", "(not (not a))"),
    ("not a == b", "(not (== a b))"),
    ("not x in C", "(not (in x C))"),
    ("x not in C", "(not in x C)"),
    ("a == b and c != d", "(and (== a b) (!= c d))"),
    ("a < b -> c >= d", "(-> (< a b) (>= c d))"),
    # arithmetic as in Python
    ("1 + 2 * 3", "(+ 1 (* 2 3))"),
    ("(1 + 2) * 3", "(* (+ 1 2) 3)"),
    ("1 - 2 - 3", "(- (- 1 2) 3)"),
    ("8 / 2 / 2", "(/ (/ 8 2) 2)"),
    ("a // b % c * d", "(* (% (// a b) c) d)"),
    ("2 ** 3 ** 2", "(** 2 (** 3 2))"),
    ("-2 ** 2", "(neg (** 2 2))"),
    ("2 ** -1", "(** 2 -1)"),
    ("-x * y", "(* (neg x) y)"),
    ("- -x", "(neg (neg x))"),
    ("--3", "3"),
    ("1 - -3", "(- 1 -3)"),
    ("a + b ** c * d", "(+ a (* (** b c) d))"),
    # bitwise levels between arithmetic and comparison: | ^ & << >>, as in Python
    ("1 << 2 + 3", "(<< 1 (+ 2 3))"),
    ("a >> b << c", "(<< (>> a b) c)"),
    ("a & b << 1", "(& a (<< b 1))"),
    ("a ^ b & c", "(^ a (& b c))"),
    ("a | b ^ c", "(| a (^ b c))"),
    ("a | b == c", "(== (| a b) c)"),
    ("a & b == 0", "(== (& a b) 0)"),
    # intervals: looser than |, tighter than comparisons and `in`
    ("x in 0 .. n + 1", "(in x (.. 0 (+ n 1)))"),
    ("0 .. n | 1", "(.. 0 (| n 1))"),
    ("a .. b == c .. d", "(== (.. a b) (.. c d))"),
    # postfix: fields and calls bind tightest
    ("b.pfn + 1", "(+ (. b pfn) 1)"),
    ("-b.order", "(neg (. b order))"),
    ("2 ** b.order", "(** 2 (. b order))"),
    ("f(x).a.b", "(. (. (call f x) a) b)"),
    ("Block{pfn: 1, order: 2}.pfn", "(. (Block pfn=1 order=2) pfn)"),
    ("count(b in C).x", "(. (count [b in C] _) x)"),
    # binding forms reach as far right as they can
    ("forall b in C: p and q", "(forall [b in C] (and p q))"),
    ("(forall b in C: p) and q", "(and (forall [b in C] p) q)"),
    ("a and forall b in C: p or q", "(and a (forall [b in C] (or p q)))"),
    ("not forall b in C: p", "(not (forall [b in C] p))"),
    ("let x = 1 + 2 in x > 0 and y", "(let x (+ 1 2) (and (> x 0) y))"),
    ("let s = 0 .. n in 3 in s", "(let s (.. 0 n) (in 3 s))"),
    ("if a then b else c or d", "(if a b (or c d))"),
    ("if a or b then c -> d else e", "(if (or a b) (-> c d) e)"),
    ("a or if a then b else c", "(or a (if a b c))"),
    ("count(b in C) + 1", "(+ (count [b in C] _) 1)"),
    ("sum(b in C: b.order) * 2", "(* (sum [b in C] (. b order)) 2)"),
]


@pytest.mark.parametrize(("text", "tree"), PRECEDENCE, ids=[t for t, _ in PRECEDENCE])
def test_precedence_and_associativity(text: str, tree: str) -> None:
    assert sexp(expr(text)) == tree


@pytest.mark.parametrize(
    "text",
    ["a == b == c", "a < b < c", "x in A in B", "a <-> b <-> c", "0 .. 1 .. 2", "a not in b in c"],
)
def test_non_associative_operators_do_not_chain(text: str) -> None:
    """Comparisons, `in`, `..` and `<->` take exactly two operands: chaining is an error."""
    with pytest.raises(SpecSyntaxError):
        expr(text)


def test_the_grammar_comment_lists_the_levels_in_the_order_the_table_pins() -> None:
    """The precedence list at the top of grammar.lark is what the docs copy: keep it true."""
    from pathlib import Path

    import mmcheck.spec

    grammar = (Path(mmcheck.spec.__file__).parent / "grammar.lark").read_text()
    assert "<-> ; -> (right) ; or ; and ; not / forall /" in grammar
    assert "comparisons and `in` ; `..` ; | ; ^ ; & ; << >> ;" in grammar
    assert "+ - ; * / % ; unary - ; ** (right) ; .field, calls, atoms" in grammar


# ------------------------------------------------------------------ items

BUDDY_LIKE = '''\
spec buddy "what free_area looks like"   # the header names the subsystem

# helpers
def size(b) = 2 ** b.order
def blocks = free + allocated
def pair(a, b) = a.pfn < b.pfn

invariant plain: npages >= 0
invariant documented "every block is aligned":
    forall b in blocks: aligned(b.pfn, size(b))

action no_result after free(pfn, order): not raised -> pfn >= 0
action with_result "alloc returns an aligned pfn"
after alloc(order) returns r:
    r != none -> aligned(r, 2 ** order)
'''


def test_items_of_a_spec_file() -> None:
    spec = parse_spec(BUDDY_LIKE, "lib.mm")
    assert (spec.path, spec.subsystem, spec.doc) == ("lib.mm", "buddy", "what free_area looks like")
    assert spec.source == BUDDY_LIKE
    assert [(d.name, d.params) for d in spec.defines] == [
        ("size", ("b",)), ("blocks", ()), ("pair", ("a", "b")),
    ]
    assert sexp(spec.define("blocks").body) == "(+ free allocated)"
    assert [(i.name, i.doc) for i in spec.invariants] == [
        ("plain", ""), ("documented", "every block is aligned"),
    ]
    no_result, with_result = spec.actions
    assert (no_result.name, no_result.op, no_result.params, no_result.result, no_result.doc) == (
        "no_result", "free", ("pfn", "order"), None, "",
    )
    assert (with_result.op, with_result.params, with_result.result, with_result.doc) == (
        "alloc", ("order",), "r", "alloc returns an aligned pfn",
    )
    assert sexp(with_result.body) == "(-> (!= r none) (call aligned r (** 2 order)))"
    assert [p.name for p in spec.properties] == ["plain", "documented", "no_result", "with_result"]
    assert spec.property("with_result") is with_result and spec.property("nope") is None
    assert spec.define("nope") is None


def test_header_without_description_and_items_in_any_order() -> None:
    spec = parse_spec("invariant a: true\nspec buddy\ndef d = 1\n")
    assert (spec.subsystem, spec.doc) == ("buddy", "")
    assert [i.name for i in spec.invariants] == ["a"]
    assert spec.header_span.line == 2


def test_an_empty_spec_is_just_a_header() -> None:
    spec = parse_spec("spec vma")
    assert (spec.defines, spec.invariants, spec.actions) == ((), (), ())


def test_action_with_no_parameters() -> None:
    (act,) = parse_spec("spec fault\naction s after spawn() returns pid: pid > 0").actions
    assert (act.op, act.params, act.result) == ("spawn", (), "pid")


def test_description_escapes_and_comment_characters_inside_strings() -> None:
    spec = parse_spec('spec buddy "a # b \\"q\\" tab\\there \\\\ \\d é"\n')
    assert spec.doc == 'a # b "q" tab\there \\ \\d é'


def test_comments_are_ignored_everywhere() -> None:
    text = (
        "# leading\nspec buddy # after the header\n"
        "invariant x: # before the body\n  a # inside\n  and b # after\n# trailing"
    )
    assert sexp(parse_spec(text).invariants[0].body) == "(and a b)"


def test_whitespace_and_newlines_are_insignificant() -> None:
    one = parse_spec("spec buddy invariant x: forall b in free: b.pfn >= 0")
    many = parse_spec("spec\n buddy\n\ninvariant\tx\n:\n forall\nb\nin free\n:\nb . pfn>=0")
    assert one.invariants == many.invariants


# ------------------------------------------------------------------ expressions


@pytest.mark.parametrize(
    ("text", "value"),
    [("0", 0), ("42", 42), ("0x1000", 4096), ("0xff_ff", 0xFFFF), ("0x_10", 16), ("0xABC", 0xABC),
     ("1_000_000", 1_000_000), ("007", 7), ("-5", -5), ("- 0x10", -16)],
)
def test_integer_literals(text: str, value: int) -> None:
    e = expr(text)
    assert isinstance(e, ast.IntLit) and e.value == value


@pytest.mark.parametrize("text", ["0x", "0x_", "0xg", "1x2"])
def test_malformed_hex_literals_are_syntax_errors(text: str) -> None:
    with pytest.raises(SpecSyntaxError):
        expr(text)


def test_literals_and_names() -> None:
    assert expr("true") == ast.BoolLit(ast.NOWHERE, True)
    assert expr("false") == ast.BoolLit(ast.NOWHERE, False)
    assert expr("none") == ast.NoneLit(ast.NOWHERE)
    assert expr("free_area") == ast.Name(ast.NOWHERE, "free_area")


@pytest.mark.parametrize(
    "name",
    ["forallx", "existsy", "counter", "summary", "notable", "inside", "iffy", "steps", "spec_x",
     "nones", "trueish", "letter", "order", "defs", "afterwards", "old", "raised", "_x1", "Block"],
)
def test_words_that_start_with_a_keyword_are_names(name: str) -> None:
    assert expr(name) == ast.Name(ast.NOWHERE, name)


@pytest.mark.parametrize(
    "item",
    ["def count = 1", "def sum(a) = a", "def forall = 1", "def true = 1", "invariant not: true",
     "invariant x: forall exists in free: true", "invariant x: let in = 1 in true",
     "action count after alloc(o): true", "action a after alloc(sum): true",
     "action a after alloc(o) returns none: true"],
)
def test_keywords_are_never_names(item: str) -> None:
    """Even where only a name can follow: `def count` would define what no one can call."""
    with pytest.raises(SpecSyntaxError) as info:
        parse_spec("spec buddy\n" + item)
    assert "is a keyword of the spec language" in (info.value.hint or "")


def test_calls_fields_and_record_literals() -> None:
    assert sexp(expr("aligned(b.pfn, 2 ** b.order)")) == (
        "(call aligned (. b pfn) (** 2 (. b order)))"
    )
    assert sexp(expr("f()")) == "(call f)"
    assert sexp(expr("f (x, y)")) == "(call f x y)"
    assert sexp(expr("old(Block{pfn: p, order: 0} in free)")) == (
        "(call old (in (Block pfn=p order=0) free))"
    )
    assert sexp(expr("Block{}")) == "(Block)"
    assert sexp(expr("Page{pfn: 1, buddy: true, order: 0, refcount: 0}.buddy")) == (
        "(. (Page pfn=1 buddy=true order=0 refcount=0) buddy)"
    )
    assert sexp(expr("(0 .. 4).hi")) == "(. (.. 0 4) hi)"
    assert sexp(expr("raised(ValueError) or raised")) == "(or (call raised ValueError) raised)"


def test_quantifiers_binders_and_steps() -> None:
    assert sexp(expr("exists b in free: true")) == "(exists [b in free] true)"
    assert sexp(expr("forall a, b in free: a != b")) == "(forall [a,b in free] (!= a b))"
    assert sexp(expr("forall a, b, c in free: true")) == "(forall [a,b,c in free] true)"
    assert sexp(expr("forall a in free, p in 0 .. npages step 2 ** a.order: p >= 0")) == (
        "(forall [a in free; p in (.. 0 npages) step (** 2 (. a order))] (>= p 0))"
    )
    assert sexp(expr("exists a, b in free, c in allocated: true")) == (
        "(exists [a,b in free; c in allocated] true)"
    )
    assert sexp(expr("forall b in free + allocated: true")) == (
        "(forall [b in (+ free allocated)] true)"
    )


def test_aggregates() -> None:
    assert sexp(expr("count(b in free)")) == "(count [b in free] _)"
    assert sexp(expr("count(b in free: b.order > 0)")) == "(count [b in free] (> (. b order) 0))"
    assert sexp(expr("sum(b in free: 2 ** b.order)")) == "(sum [b in free] (** 2 (. b order)))"
    assert sexp(expr("count(a, b in free, p in 0 .. 8 step 4)")) == (
        "(count [a,b in free; p in (.. 0 8) step 4] _)"
    )
    agg = expr("sum(b in free)")  # the parser accepts it; the type checker asks for a body
    assert isinstance(agg, ast.Aggregate) and agg.body is None


def test_let_if_intervals_membership() -> None:
    assert sexp(expr("let n = npages in n > 0")) == "(let n npages (> n 0))"
    assert sexp(expr("if r != none then r else 0")) == "(if (!= r none) r 0)"
    assert sexp(expr("x in 0 .. 8")) == "(in x (.. 0 8))"
    assert sexp(expr("b not in free")) == "(not in b free)"
    assert sexp(expr("(x in 0 .. 8) == (y in 0 .. 8)")) == "(== (in x (.. 0 8)) (in y (.. 0 8)))"


def test_parentheses_leave_no_node() -> None:
    assert expr("((((a))))") == expr("a")
    assert expr("(a + b) * c") != expr("a + b * c")


def test_ast_equality_ignores_spans() -> None:
    a = parse_spec("spec buddy\ninvariant x: a+b").invariants[0]
    b = parse_spec("spec buddy\n\n\ninvariant   x:\n   a\n + b").invariants[0]
    assert a == b and a.span != b.span and a.body.span != b.body.span


# ------------------------------------------------------------------ spans

SPANNED = """\
spec buddy "d"
def size(b) = 2 ** b.order
invariant x: a + bb > 0
action y after alloc(o) returns r:
    r != none
      -> r >= 0
"""


def test_spans_are_one_based_with_exclusive_ends() -> None:
    spec = parse_spec(SPANNED)
    assert spec.header_span == ast.Span(1, 1, 1, 15)
    size = spec.define("size")
    assert size.span == ast.Span(2, 1, 2, 27)
    assert size.body.span == ast.Span(2, 15, 2, 27)  # 2 ** b.order
    assert size.body.right.span == ast.Span(2, 20, 2, 27)  # b.order
    assert size.body.right.obj.span == ast.Span(2, 20, 2, 21)  # b
    inv = spec.invariants[0]
    assert inv.span == ast.Span(3, 1, 3, 24)
    cmp = inv.body
    assert cmp.span == ast.Span(3, 14, 3, 24)
    assert cmp.left.span == ast.Span(3, 14, 3, 20)  # a + bb
    assert cmp.left.right.span == ast.Span(3, 18, 3, 20)  # bb
    assert cmp.right.span == ast.Span(3, 23, 3, 24)
    act = spec.actions[0]
    assert act.span.line == 4 and act.span.column == 1 and act.span.end_line == 6
    assert act.body.span == ast.Span(5, 5, 6, 16)  # an expression over two lines
    assert act.body.right.span == ast.Span(6, 10, 6, 16)
    assert str(act.body.span) == "5:5"


def test_the_text_under_each_span_is_the_node() -> None:
    """Slicing the source by any expression's span gives back that expression's text."""
    text = (
        "spec buddy\n"
        "invariant x: forall b in free: aligned(b.pfn, 2 ** b.order) and -b.order < 0x10"
    )
    spec = parse_spec(text)
    line = text.splitlines()[1]

    def under(e: ast.Expr) -> str:
        return line[e.span.column - 1 : e.span.end_column - 1]

    q = spec.invariants[0].body
    assert under(q) == line[len("invariant x: "):]
    assert under(q.binders[0]) == "b in free"
    assert under(q.binders[0].domain) == "free"
    call, less = q.body.left, q.body.right
    assert under(call) == "aligned(b.pfn, 2 ** b.order)"
    assert [under(a) for a in call.args] == ["b.pfn", "2 ** b.order"]
    assert under(less) == "-b.order < 0x10"
    assert under(less.left) == "-b.order" and under(less.right) == "0x10"


def test_folded_negative_literal_spans_the_minus() -> None:
    e = expr("-  7")
    assert isinstance(e, ast.IntLit) and e.value == -7 and e.span == ast.Span(2, 14, 2, 18)


# ------------------------------------------------------------------ files


def test_load_spec_reads_a_file(tmp_path) -> None:
    f = tmp_path / "t.mm"
    f.write_text(BUDDY_LIKE, encoding="utf-8")
    spec = load_spec(f)
    assert spec.path == str(f) and spec.subsystem == "buddy" and len(spec.properties) == 4


def test_the_standard_library_parses() -> None:
    from mmcheck.spec.loader import library

    files = library()
    assert files, "spec/lib holds no .mm file"
    for f in files:
        spec = load_spec(f)
        assert spec.properties, f
