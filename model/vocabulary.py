"""What a subsystem lets a spec talk about: its records, state and operations.

A model module declares its vocabulary as plain data. The spec type checker reads
it to know which names exist and what type each has, so the grammar never needs
to know what a buddy block or a VMA is. Types are written as short strings:

    "int", "bool", "int?"            scalars ("int?" may also be `none`)
    "Block"                          a record declared in the same vocabulary
    "set[Block]"                     a collection of records (no duplicates)
    "list[Block]"                    a collection that may hold duplicates

A snapshot (see `Snapshot`) maps every state name to a plain Python value of that
type: int, bool, None, a NamedTuple for a record, any iterable of records for a
collection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Record:
    """A record type: a name and its typed fields, e.g. Block{pfn: int, order: int}."""

    name: str
    fields: tuple[tuple[str, str], ...]
    doc: str = ""


@dataclass(frozen=True)
class Operation:
    """An operation of the subsystem that traces are made of, with its signature."""

    name: str
    params: tuple[tuple[str, str], ...]
    returns: str = "none"
    raises: tuple[str, ...] = ()
    doc: str = ""


@dataclass(frozen=True)
class StateVar:
    """One name of the snapshot, with its type and what it means."""

    name: str
    type: str
    doc: str = ""


@dataclass(frozen=True)
class Vocabulary:
    """Everything a spec of one subsystem may name."""

    subsystem: str
    records: tuple[Record, ...]
    state: tuple[StateVar, ...]
    operations: tuple[Operation, ...]
    doc: str = ""

    def record(self, name: str) -> Record | None:
        return next((r for r in self.records if r.name == name), None)

    def state_var(self, name: str) -> StateVar | None:
        return next((s for s in self.state if s.name == name), None)

    def operation(self, name: str) -> Operation | None:
        return next((o for o in self.operations if o.name == name), None)


@dataclass
class Snapshot(Mapping[str, object]):
    """A read-only view of a model's state, computed lazily name by name.

    Large state (every `struct page` of a million-page memory) is only built when a
    spec actually mentions it, and at most once per snapshot.
    """

    getters: Mapping[str, Callable[[], object]]
    _cache: dict[str, object] = field(default_factory=dict)

    def __getitem__(self, name: str) -> object:
        try:
            return self._cache[name]
        except KeyError:
            value = self.getters[name]()
            self._cache[name] = value
            return value

    def __iter__(self) -> Iterator[str]:
        return iter(self.getters)

    def __len__(self) -> int:
        return len(self.getters)
