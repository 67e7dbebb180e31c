"""What a spec author sees when a spec is wrong: the exact text of every diagnostic.

Each case is a broken spec and the whole rendered error: the kind and message,
` --> file:line:column`, the source line, a caret under the exact spot (tabs
expanded) and the hint. Syntax errors come from spec/parser.py, name and type
errors from spec/typecheck.py; a file with several errors reports them all.
"""

from __future__ import annotations

import pytest
from mmcheck.model.buddy import VOCABULARY
from mmcheck.spec.errors import SpecError, SpecSyntaxError, SpecTypeError, did_you_mean
from mmcheck.spec.loader import SpecErrors, check_text, load

STATE = ", ".join(s.name for s in VOCABULARY.state)


def rendered(text: str) -> str:
    with pytest.raises(SpecError) as info:
        check_text(text, "t.mm")
    return info.value.render()


# ------------------------------------------------------------------ syntax errors

SYNTAX = [
    pytest.param(
        'spec buddy\ninvariant x npages > 0\n',
        """\
syntax error: unexpected 'npages'
  --> t.mm:2:13
  |
2 | invariant x npages > 0
  |             ^^^^^^
hint: an invariant needs a ':' before its body: invariant NAME "description": EXPR
""",
        id="missing_colon",
    ),
    pytest.param(
        'spec buddy\ninvariant x "doc" npages > 0\n',
        """\
syntax error: unexpected 'npages'
  --> t.mm:2:19
  |
2 | invariant x "doc" npages > 0
  |                   ^^^^^^
hint: an invariant needs a ':' before its body: invariant NAME "description": EXPR
""",
        id="missing_colon_after_doc",
    ),
    pytest.param(
        'spec buddy\ninvariant ok: npages >= 0\ninvariant x: forall b in free: b.order = 0\n',
        """\
syntax error: unexpected '='
  --> t.mm:3:40
  |
3 | invariant x: forall b in free: b.order = 0
  |                                        ^
hint: use '==' to compare; '=' only appears in 'def' and 'let'
""",
        id="single_equals",
    ),
    pytest.param(
        'spec buddy\ninvariant x: npages > 0 && free_pages > 0\n',
        """\
syntax error: unexpected '&&'
  --> t.mm:2:25
  |
2 | invariant x: npages > 0 && free_pages > 0
  |                         ^^
hint: use 'and', 'or', 'not' for the boolean connectives
""",
        id="double_ampersand",
    ),
    pytest.param(
        'spec buddy\ninvariant x: npages > 0 || free_pages > 0\n',
        """\
syntax error: unexpected '||'
  --> t.mm:2:25
  |
2 | invariant x: npages > 0 || free_pages > 0
  |                         ^^
hint: use 'and', 'or', 'not' for the boolean connectives
""",
        id="double_bar",
    ),
    pytest.param(
        'spec buddy\ninvariant x: !(npages > 0)\n',
        """\
syntax error: unexpected character '!'
  --> t.mm:2:14
  |
2 | invariant x: !(npages > 0)
  |              ^
hint: use 'not' for negation ('!=' means not equal)
""",
        id="bang",
    ),
    pytest.param(
        'spec buddy\ninvariant x:\n    (forall b in free: b.order >= 0\n    and npages > 0\n',
        """\
syntax error: the spec ends in the middle of an item
  --> t.mm:4:19
  |
4 |     and npages > 0
  |                   ^
hint: expected ')'
""",
        id="unclosed_paren",
    ),
    pytest.param(
        'spec buddy\ninvariant x: npages @ 2 == 0\n',
        """\
syntax error: unexpected character '@'
  --> t.mm:2:21
  |
2 | invariant x: npages @ 2 == 0
  |                     ^
hint: the spec language has no such symbol; see docs/spec-language.md
""",
        id="unknown_character",
    ),
    pytest.param(
        'spec buddy\nafter alloc(o) returns r: r != none\n',
        """\
syntax error: unexpected 'after'
  --> t.mm:2:1
  |
2 | after alloc(o) returns r: r != none
  | ^^^^^
hint: an action property reads: action NAME "doc" after OP(PARAMS) returns R: BODY
""",
        id="after_without_action",
    ),
    pytest.param(
        'spec buddy\ninvariant x: true\n\nafter alloc(o) returns r: r != none\n',
        """\
syntax error: unexpected 'after'
  --> t.mm:4:1
  |
4 | after alloc(o) returns r: r != none
  | ^^^^^
hint: an action property reads: action NAME "doc" after OP(PARAMS) returns R: BODY
""",
        id="after_without_action_later",
    ),
    pytest.param(
        '# no header\ninvariant x: true\n',
        """\
syntax error: a spec file must start by naming its subsystem
  --> t.mm:2:1
  |
2 | invariant x: true
  | ^^^^^^^^^
hint: add a first line such as: spec buddy "what this file states"
""",
        id="no_header",
    ),
    pytest.param(
        'spec buddy "one"\ninvariant x: true\nspec buddy "two"\n',
        """\
syntax error: a spec file names its subsystem once
  --> t.mm:3:1
  |
3 | spec buddy "two"
  | ^^^^^^^^^^^^^^^^
hint: remove the second 'spec' line
""",
        id="two_headers",
    ),
    pytest.param(
        'spec buddy\ninvariant x: forall b in free:\n',
        """\
syntax error: the spec ends in the middle of an item
  --> t.mm:2:31
  |
2 | invariant x: forall b in free:
  |                               ^
hint: expected a name, a number, count/sum, forall/exists, '(', '-', 'false', 'if' ...
""",
        id="eof_in_quantifier",
    ),
    pytest.param(
        'spec buddy\ndef size(b) =\n',
        """\
syntax error: the spec ends in the middle of an item
  --> t.mm:2:14
  |
2 | def size(b) =
  |              ^
hint: expected a name, a number, count/sum, forall/exists, '(', '-', 'false', 'if' ...
""",
        id="eof_in_def",
    ),
    pytest.param(
        'spec buddy\ndef count = 1\n',
        """\
syntax error: unexpected 'count'
  --> t.mm:2:5
  |
2 | def count = 1
  |     ^^^^^
hint: 'count' is a keyword of the spec language, so it cannot be a name
""",
        id="keyword_as_name",
    ),
    pytest.param(
        'spec buddy "what it states\ninvariant x: true\n',
        """\
syntax error: unexpected character '"'
  --> t.mm:1:12
  |
1 | spec buddy "what it states
  |            ^
hint: a "description" ends with a closing " on the line where it starts
""",
        id="unterminated_string",
    ),
    pytest.param(
        'spec buddy\ninvariant x: forall b free: true\n',
        """\
syntax error: unexpected 'free'
  --> t.mm:2:23
  |
2 | invariant x: forall b free: true
  |                       ^^^^
hint: a quantifier reads 'forall x in COLLECTION: BODY'
""",
        id="quantifier_without_in",
    ),
    pytest.param(
        'spec buddy\ninvariant x: pages[0].buddy\n',
        """\
syntax error: unexpected character '['
  --> t.mm:2:19
  |
2 | invariant x: pages[0].buddy
  |                   ^
hint: the spec language has no indexing; quantify instead: forall x in C: ...
""",
        id="indexing",
    ),
    pytest.param(
        'spec buddy\n\tinvariant x:\tnpages >\t= 0\n',
        """\
syntax error: unexpected '='
  --> t.mm:2:24
  |
2 |     invariant x:    npages >    = 0
  |                                 ^
hint: use '==' to compare; '=' only appears in 'def' and 'let'
""",
        id="tabs",
    ),
]


@pytest.mark.parametrize(("text", "expected"), SYNTAX)
def test_syntax_error_text(text: str, expected: str) -> None:
    with pytest.raises(SpecSyntaxError) as info:
        check_text(text, "t.mm")
    assert info.value.render() == expected.rstrip("\n")


# ------------------------------------------------------------------ type errors

HEADER = "spec buddy\ndef size(b) = 2 ** b.order\n"

TYPE = [
    pytest.param(
        'invariant x: forall b in fre: size(b) > 0\n',
        """\
type error: unknown name 'fre'
  --> t.mm:3:26
  |
3 | invariant x: forall b in fre: size(b) > 0
  |                          ^^^
hint: did you mean 'free'?
""",
        id="unknown_name",
    ),
    pytest.param(
        'invariant x: zzz > 0\n',
        """\
type error: unknown name 'zzz'
  --> t.mm:3:14
  |
3 | invariant x: zzz > 0
  |              ^^^
hint: names of the buddy vocabulary: {STATE}
""",
        id="unknown_name_nothing_close",
    ),
    pytest.param(
        'invariant x: forall b in free: b.ordr >= 0\n',
        """\
type error: Block has no field 'ordr'
  --> t.mm:3:32
  |
3 | invariant x: forall b in free: b.ordr >= 0
  |                                ^^^^^^
hint: did you mean 'order'?
""",
        id="unknown_field",
    ),
    pytest.param(
        'invariant x: forall p in pages: p.mapping == 0\n',
        """\
type error: Page has no field 'mapping'
  --> t.mm:3:33
  |
3 | invariant x: forall p in pages: p.mapping == 0
  |                                 ^^^^^^^^^
hint: its fields are: pfn, buddy, order, refcount
""",
        id="unknown_field_nothing_close",
    ),
    pytest.param(
        'invariant x: npages.pfn == 0\n',
        """\
type error: '.pfn' needs a record, and this is int
  --> t.mm:3:14
  |
3 | invariant x: npages.pfn == 0
  |              ^^^^^^^^^^
""",
        id="field_of_non_record",
    ),
    pytest.param(
        'action a after alloc(o) returns r:\n    aligned(r, 2 ** o)\n',
        """\
type error: an argument of aligned may be none here
  --> t.mm:4:13
  |
4 |     aligned(r, 2 ** o)
  |             ^
hint: guard it first, e.g. `r != none -> ...`
""",
        id="optional_as_int",
    ),
    pytest.param(
        'action a after alloc(o) returns r: r + 1 > 0\n',
        """\
type error: an operand of '+' may be none here
  --> t.mm:3:36
  |
3 | action a after alloc(o) returns r: r + 1 > 0
  |                                    ^
hint: guard it first, e.g. `r != none -> ...`
""",
        id="optional_in_arith",
    ),
    pytest.param(
        'invariant x: free_pages <= old(free_pages)\n',
        """\
type error: old(...) only means something in an action property
  --> t.mm:3:28
  |
3 | invariant x: free_pages <= old(free_pages)
  |                            ^^^^^^^^^^^^^^^
""",
        id="old_in_invariant",
    ),
    pytest.param(
        'invariant x: not raised\n',
        """\
type error: 'raised' only means something in an action property
  --> t.mm:3:18
  |
3 | invariant x: not raised
  |                  ^^^^^^
""",
        id="raised_in_invariant",
    ),
    pytest.param(
        'action a after alloc(o) returns r: raised(KeyError) -> r == none\n',
        """\
type error: 'alloc' never raises KeyError
  --> t.mm:3:43
  |
3 | action a after alloc(o) returns r: raised(KeyError) -> r == none
  |                                           ^^^^^^^^
hint: it raises: ValueError
""",
        id="raised_other_exception",
    ),
    pytest.param(
        'action a after alloc(o) returns r: raised(1)\n',
        """\
type error: raised takes the name of an exception, e.g. raised(ValueError)
  --> t.mm:3:36
  |
3 | action a after alloc(o) returns r: raised(1)
  |                                    ^^^^^^^^^
""",
        id="raised_not_a_name",
    ),
    pytest.param(
        'action a after free(pfn): not raised\n',
        """\
type error: 'free' takes 2 parameter(s): free(pfn, order)
  --> t.mm:3:1
  |
3 | action a after free(pfn): not raised
  | ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
""",
        id="wrong_param_count",
    ),
    pytest.param(
        'action a after aloc(o): true\n',
        """\
type error: the buddy model has no operation 'aloc'
  --> t.mm:3:1
  |
3 | action a after aloc(o): true
  | ^^^^^^^^^^^^^^^^^^^^^^^^^^^^
hint: did you mean 'alloc'?
""",
        id="unknown_operation",
    ),
    pytest.param(
        'action a after free(pfn, order) returns r: true\n',
        """\
type error: 'free' returns nothing, so 'returns r' binds nothing
  --> t.mm:3:1
  |
3 | action a after free(pfn, order) returns r: true
  | ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
hint: remove 'returns ...'
""",
        id="returns_on_none_op",
    ),
    pytest.param(
        'invariant x: Block{pfn: 0} in free\n',
        """\
type error: Block{...} leaves out order
  --> t.mm:3:14
  |
3 | invariant x: Block{pfn: 0} in free
  |              ^^^^^^^^^^^^^
hint: a record literal gives every field
""",
        id="record_missing_field",
    ),
    pytest.param(
        'invariant x: Blok{pfn: 0, order: 0} in free\n',
        """\
type error: unknown record type 'Blok'
  --> t.mm:3:14
  |
3 | invariant x: Blok{pfn: 0, order: 0} in free
  |              ^^^^^^^^^^^^^^^^^^^^^^
hint: did you mean 'Block'?
""",
        id="record_unknown_type",
    ),
    pytest.param(
        'invariant x: Block{pfn: 0, ordr: 0} in free\n',
        """\
type error: Block has no field 'ordr'
  --> t.mm:3:14
  |
3 | invariant x: Block{pfn: 0, ordr: 0} in free
  |              ^^^^^^^^^^^^^^^^^^^^^^
hint: did you mean 'order'?
""",
        id="record_unknown_field",
    ),
    pytest.param(
        'invariant x: Block{pfn: 0, order: 0, pfn: 1} in free\n',
        """\
type error: field 'pfn' is given twice
  --> t.mm:3:14
  |
3 | invariant x: Block{pfn: 0, order: 0, pfn: 1} in free
  |              ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
""",
        id="record_field_twice",
    ),
    pytest.param(
        'invariant x: Block{pfn: true, order: 0} in free\n',
        """\
type error: field 'pfn' must be int, not bool
  --> t.mm:3:25
  |
3 | invariant x: Block{pfn: true, order: 0} in free
  |                         ^^^^
""",
        id="record_field_type",
    ),
    pytest.param(
        'invariant x: npages == free\n',
        """\
type error: cannot compare int with set[Block]
  --> t.mm:3:14
  |
3 | invariant x: npages == free
  |              ^^^^^^^^^^^^^^
""",
        id="compare_incompatible",
    ),
    pytest.param(
        'invariant x: forall b in free: b == 3\n',
        """\
type error: cannot compare Block with int
  --> t.mm:3:32
  |
3 | invariant x: forall b in free: b == 3
  |                                ^^^^^^
""",
        id="compare_record_int",
    ),
    pytest.param(
        'invariant x: free != allocated\n',
        """\
type error: '!=' is not defined on collections
  --> t.mm:3:14
  |
3 | invariant x: free != allocated
  |              ^^^^^^^^^^^^^^^^^
hint: compare their members: (forall x in A: x in B) and (forall x in B: x in A)
""",
        id="compare_collections",
    ),
    pytest.param(
        'invariant x: forall p in pages: p.buddy < 1\n',
        """\
type error: a side of '<' must be int, not bool
  --> t.mm:3:33
  |
3 | invariant x: forall p in pages: p.buddy < 1
  |                                 ^^^^^^^
""",
        id="order_on_bool",
    ),
    pytest.param(
        'def depth(b) = depth(b) + 1\ninvariant x: forall b in free: depth(b) > 0\n',
        """\
type error: 'depth' uses itself
  --> t.mm:3:16
  |
3 | def depth(b) = depth(b) + 1
  |                ^^^^^^^^
hint: a def is expanded where it is used, so it cannot recurse
""",
        id="recursive_def",
    ),
    pytest.param(
        'def even(n) = n == 0 or odd(n - 1)\ndef odd(n) = even(n - 1)\ninvariant x: even(4)\n',
        """\
type error: 'even' uses itself
  --> t.mm:4:14
  |
4 | def odd(n) = even(n - 1)
  |              ^^^^^^^^^^^
hint: a def is expanded where it is used, so it cannot recurse
""",
        id="mutual_recursion",
    ),
    pytest.param(
        'def len(b) = size(b)\ninvariant x: true\n',
        """\
type error: 'def len' hides the builtin of the same name
  --> t.mm:3:1
  |
3 | def len(b) = size(b)
  | ^^^^^^^^^^^^^^^^^^^^
hint: choose another name
""",
        id="def_shadows_builtin",
    ),
    pytest.param(
        'def free = 3\ninvariant x: true\n',
        """\
type error: 'def free' hides the state name of the same name
  --> t.mm:3:1
  |
3 | def free = 3
  | ^^^^^^^^^^^^
hint: choose another name
""",
        id="def_hides_state",
    ),
    pytest.param(
        'def size(b) = 1 << b.order\ninvariant x: true\n',
        """\
type error: 'size' is defined twice
  --> t.mm:3:1
  |
3 | def size(b) = 1 << b.order
  | ^^^^^^^^^^^^^^^^^^^^^^^^^^
""",
        id="duplicate_def",
    ),
    pytest.param(
        'invariant x: true\ninvariant x: npages > 0\n',
        """\
type error: 'x' names two items
  --> t.mm:4:1
  |
4 | invariant x: npages > 0
  | ^^^^^^^^^^^^^^^^^^^^^^^
hint: give each invariant, action and def its own name
""",
        id="duplicate_invariant",
    ),
    pytest.param(
        'invariant size: true\n',
        """\
type error: 'size' names two items
  --> t.mm:3:1
  |
3 | invariant size: true
  | ^^^^^^^^^^^^^^^^^^^^
hint: give each invariant, action and def its own name
""",
        id="def_and_property_same_name",
    ),
    pytest.param(
        'invariant x: sum(b in free: size(b))\n',
        """\
type error: the body of 'x' must be bool, not int
  --> t.mm:3:14
  |
3 | invariant x: sum(b in free: size(b))
  |              ^^^^^^^^^^^^^^^^^^^^^^^
""",
        id="non_bool_body",
    ),
    pytest.param(
        'invariant x: forall npages in 0 .. 4: npages >= 0\n',
        """\
type error: 'npages' would hide the state name 'npages' of the buddy vocabulary
  --> t.mm:3:21
  |
3 | invariant x: forall npages in 0 .. 4: npages >= 0
  |                     ^^^^^^^^^^^^^^^^
hint: choose another name for the bound variable
""",
        id="binder_hides_state",
    ),
    pytest.param(
        'invariant x: let size = 3 in size > 0\n',
        """\
type error: 'size' would hide the def 'size'
  --> t.mm:3:14
  |
3 | invariant x: let size = 3 in size > 0
  |              ^^^^^^^^^^^^^^^^^^^^^^^^
hint: choose another name for the bound variable
""",
        id="let_hides_def",
    ),
    pytest.param(
        'action a after free(free_pages, order): true\n',
        """\
type error: 'free_pages' would hide the state name 'free_pages' of the buddy vocabulary
  --> t.mm:3:1
  |
3 | action a after free(free_pages, order): true
  | ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
hint: choose another name for the bound variable
""",
        id="param_hides_state",
    ),
    pytest.param(
        'invariant x: forall a, a in free: true\n',
        """\
type error: 'a' is bound twice here
  --> t.mm:3:21
  |
3 | invariant x: forall a, a in free: true
  |                     ^^^^^^^^^^^^
hint: choose another name for the bound variable
""",
        id="bound_twice",
    ),
    pytest.param(
        'invariant x: forall b in free: algined(b.pfn, size(b))\n',
        """\
type error: unknown function 'algined'
  --> t.mm:3:32
  |
3 | invariant x: forall b in free: algined(b.pfn, size(b))
  |                                ^^^^^^^^^^^^^^^^^^^^^^^
hint: did you mean 'aligned'?
""",
        id="unknown_function",
    ),
    pytest.param(
        'invariant x: min(npages) >= 0\n',
        """\
type error: min takes 2 argument(s): min(a, b)
  --> t.mm:3:14
  |
3 | invariant x: min(npages) >= 0
  |              ^^^^^^^^^^^
""",
        id="builtin_arity",
    ),
    pytest.param(
        'invariant x: forall b in free: size(b, 1) > 0\n',
        """\
type error: 'size' takes 1 argument(s), not 2
  --> t.mm:3:32
  |
3 | invariant x: forall b in free: size(b, 1) > 0
  |                                ^^^^^^^^^^
""",
        id="def_arity",
    ),
    pytest.param(
        'invariant x: forall b in free step 2: true\n',
        """\
type error: 'step' only applies to an interval
  --> t.mm:3:36
  |
3 | invariant x: forall b in free step 2: true
  |                                    ^
""",
        id="step_over_collection",
    ),
    pytest.param(
        'invariant x: sum(b in free) > 0\n',
        """\
type error: sum(x in C: EXPR) needs the expression to add up
  --> t.mm:3:14
  |
3 | invariant x: sum(b in free) > 0
  |              ^^^^^^^^^^^^^^
""",
        id="sum_without_body",
    ),
    pytest.param(
        'invariant x: (if npages > 0 then 1 else true) == 1\n',
        """\
type error: the branches of 'if' have different types: int and bool
  --> t.mm:3:15
  |
3 | invariant x: (if npages > 0 then 1 else true) == 1
  |               ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
""",
        id="if_branch_types",
    ),
    pytest.param(
        'action a after alloc(o) returns r: old(old(npages)) == npages\n',
        """\
type error: old(...) inside old(...) means nothing more
  --> t.mm:3:40
  |
3 | action a after alloc(o) returns r: old(old(npages)) == npages
  |                                        ^^^^^^^^^^^
""",
        id="old_inside_old",
    ),
    pytest.param(
        'invariant x: not npages\n',
        """\
type error: the operand of 'not' must be bool, not int
  --> t.mm:3:18
  |
3 | invariant x: not npages
  |                  ^^^^^^
""",
        id="not_on_int",
    ),
    pytest.param(
        'invariant x: 3 in free\n',
        """\
type error: a member of set[Block] must be Block, not int
  --> t.mm:3:14
  |
3 | invariant x: 3 in free
  |              ^
""",
        id="in_wrong_element",
    ),
    pytest.param(
        'invariant x: forall b in npages: true\n',
        """\
type error: a quantifier ranges over an interval or a collection, not int
  --> t.mm:3:26
  |
3 | invariant x: forall b in npages: true
  |                          ^^^^^^
""",
        id="quantify_over_int",
    ),
    pytest.param(
        'invariant x: len(npages) > 0\n',
        """\
type error: len takes an interval or a collection, not int
  --> t.mm:3:18
  |
3 | invariant x: len(npages) > 0
  |                  ^^^^^^
""",
        id="len_of_int",
    ),
    pytest.param(
        'invariant x: contains(0 .. 4, free)\n',
        """\
type error: the second argument of contains must be int or interval, not set[Block]
  --> t.mm:3:31
  |
3 | invariant x: contains(0 .. 4, free)
  |                               ^^^^
""",
        id="contains_bad_arg",
    ),
    pytest.param(
        'spec budy\ninvariant x: true\n',
        """\
type error: no model serves the subsystem 'budy'
  --> t.mm:1:1
  |
1 | spec budy
  | ^^^^^^^^^
hint: did you mean 'buddy'?
""",
        id="unknown_subsystem",
    ),
    pytest.param(
        'invariant x: count(b in free + pages) > 0\n',
        """\
type error: '+' joins two collections of the same records, not set[Block] and list[Page]
  --> t.mm:3:25
  |
3 | invariant x: count(b in free + pages) > 0
  |                         ^^^^^^^^^^^^
""",
        id="plus_mixes",
    ),
]


@pytest.mark.parametrize(("text", "expected"), TYPE)
def test_type_error_text(text: str, expected: str) -> None:
    source = text if text.startswith("spec ") else HEADER + text
    with pytest.raises(SpecTypeError) as info:
        check_text(source, "t.mm")
    assert info.value.render() == expected.replace("{STATE}", STATE).rstrip("\n")


# ------------------------------------------------------------------ several errors

SEVERAL = """\
spec buddy
def size(b) = 2 ** b.ordr
invariant a: forall b in free: size(b) > 0
invariant b: fre == 3
action c after alloc(o) returns r: r + 1 > 0
invariant d: npages
"""


def test_every_error_of_a_file_is_reported() -> None:
    with pytest.raises(SpecErrors) as info:
        check_text(SEVERAL, "several.mm")
    errors = info.value.errors
    assert [(e.line, e.column, e.message) for e in errors] == [
        (2, 20, "Block has no field 'ordr'"),
        (4, 14, "unknown name 'fre'"),
        (5, 36, "an operand of '+' may be none here"),
        (6, 14, "the body of 'd' must be bool, not int"),
    ]
    assert all(isinstance(e, SpecTypeError) for e in errors)
    text = info.value.render()
    assert text.startswith("\n\n".join(e.render() for e in errors))
    # the first error is the one a caller that reads only `message` and `line` sees
    assert (info.value.message, info.value.line, info.value.kind) == (
        "Block has no field 'ordr'", 2, "type error",
    )


def test_an_error_inside_a_def_is_reported_once_with_where_it_was_used() -> None:
    text = (
        "spec buddy\ndef big(b) = b.order > limit\n"
        "invariant x: forall b in free: big(b)\ninvariant y: forall b in allocated: big(b)\n"
    )
    with pytest.raises(SpecTypeError) as info:  # one error, not one per use
        check_text(text, "t.mm")
    assert info.value.render() == (
        "type error: unknown name 'limit'\n"
        "  --> t.mm:2:24\n"
        "  |\n"
        "2 | def big(b) = b.order > limit\n"
        "  |                        ^^^^^\n"
        f"hint: names of the buddy vocabulary: {STATE}"
    )
    with pytest.raises(SpecTypeError) as info:
        check_text(
            "spec buddy\ndef big(b) = b.order > true\n"
            "invariant x: big(Block{pfn: 0, order: 0})"
        )
    assert info.value.hint == "in 'big', used at line 3"


def test_the_big_line_numbers_keep_the_gutter_aligned() -> None:
    text = "spec buddy\n" + "\n" * 120 + "invariant x: npages > fals\n"
    assert rendered(text) == (
        "type error: unknown name 'fals'\n"
        "  --> t.mm:122:23\n"
        "    |\n"
        "122 | invariant x: npages > fals\n"
        "    |                       ^^^^\n"
        f"hint: names of the buddy vocabulary: {STATE}"
    )


def test_json_form_of_an_error() -> None:
    with pytest.raises(SpecError) as info:
        check_text("spec buddy\ninvariant x: forall b in fre: true", "t.mm")
    assert info.value.to_json() == {
        "kind": "type error", "message": "unknown name 'fre'", "file": "t.mm",
        "line": 2, "column": 26, "hint": "did you mean 'free'?",
    }
    assert str(info.value) == info.value.render()


def test_an_unreadable_file(tmp_path) -> None:
    with pytest.raises(SpecError) as info:
        load(tmp_path / "missing.mm")
    assert info.value.render() == (
        f"error: cannot read the spec file: No such file or directory\n"
        f"  --> {tmp_path / 'missing.mm'}\n"
        "hint: check the path"
    )
    latin = tmp_path / "latin.mm"
    latin.write_bytes(b"spec buddy \"caf\xe9\"\n")
    with pytest.raises(SpecError, match="not UTF-8"):
        load(latin)


def test_an_error_in_an_empty_file_has_no_excerpt() -> None:
    assert rendered("") == (
        "syntax error: a spec file must start by naming its subsystem\n"
        "  --> t.mm:1:1\n"
        'hint: add a first line such as: spec buddy "what this file states"'
    )


def test_the_missing_header_is_reported_at_the_first_item() -> None:
    assert rendered("# buddy things\n\n  def two = 2\ninvariant x: true\n") == (
        "syntax error: a spec file must start by naming its subsystem\n"
        "  --> t.mm:3:3\n"
        "  |\n"
        "3 |   def two = 2\n"
        "  |   ^^^\n"
        'hint: add a first line such as: spec buddy "what this file states"'
    )


def test_did_you_mean() -> None:
    assert did_you_mean("fre", ["free", "allocated"]) == "did you mean 'free'?"
    assert did_you_mean("alocated", ["free", "allocated"]) == "did you mean 'allocated'?"
    assert did_you_mean("zzz", ["free", "allocated"]) is None


@pytest.mark.parametrize(
    "text",
    ["spec buddy\ninvariant x: a && b", "spec buddy\ninvariant x: (npages > 0",
     "spec buddy\ninvariant x: npages = 1", "spec buddy\ninvariant x: fre > 0"],
)
def test_an_error_points_inside_its_file(text: str) -> None:
    with pytest.raises(SpecError) as info:
        check_text(text, "t.mm")
    err = info.value
    lines = text.splitlines()
    assert 1 <= err.line <= len(lines)
    assert 1 <= err.column <= len(lines[err.line - 1]) + 1
