"""Errors in a spec file, each pointing at the exact spot with a caret and a hint.

error: unknown name 'fre'
  --> buddy.mm:12:17
   |
12 |     forall b in fre: aligned(b.pfn, 2 ** b.order)
   |                 ^^^
hint: did you mean 'free'?
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from mmcheck.spec.ast import Span


class SpecError(Exception):
    """A spec that cannot be checked: it names the file, the spot, and what to do.

    Causes: a syntax error (SpecSyntaxError), a name or type error
    (SpecTypeError). Fix the spec at the location shown; the hint says how.
    """

    kind = "error"

    def __init__(
        self,
        message: str,
        *,
        path: str = "<spec>",
        source: str = "",
        span: Span | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.source = source
        self.span = span
        self.hint = hint

    def located(self, path: str, source: str) -> SpecError:
        """This error with the file it belongs to filled in."""
        self.path, self.source = path, source
        return self

    @property
    def line(self) -> int:
        return self.span.line if self.span else 0

    @property
    def column(self) -> int:
        return self.span.column if self.span else 0

    def render(self) -> str:
        out = [f"{self.kind}: {self.message}"]
        if self.span is None or self.span.line <= 0:
            out.append(f"  --> {self.path}")
        else:
            out.append(f"  --> {self.path}:{self.span.line}:{self.span.column}")
            out.extend(_excerpt(self.source, self.span))
        if self.hint:
            out.append(f"hint: {self.hint}")
        return "\n".join(out)

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "message": self.message,
            "file": self.path,
            "line": self.line,
            "column": self.column,
            "hint": self.hint,
        }

    def __str__(self) -> str:
        return self.render()


class SpecSyntaxError(SpecError):
    """The text is not in the spec language's grammar (spec/grammar.lark)."""

    kind = "syntax error"


class SpecTypeError(SpecError):
    """The spec is well formed but names something that does not exist, or mixes types."""

    kind = "type error"


def _excerpt(source: str, span: Span) -> list[str]:
    # Lines as the parser counts them: only "\n" ends one ("\r", "\f", "\u2028" do not).
    lines = source.split("\n") if source else []
    if not 1 <= span.line <= len(lines):
        return []
    # One printable character per column, so the caret stays under its spot.
    raw = "".join(c if c.isprintable() or c == "\t" else " " for c in lines[span.line - 1])
    text = raw.expandtabs(4)
    gutter = str(span.line)
    pad = " " * len(gutter)
    # Columns count a tab as one character; the caret goes under the expanded text.
    start = len(raw[: max(span.column - 1, 0)].expandtabs(4))
    if span.end_line == span.line and span.end_column > span.column:
        width = len(raw[: span.end_column - 1].expandtabs(4)) - start
    else:
        width = max(len(text.rstrip()) - start, 1)
    return [
        f"{pad} |",
        f"{gutter} | {text}",
        f"{pad} | {' ' * start}{'^' * max(width, 1)}",
    ]


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A 'did you mean' hint for a misspelt name, or None when nothing is close."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None
