"""Text to AST: the Lark grammar in grammar.lark, a Transformer that only builds nodes.

`parse_spec(text, path)` returns an `ast.Spec` or raises `SpecSyntaxError` with the
file, line, column, a caret and a hint for the common mistakes.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from lark import Lark, Token, Tree, v_args
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)
from lark.tree import Meta
from lark.visitors import Transformer_NonRecursive
from mmcheck.spec import ast
from mmcheck.spec.errors import SpecSyntaxError
from mmcheck.spec.limits import MAX_INT_BITS, check_limits, fit_recursion_limit


@functools.cache
def _lark() -> Lark:
    return Lark.open(
        "grammar.lark",
        rel_to=__file__,
        parser="lalr",
        propagate_positions=True,
        maybe_placeholders=True,
    )


def _span(meta: Meta | Token) -> ast.Span:
    if isinstance(meta, Token):
        return ast.Span(meta.line or 0, meta.column or 0, meta.end_line or 0, meta.end_column or 0)
    if getattr(meta, "empty", True):
        return ast.NOWHERE
    return ast.Span(meta.line, meta.column, meta.end_line, meta.end_column)


_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}


def _string(token: Token | None) -> str:
    """A "description" without its quotes; \\n \\t \\" \\\\ are escapes, any other
    backslash stays as written (so a non-ASCII description is never mangled)."""
    if token is None:
        return ""
    body = str(token)[1:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m[1], m[0]), body)


def _int(token: Token) -> int:
    """A literal: 0x-prefixed hex or decimal (leading zeros allowed), `_` as a separator;
    at most MAX_INT_BITS bits (checked before converting: Python refuses long decimals)."""
    digits = str(token).replace("_", "")
    hexa = digits.startswith("0x")
    body = digits[2:].lstrip("0") if hexa else digits.lstrip("0")
    bits_per_digit = 4 if hexa else 3.33
    if len(body) * bits_per_digit > MAX_INT_BITS + 4:
        raise _too_large(token)
    value = int(body or "0", 16 if hexa else 10)
    if value.bit_length() > MAX_INT_BITS:
        raise _too_large(token)
    return value


class _LiteralError(Exception):
    """A literal the AST cannot hold; the parser turns it into a SpecSyntaxError."""

    def __init__(self, token: Token, message: str, hint: str) -> None:
        super().__init__(message)
        self.token, self.message, self.hint = token, message, hint


def _too_large(token: Token) -> _LiteralError:
    return _LiteralError(
        token,
        f"this number has {len(str(token).replace('_', ''))} digits, "
        "more than mmcheck's numbers can hold",
        f"numbers in a spec have at most {MAX_INT_BITS:,} bits (about 3,700 decimal digits)",
    )


@v_args(meta=True)
class _ToAst(Transformer_NonRecursive):
    """Builds ast nodes, one method per grammar alias; it computes nothing. It walks
    the tree with an explicit stack, so nesting of any depth becomes an AST."""

    def start(self, meta: Meta, items: list) -> list:
        return items

    def spec_header(self, meta: Meta, c: list) -> tuple:
        return ("header", str(c[0]), _string(c[1]), _span(meta))

    def params(self, meta: Meta, c: list) -> tuple[str, ...]:
        return tuple(str(p) for p in c if p is not None)

    def returns(self, meta: Meta, c: list) -> str:
        return str(c[0])

    def define(self, meta: Meta, c: list) -> ast.Define:
        name, params, body = c
        return ast.Define(str(name), params or (), body, _span(meta))

    def invariant(self, meta: Meta, c: list) -> ast.Invariant:
        name, doc, body = c
        return ast.Invariant(str(name), _string(doc), body, _span(meta))

    def action(self, meta: Meta, c: list) -> ast.Action:
        name, doc, op, params, result, body = c
        return ast.Action(
            str(name),
            str(op),
            params,
            result,
            _string(doc),
            body,
            _span(meta),
        )

    # -- expressions
    def int_lit(self, meta: Meta, c: list) -> ast.IntLit:
        return ast.IntLit(_span(meta), _int(c[0]))

    def true_lit(self, meta: Meta, c: list) -> ast.BoolLit:
        return ast.BoolLit(_span(meta), True)

    def false_lit(self, meta: Meta, c: list) -> ast.BoolLit:
        return ast.BoolLit(_span(meta), False)

    def none_lit(self, meta: Meta, c: list) -> ast.NoneLit:
        return ast.NoneLit(_span(meta))

    def name(self, meta: Meta, c: list) -> ast.Name:
        return ast.Name(_span(meta), str(c[0]))

    def field(self, meta: Meta, c: list) -> ast.Field:
        return ast.Field(_span(meta), c[0], str(c[1]))

    def call(self, meta: Meta, c: list) -> ast.Call:
        return ast.Call(_span(meta), str(c[0]), tuple(a for a in c[1:] if a is not None))

    def record_lit(self, meta: Meta, c: list) -> ast.RecordLit:
        type_name, *rest = c
        pairs = [(str(rest[i]), rest[i + 1]) for i in range(0, len(rest), 2) if rest[i] is not None]
        return ast.RecordLit(_span(meta), str(type_name), tuple(pairs))

    def aggregate(self, meta: Meta, c: list) -> ast.Aggregate:
        kind, binders, body = c
        return ast.Aggregate(_span(meta), str(kind), binders, body)

    def quantifier(self, meta: Meta, c: list) -> ast.Quantifier:
        kind, binders, body = c
        return ast.Quantifier(_span(meta), str(kind), binders, body)

    def binders(self, meta: Meta, c: list) -> tuple[ast.Binder, ...]:
        return tuple(c)

    def binder(self, meta: Meta, c: list) -> ast.Binder:
        *names, domain, step = c
        return ast.Binder(_span(meta), tuple(str(n) for n in names), domain, step)

    def let(self, meta: Meta, c: list) -> ast.Let:
        return ast.Let(_span(meta), str(c[0]), c[1], c[2])

    def ifelse(self, meta: Meta, c: list) -> ast.IfElse:
        return ast.IfElse(_span(meta), c[0], c[1], c[2])

    def interval(self, meta: Meta, c: list) -> ast.Interval:
        return ast.Interval(_span(meta), c[0], c[1])

    def not_(self, meta: Meta, c: list) -> ast.Unary:
        return ast.Unary(_span(meta), "not", c[0])

    def neg(self, meta: Meta, c: list) -> ast.Expr:
        if isinstance(c[0], ast.IntLit):
            return ast.IntLit(_span(meta), -c[0].value)
        return ast.Unary(_span(meta), "-", c[0])

    def _binary(self, meta: Meta, op: str, left: ast.Expr, right: ast.Expr) -> ast.Binary:
        return ast.Binary(_span(meta), op, left, right)

    def binop(self, meta: Meta, c: list) -> ast.Binary:
        return self._binary(meta, str(c[1]), c[0], c[2])

    def compare(self, meta: Meta, c: list) -> ast.Binary:
        return self._binary(meta, str(c[1]), c[0], c[2])

    def pow(self, meta: Meta, c: list) -> ast.Binary:
        return self._binary(meta, "**", c[0], c[2])

    def member(self, meta: Meta, c: list) -> ast.Binary:
        return self._binary(meta, "in", c[0], c[1])

    def not_member(self, meta: Meta, c: list) -> ast.Binary:
        return self._binary(meta, "not in", c[0], c[1])

    def and_(self, meta: Meta, c: list) -> ast.Binary:
        return self._binary(meta, "and", c[0], c[1])

    def or_(self, meta: Meta, c: list) -> ast.Binary:
        return self._binary(meta, "or", c[0], c[1])

    def implies(self, meta: Meta, c: list) -> ast.Binary:
        return self._binary(meta, "->", c[0], c[2])

    def iff(self, meta: Meta, c: list) -> ast.Binary:
        return self._binary(meta, "<->", c[0], c[2])


# Common mistakes and what to say about them (Lark's match_examples picks the
# example whose parser state matches the error's).
_USE_EQ = "use '==' to compare; '=' only appears in 'def' and 'let'"
_CONNECTIVES = "use 'and', 'or', 'not' for the boolean connectives"
_ACTION_FORM = 'an action property reads: action NAME "doc" after OP(PARAMS) returns R: BODY'

_EXAMPLES: dict[str, list[str]] = {
    _USE_EQ: [
        "invariant x: npages = 3",
        "invariant x: forall b in free: b.order = 0",
    ],
    _CONNECTIVES: [
        "invariant x: a && b",
        "invariant x: a || b",
        "invariant x: !a",
    ],
    "an invariant needs a ':' before its body: invariant NAME \"description\": EXPR": [
        "invariant x npages > 0",
        'invariant x "doc" npages > 0',
    ],
    "a quantifier reads 'forall x in COLLECTION: BODY'": [
        "invariant x: forall b free: true",
        "invariant x: forall b in free true",
        "invariant x: exists b: true",
    ],
    _ACTION_FORM: [
        "action x: true",
        "action x after alloc(o) true",
        "after alloc(o): true",
    ],
    "a spec file holds items that start with 'def', 'invariant' or 'action'": [
        "forall b in free: true",
        "npages > 0",
    ],
}


def _hint(err: UnexpectedInput, text: str) -> str | None:
    if isinstance(err, UnexpectedCharacters):
        ch = text[err.pos_in_stream : err.pos_in_stream + 1]
        return _CHAR_HINTS.get(ch, _NO_SUCH_SYMBOL)
    # At the end of the file the parser state says nothing about a mistake, only
    # about what is missing: the examples (matched by state) would mislead.
    at_end = isinstance(err, UnexpectedEOF) or (
        isinstance(err, UnexpectedToken) and err.token.type == "$END"
    )
    if (
        isinstance(err, UnexpectedToken)
        and "NAME" in (err.expected or ())
        and re.fullmatch(r"[A-Za-z_]\w*", str(err.token))
    ):
        return f"'{err.token}' is a keyword of the spec language, so it cannot be a name"
    if isinstance(err, UnexpectedToken) and not at_end:
        # Mistakes recognised by the token itself, whatever the parser state.
        token, start = err.token, err.token.start_pos or 0
        if token.type == "EQUAL":
            return _USE_EQ
        if token.type == "AFTER":
            return _ACTION_FORM
        if str(token) in ("&", "|") and text[start - 1 : start] == str(token):
            return _CONNECTIVES
    label = None
    if not at_end:
        # Examples start with a header so that the parser stack matches a real file's.
        examples = {label: [f"spec s\n{e}" for e in srcs] for label, srcs in _EXAMPLES.items()}
        try:
            label = err.match_examples(_lark().parse, examples, use_accepts=True)
        except Exception:  # noqa: BLE001 - a hint is a nicety, never a second failure
            label = None
    if label:
        return str(label)
    if isinstance(err, UnexpectedToken) and err.expected:
        shown = sorted((_describe(t) for t in err.expected), key=lambda d: (d[0] == "'", d))
        if shown:
            return "expected " + ", ".join(shown[:8]) + (" ..." if len(shown) > 8 else "")
    return None


_NO_SUCH_SYMBOL = "the spec language has no such symbol; see docs/spec-language.md"
_CHAR_HINTS = {
    '"': 'a "description" ends with a closing " on the line where it starts',
    "!": "use 'not' for negation ('!=' means not equal)",
    "'": 'a description is written in double quotes: "..."',
    "[": "the spec language has no indexing; quantify instead: forall x in C: ...",
    ";": "items need no separator; start the next one with 'def', 'invariant' or 'action'",
}

_TOKEN_WORDS = {
    "NAME": "a name",
    "INT": "a number",
    "STRING": 'a "description"',
    "COLON": "':'",
    "LPAR": "'('",
    "RPAR": "')'",
    "COMMA": "','",
    "EQUAL": "'='",
    "COMPARE": "a comparison",
    "QUANT": "forall/exists",
    "AGGREGATE": "count/sum",
    "ADDOP": "'+'/'-'",
    "MULOP": "'*'/'//'/'%'",
    "SHIFT": "'<<'/'>>'",
    "$END": "end of file",
}


def _describe(terminal: str) -> str:
    """A terminal as the user wrote it: 'and', '<->', '..', a name, a number."""
    if terminal in _TOKEN_WORDS:
        return _TOKEN_WORDS[terminal]
    literal = _literals().get(terminal)
    if literal is not None:
        return f"'{literal}'"
    return f"'{terminal.lower()}'" if terminal.isupper() else terminal


@functools.cache
def _literals() -> dict[str, str]:
    """Terminal name -> its text, for the grammar's fixed-string terminals."""
    return {t.name: t.pattern.value for t in _lark().terminals if t.pattern.type == "str"}


def _syntax_error(err: UnexpectedInput, text: str, path: str) -> SpecSyntaxError:
    line, column = getattr(err, "line", 0) or 0, getattr(err, "column", 0) or 0
    if isinstance(err, UnexpectedEOF) or (
        isinstance(err, UnexpectedToken) and err.token.type == "$END"
    ):
        lines = text.rstrip().split("\n")  # the parser's lines: "\n" ends each
        line, column = len(lines), len(lines[-1]) + 1
        message = "the spec ends in the middle of an item"
        width = 1
    elif isinstance(err, UnexpectedCharacters):
        ch = text[err.pos_in_stream] if err.pos_in_stream < len(text) else "?"
        message = f"unexpected character {ch!r}"
        width = 1
    else:
        assert isinstance(err, UnexpectedToken)
        token, start = str(err.token), err.token.start_pos or 0
        if token in ("&", "|") and text[start - 1 : start] == token:
            token, column = token * 2, column - 1  # `&&` or `||`: point at both
        message = f"unexpected {token!r}"
        width = max(len(token), 1)
    span = ast.Span(line, column, line, column + width)
    return SpecSyntaxError(message, path=path, source=text, span=span, hint=_hint(err, text))


def parse_tree(text: str, path: str = "<spec>") -> Tree:
    try:
        return _lark().parse(text)
    except UnexpectedInput as err:
        raise _syntax_error(err, text, path) from None


def parse_spec(text: str, path: str = "<spec>") -> ast.Spec:
    """Parse a spec's text; its vocabulary is not checked here (see typecheck).
    A spec beyond the limits of spec/limits.py is a SpecSyntaxError too."""
    try:
        items = _ToAst().transform(parse_tree(text, path))
    except VisitError as err:
        if not isinstance(err.orig_exc, _LiteralError):
            raise
        bad = err.orig_exc
        raise SpecSyntaxError(
            bad.message, path=path, source=text, span=_span(bad.token), hint=bad.hint
        ) from None
    header = [i for i in items if isinstance(i, tuple)]
    if not header:
        # Point at the first item, where the header belongs (past any comments).
        first = next((i.span for i in items), ast.Span(1, 1, 1, 1))
        keyword = {ast.Define: "def", ast.Invariant: "invariant", ast.Action: "action"}
        width = len(keyword[type(items[0])]) if items else 1
        raise SpecSyntaxError(
            "a spec file must start by naming its subsystem",
            path=path,
            source=text,
            span=ast.Span(first.line, first.column, first.line, first.column + width),
            hint='add a first line such as: spec buddy "what this file states"',
        )
    if len(header) > 1:
        raise SpecSyntaxError(
            "a spec file names its subsystem once",
            path=path,
            source=text,
            span=header[1][3],
            hint="remove the second 'spec' line",
        )
    _, subsystem, doc, header_span = header[0]
    spec = ast.Spec(
        path=path,
        source=text,
        subsystem=subsystem,
        doc=doc,
        defines=tuple(i for i in items if isinstance(i, ast.Define)),
        invariants=tuple(i for i in items if isinstance(i, ast.Invariant)),
        actions=tuple(i for i in items if isinstance(i, ast.Action)),
        header_span=header_span,
    )
    check_limits(spec)
    fit_recursion_limit()
    return spec


def load_spec(path: str | Path) -> ast.Spec:
    """Read and parse a spec file (SpecSyntaxError for a bad one, OSError if unreadable)."""
    p = Path(path)
    return parse_spec(p.read_text(encoding="utf-8"), str(p))
