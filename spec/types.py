"""The spec language's types, and how a vocabulary's type strings map to them."""

from __future__ import annotations

from dataclasses import dataclass

from mmcheck.model.vocabulary import Vocabulary


@dataclass(frozen=True)
class Type:
    """A spec type."""

    def __str__(self) -> str:
        return type(self).__name__


@dataclass(frozen=True)
class Scalar(Type):
    """int, bool, int? (an int or none), or the type of the literal none."""

    name: str

    def __str__(self) -> str:
        return self.name


INT = Scalar("int")
BOOL = Scalar("bool")
OPT_INT = Scalar("int?")
NONE = Scalar("none")


@dataclass(frozen=True)
class IntervalT(Type):
    """`lo .. hi`: a half-open range of integers."""

    def __str__(self) -> str:
        return "interval"


INTERVAL = IntervalT()


@dataclass(frozen=True)
class RecordT(Type):
    """A record declared by the vocabulary: Block, Page, Vma, ..."""

    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class CollectionT(Type):
    """A collection of records; a bag when duplicates are possible (`list[...]`)."""

    element: RecordT
    bag: bool

    def __str__(self) -> str:
        return f"{'list' if self.bag else 'set'}[{self.element}]"


def parse_type(text: str, vocabulary: Vocabulary) -> Type:
    """A vocabulary type string ("int", "set[Block]", ...) as a Type."""
    text = text.strip()
    scalars = {"int": INT, "bool": BOOL, "int?": OPT_INT, "none": NONE}
    if text in scalars:
        return scalars[text]
    for prefix, bag in (("set[", False), ("list[", True)):
        if text.startswith(prefix) and text.endswith("]"):
            inner = parse_type(text[len(prefix) : -1], vocabulary)
            if not isinstance(inner, RecordT):
                raise ValueError(f"collections hold records, not {inner}")
            return CollectionT(inner, bag)
    if vocabulary.record(text) is not None:
        return RecordT(text)
    raise ValueError(f"unknown type {text!r} in vocabulary {vocabulary.subsystem!r}")
