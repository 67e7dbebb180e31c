"""Spec files in, checked specs out: parse, find the subsystem's vocabulary, type-check."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mmcheck.checker.subsystems import registry
from mmcheck.model.vocabulary import Vocabulary
from mmcheck.spec import ast
from mmcheck.spec.errors import SpecError, SpecTypeError, did_you_mean
from mmcheck.spec.parser import parse_spec
from mmcheck.spec.typecheck import PropertyInfo, typecheck

LIBRARY = Path(__file__).parent / "lib"


class SpecErrors(SpecError):
    """Several errors in one spec file; `errors` holds each, `render` shows them all."""

    def __init__(self, errors: list[SpecError]) -> None:
        first = errors[0]
        super().__init__(
            first.message, path=first.path, source=first.source, span=first.span, hint=first.hint
        )
        self.kind = first.kind
        self.errors = errors

    def render(self) -> str:
        body = "\n\n".join(e.render() for e in self.errors)
        return f"{body}\n\n{len(self.errors)} errors in {self.path}"


@dataclass(frozen=True)
class CheckedSpec:
    """A spec that parsed and type-checked against its subsystem's vocabulary."""

    spec: ast.Spec
    vocabulary: Vocabulary
    infos: dict[str, PropertyInfo]

    @property
    def path(self) -> str:
        return self.spec.path

    @property
    def subsystem(self) -> str:
        return self.spec.subsystem


def check_text(text: str, path: str = "<spec>") -> CheckedSpec:
    """Parse and type-check spec text; SpecError (with every error found) if it is wrong."""
    spec = parse_spec(text, path)
    vocab = registry.vocabulary(spec.subsystem)
    if vocab is None:
        known = registry.names()
        raise SpecTypeError(
            f"no model serves the subsystem '{spec.subsystem}'",
            path=path,
            source=text,
            span=spec.header_span,
            hint=did_you_mean(spec.subsystem, known) or f"known subsystems: {', '.join(known)}",
        )
    infos, errors = typecheck(spec, vocab)
    if errors:
        raise SpecErrors(list(errors)) if len(errors) > 1 else errors[0]
    return CheckedSpec(spec, vocab, infos)


def display_path(path: str | Path) -> str:
    """A path as reports show it: relative to the current directory when inside it."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


def load(path: str | Path) -> CheckedSpec:
    p = Path(display_path(path))
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise SpecError(
            f"cannot read the spec file: {err.strerror}", path=str(p), hint="check the path"
        ) from None
    except UnicodeDecodeError:
        raise SpecError("the spec file is not UTF-8 text", path=str(p)) from None
    return check_text(text, str(p))


def library(subsystem: str | None = None) -> list[Path]:
    """The standard library's spec files (all, or those of one subsystem)."""
    files = sorted(LIBRARY.glob("*.mm"))
    if subsystem is None:
        return files
    return [
        f for f in files if parse_spec(f.read_text(encoding="utf-8"), str(f)).subsystem == subsystem
    ]
