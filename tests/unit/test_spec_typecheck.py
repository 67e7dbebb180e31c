"""The type checker (spec/typecheck.py), and the language reference that describes it.

What is accepted and what is refused (the exact messages are in
test_spec_diagnostics.py): narrowing of `int?`, `old` and `raised`, defs used
at different types, collections, what each property reads (`PropertyInfo`).
Then docs/spec-language.md is held to the code: every ```mm block parses and
type-checks, every ```mm-wrong block fails with exactly the error shown after
it, the precedence table's "reads as" column is what the parser builds, and
the vocabulary tables list exactly what `VOCABULARY` declares.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mmcheck.model.buddy import VOCABULARY
from mmcheck.spec.errors import SpecError
from mmcheck.spec.loader import check_text, library, load
from mmcheck.spec.parser import parse_spec
from mmcheck.spec.typecheck import BUILTINS, typecheck

HEADER = "spec buddy\ndef size(b) = 2 ** b.order\ndef span(b) = b.pfn .. b.pfn + size(b)\n"


def errors(items: str) -> list[str]:
    """The messages of every type error in a buddy spec made of HEADER and `items`."""
    spec = parse_spec(HEADER + items, "t.mm")
    return [e.message for e in typecheck(spec, VOCABULARY)[1]]


def accepts(items: str) -> bool:
    found = errors(items)
    assert found == [], found
    return True


# ------------------------------------------------------------------ int? and narrowing

ALLOC = "action a after alloc(o) returns r: "

NARROWED = [
    "r != none -> r + 1 > 0",
    "r == none or r > 0",
    "(if r != none then r else 0) >= 0",
    "if r == none then true else r > 0",
    "r != none and r > 0",
    "not (r == none) -> r > 0",
    "not (r != none) or r > 0",
    "r != none and o >= 0 -> aligned(r, 2 ** o)",
    "o >= 0 and r != none -> r < npages",
    "r == none or (r >= 0 and aligned(r, 1))",
    "let x = r in x != none -> x > 0",
    "r != none -> Block{pfn: r, order: o} in allocated",
    "r != none -> r in 0 .. npages and contains(0 .. npages, r .. r + 2 ** o)",
    "r == 3 or 3 != r or r == none",
    "none == r or r > 0",
    "none != r -> r > 0",
    "(if o > 0 then r else 0) == none",  # int with int? is int?
    "raised -> r == none",
]


@pytest.mark.parametrize("body", NARROWED)
def test_a_guarded_optional_int_is_an_int(body: str) -> None:
    assert accepts(ALLOC + body)


UNGUARDED = [
    "r > 0",
    "r + 1 > 0",
    "-r < 0",
    "r == none -> r > 0",
    "r != none or r > 0",
    "(r != none -> true) and r > 0",
    "if r == none then r > 0 else true",
    "aligned(r, 1)",
    "r in 0 .. 4",
    "len(r .. r + 1) == 1",
    "min(r, 1) == 1",
    "Block{pfn: r, order: 0} in free",
    "(if o > 0 then r else 0) > 0",
    "let x = r in x > 0",
]


@pytest.mark.parametrize("body", UNGUARDED)
def test_an_unguarded_optional_int_is_refused(body: str) -> None:
    found = errors(ALLOC + body)
    assert found and all("may be none here" in m for m in found), found


def test_narrowing_does_not_leak_out_of_its_operand() -> None:
    assert errors(ALLOC + "(r != none -> r > 0) and r > 0") == [
        "a side of '>' may be none here",
    ]


# ------------------------------------------------------------------ actions


def test_old_and_raised_belong_to_actions() -> None:
    assert accepts("action a after free(p, o): not raised -> free_pages > old(free_pages)")
    assert accepts("action a after free(p, o): raised(ValueError) or old(count(b in free)) >= 0")
    assert accepts("def was(b) = old(b in allocated)\naction a after free(p, o): "
                   "was(Block{pfn: p, order: o}) -> not raised")
    assert errors("invariant x: old(npages) == npages") == [
        "old(...) only means something in an action property",
    ]
    assert errors("invariant x: raised") == ["'raised' only means something in an action property"]
    assert errors("invariant x: raised(ValueError)") == [
        "raised(...) only means something in an action property",
    ]
    assert errors("action a after free(p, o): old(1, 2) == 1") == ["old takes one expression"]


def test_action_signatures_follow_the_vocabulary() -> None:
    assert accepts("action a after alloc(order) returns pfn: pfn != none -> pfn >= 0")
    assert accepts("action a after alloc(anything): anything >= 0")
    assert errors("action a after alloc(o, p): true") == [
        "'alloc' takes 1 parameter(s): alloc(order)",
    ]
    assert errors("action a after alloc(): true") == ["'alloc' takes 1 parameter(s): alloc(order)"]
    assert errors("action a after free(p, o) returns r: true") == [
        "'free' returns nothing, so 'returns r' binds nothing",
    ]
    assert errors("action a after mmap(x): true") == ["the buddy model has no operation 'mmap'"]
    assert errors("action a after alloc(o) returns r: raised(OSError)") == [
        "'alloc' never raises OSError",
    ]


# ------------------------------------------------------------------ defs, scopes, names


def test_a_def_is_checked_at_each_use_with_the_arguments_types() -> None:
    # `first` works on any record with a pfn: Block and Page alike.
    assert accepts("def first(x) = x.pfn\ninvariant a: forall b in free, p in pages: "
                   "first(b) >= 0 and first(p) >= 0")
    assert errors("def first(x) = x.pfn\ninvariant a: first(3) >= 0") == [
        "'.pfn' needs a record, and this is int",
    ]


def test_a_def_sees_its_parameters_and_the_state_but_not_the_callers_names() -> None:
    assert accepts("def above(x) = x > npages\ninvariant a: forall b in free: not above(b.pfn)")
    assert errors("def uses_b = b.pfn > 0\ninvariant a: forall b in free: uses_b") == [
        "unknown name 'b'",
    ]


def test_defs_may_come_in_any_order_and_use_each_other() -> None:
    assert accepts("invariant a: forall b in free: late(b)\ndef late(b) = later(b) >= 0\n"
                   "def later(b) = size(b) - 1")


def test_recursion_is_refused() -> None:
    assert errors("def f(x) = f(x)\ninvariant a: f(1)") == ["'f' uses itself"]
    assert errors("def g = not g\ninvariant a: g") == ["'g' uses itself"]
    assert errors("def p(x) = q(x)\ndef q(x) = p(x)\ninvariant a: p(1)") == ["'p' uses itself"]


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_a_def_may_not_hide_a_builtin(name: str) -> None:
    assert errors(f"def {name}(x) = x\ninvariant a: true") == [
        f"'def {name}' hides the builtin of the same name",
    ]


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ("invariant a: forall free in pages: true", "'free' would hide the state name"),
        ("invariant a: count(npages in free) > 0", "'npages' would hide the state name"),
        ("invariant a: let max_order = 1 in true", "'max_order' would hide the state name"),
        ("invariant a: forall size in free: true", "'size' would hide the def 'size'"),
        ("invariant a: forall raised in free: true", "'raised' would hide the builtin 'raised'"),
        ("def f(pages) = 1\ninvariant a: f(1) == 1", "'pages' would hide the state name"),
        ("action a after alloc(free_pages): true", "'free_pages' would hide the state name"),
        ("action a after alloc(o) returns npages: true", "'npages' would hide the state name"),
        ("invariant a: forall x, y, x in free: true", "'x' is bound twice here"),
    ],
)
def test_bound_names_are_new(items: str, message: str) -> None:
    (found,) = errors(items)
    assert found.startswith(message)


def test_names_are_unique_across_items() -> None:
    assert errors("invariant a: true\naction a after alloc(o): true") == ["'a' names two items"]
    assert errors("def size(b) = 1\ninvariant a: true") == ["'size' is defined twice"]
    assert errors("invariant span: true") == ["'span' names two items"]


def test_a_def_without_parameters_is_used_by_name_or_called() -> None:
    assert accepts(
        "def blocks = free + allocated\ninvariant a: count(b in blocks) == len(blocks())"
    )
    assert errors("invariant a: size > 0") == ["'size' takes 1 argument(s), not 0"]


# ------------------------------------------------------------------ types

WELL_TYPED = [
    "forall p in pages: p.buddy -> p.order < max_order",
    "forall p in pages: p.buddy <-> Block{pfn: p.pfn, order: p.order} in free",
    "count(b in free + allocated) == len(free) + len(allocated)",
    "count(e in free_area + free) >= 0",
    "forall b in free: span(b).lo == b.pfn and span(b).hi - span(b).lo == len(span(b))",
    "span(Block{pfn: 0, order: 1}) == 0 .. 2",
    "Block{pfn: 0, order: 1} != Block{order: 1, pfn: 1}",
    "forall p in 0 .. npages step 2 ** (max_order - 1): aligned(p, 2 ** (max_order - 1))",
    "sum(p in pages: if p.buddy then 1 else 0) == count(p in pages: p.buddy)",
    "let n = npages in let m = n * 2 in m >= n",
    "if npages > 0 then free_pages <= npages else free_pages == 0",
    "min(npages, max_order) <= max(npages, abs(-max_order))",
    "contains(0 .. npages, 0) or contains(0 .. npages, 0 .. 0) or disjoint(0 .. 1, 1 .. 2)",
    "forall a, b in free, c in 0 .. 2: a != b or c >= 0",
    "true == (npages > 0) or none == none",
]


@pytest.mark.parametrize("body", WELL_TYPED)
def test_well_typed_invariants(body: str) -> None:
    assert accepts(f"invariant x: {body}")


ILL_TYPED = [
    ("npages == free", "cannot compare int with set[Block]"),
    ("free == allocated", "'==' is not defined on collections"),
    ("free_area != free_area", "'!=' is not defined on collections"),
    ("Block{pfn: 0, order: 0} == 0 .. 1", "cannot compare Block with interval"),
    ("npages == none", "cannot compare int with none"),
    ("count(b in free + pages) > 0",
     "'+' joins two collections of the same records, not set[Block] and list[Page]"),
    ("count(b in free: b.order) > 0", "the condition of count must be bool, not int"),
    ("sum(b in free: b.order > 0) > 0", "what sum adds up must be int, not bool"),
    ("forall x in 0 .. 8 step true: true", "a step must be int, not bool"),
    ("if npages then true else false", "the condition of 'if' must be bool, not int"),
    ("true .. 3 == 0 .. 3", "the start of an interval must be int, not bool"),
    ("forall b in free: b.lo == 0", "Block has no field 'lo'"),
    ("disjoint(1, 0 .. 2)", "an argument of disjoint must be interval, not int"),
    ("aligned(true, 2)", "an argument of aligned must be int, not bool"),
    ("contains(1, 2)", "the first argument of contains must be interval, not int"),
    ("npages in free", "a member of set[Block] must be Block, not int"),
    ("true in 0 .. 2", "a member of an interval must be int, not bool"),
    ("1 in npages", "'in' needs an interval or a collection on its right, not int"),
    ("forall b in free: b", "the body of 'forall' must be bool, not Block"),
    ("npages and true", "the left side of 'and' must be bool, not int"),
    ("free_pages + free > 0", "an operand of '+' must be int, not set[Block]"),
    ("Page{pfn: 0, buddy: 1, order: 0, refcount: 0} in pages",
     "field 'buddy' must be bool, not int"),
    ("unknown(1)", "unknown function 'unknown'"),
    ("abs(1, 2) > 0", "abs takes 1 argument(s): abs(a)"),
]


@pytest.mark.parametrize(("body", "message"), ILL_TYPED, ids=[b for b, _ in ILL_TYPED])
def test_ill_typed_invariants(body: str, message: str) -> None:
    assert message in errors(f"invariant x: {body}")


def test_an_unknown_domain_reports_once() -> None:
    """A misspelt domain makes its bound names unknown, not wrong: no cascade of errors."""
    assert errors("invariant x: forall b in fre: size(b) > 0 and b.pfn in span(b)") == [
        "unknown name 'fre'",
    ]


def test_several_errors_in_file_order() -> None:
    spec = parse_spec(HEADER + "invariant b: fre\ninvariant a: npages\ndef bad = 1 + true\n"
                      "invariant c: bad > 0", "t.mm")
    found = typecheck(spec, VOCABULARY)[1]
    assert [(e.line, e.message) for e in found] == [
        (4, "unknown name 'fre'"),
        (5, "the body of 'a' must be bool, not int"),
        (6, "an operand of '+' must be int, not bool"),
    ]


# ------------------------------------------------------------------ what properties read


def test_property_info_records_state_reads_now_and_before() -> None:
    spec = parse_spec(
        HEADER
        + "def blocks = free + allocated\n"
        + "invariant a: forall b in blocks: b.pfn + size(b) <= npages\n"
        + "invariant b: true\n"
        + "action c after alloc(o) returns r:\n"
        + "    r != none -> free_pages == old(free_pages + len(free))\n"
        + "action d after free(p, o): old(Block{pfn: p, order: o} in allocated) -> not raised\n",
        "t.mm",
    )
    infos, errs = typecheck(spec, VOCABULARY)
    assert errs == []
    assert {n: (i.reads, i.reads_old) for n, i in infos.items()} == {
        "a": ({"free", "allocated", "npages"}, set()),
        "b": (set(), set()),
        "c": ({"free_pages"}, {"free_pages", "free"}),
        "d": (set(), {"allocated"}),
    }


def test_the_standard_library_type_checks() -> None:
    for f in library():
        checked = load(f)
        assert set(checked.infos) == {p.name for p in checked.spec.properties}


# ------------------------------------------------------------------ the reference, held to the code

DOC = Path(__file__).resolve().parents[2] / "docs" / "spec-language.md"
DOC_DEFS = {
    "size": "def size(b) = 2 ** b.order",
    "span": "def span(b) = b.pfn .. b.pfn + size(b)",
}


def fenced(kind: str) -> list[tuple[int, str]]:
    """(line, text) of every ``` block of that kind in the language reference."""
    text = DOC.read_text(encoding="utf-8")
    return [
        (text[: m.start()].count("\n") + 2, m.group(1))
        for m in re.finditer(rf"^```{re.escape(kind)}\n(.*?)^```$", text, re.S | re.M)
    ]


def test_the_reference_has_examples() -> None:
    assert len(fenced("mm")) >= 6 and len(fenced("mm-wrong")) >= 3


@pytest.mark.parametrize(("line", "block"), fenced("mm"), ids=lambda v: str(v)[:30])
def test_every_example_in_the_reference_type_checks(line: int, block: str) -> None:
    """A block is a whole file when it starts with `spec`; else a buddy fragment, which
    may use the doc's `size` and `span` defs without repeating them."""
    if not block.startswith("spec "):
        defined = set(re.findall(r"^def (\w+)", block, re.M))
        prelude = "".join(d + "\n" for n, d in DOC_DEFS.items() if n not in defined)
        block = "spec buddy\n" + prelude + block
    try:
        checked = check_text(block, f"spec-language.md:{line}")
    except SpecError as err:
        pytest.fail(err.render())
    assert checked.spec.properties


def test_every_wrong_example_fails_exactly_as_shown() -> None:
    wrong, shown = fenced("mm-wrong"), fenced("text")
    assert len(shown) >= len(wrong)
    text = DOC.read_text(encoding="utf-8")
    for line, block in wrong:
        # the ```text block right after it holds the error
        after = text.split("\n")[line - 1 + block.count("\n") + 1 :]
        following = next(t for ln, t in shown if ln > line)
        assert "\n".join(after).lstrip().startswith("```text\n" + following)
        with pytest.raises(SpecError) as info:
            check_text(block, "example.mm")
        assert info.value.render() + "\n" == following


def precedence_rows() -> list[tuple[str, str]]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Precedence", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) == 5 and cells[0].isdigit():
            example, reads_as = (c.strip("`").replace("\\|", "|") for c in cells[3:5])
            rows.append((example, reads_as))
    return rows


def test_the_precedence_table_has_every_level() -> None:
    assert len(precedence_rows()) == 16


@pytest.mark.parametrize(("example", "reads_as"), precedence_rows())
def test_the_precedence_table_says_how_the_parser_reads(example: str, reads_as: str) -> None:
    def tree(e: str):
        return parse_spec(f"spec buddy\ninvariant x: {e}").invariants[0].body

    assert tree(example) == tree(reads_as)


def table(heading: str) -> dict[str, list[str]]:
    """The rows of the first table after `heading` in the vocabulary section: name -> cells."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## The buddy vocabulary", 1)[1].split("\n## ", 1)[0]
    part = section.split(heading, 1)[1]
    rows: dict[str, list[str]] = {}
    for line in part.splitlines()[2:]:
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [c.strip().strip("`") for c in line.strip("|").split("|")]
        heading_row = cells[0] in ("record", "name", "operation")
        if cells[0] and not set(cells[0]) <= {"-"} and not heading_row:
            rows[cells[0]] = cells[1:]
    return rows


def test_the_vocabulary_tables_match_the_model() -> None:
    """If this fails, the buddy vocabulary changed: update docs/spec-language.md."""
    records = table("Records:")
    assert {n: c[0] for n, c in records.items()} == {
        r.name: ", ".join(f"{f}: {t}" for f, t in r.fields) for r in VOCABULARY.records
    }
    state = table("State names:")
    assert {n: c[0] for n, c in state.items()} == {s.name: s.type for s in VOCABULARY.state}
    ops = table("Operations")
    assert {n: (c[0], c[1]) for n, c in ops.items()} == {
        f"{o.name}({', '.join(f'{p}: {t}' for p, t in o.params)})": (
            "nothing" if o.returns == "none" else o.returns, ", ".join(o.raises),
        )
        for o in VOCABULARY.operations
    }


def test_the_reference_lists_every_keyword_and_builtin() -> None:
    text = DOC.read_text(encoding="utf-8")
    grammar = (Path(__file__).resolve().parents[2] / "spec" / "grammar.lark").read_text()
    keywords = re.search(r"NAME: /\(\?!\((.*?)\)", grammar).group(1).split("|")
    listed = text.split("**keywords** are never names", 1)[1].split("A word that", 1)[0]
    assert sorted(listed.split()[listed.split().index("spec"):]) == sorted(keywords)
    for name in BUILTINS:
        assert f"`{name}(" in text or f"`{name}`" in text, name
