"""One house for every subsystem: its declaration, and every table derived from it.

A subsystem (buddy, vma, pagetable, fault, ...) is ONE `Subsystem` declaration,
in its own small module under `checker/subsystems/declared/` that calls
`register(...)`. Everything else that needs to know about subsystems reads it
from here: the spec loader (`vocabulary`), the sandbox (`contract_classes`), the
CLI (`subsystem_of_class`), the engines (`driver`), the tests (`declared`).

Declarations are light (names and data, no model import), so that learning
which subsystems exist costs nothing; a model or a driver module is imported
only when its subsystem is used, so checking buddy never imports the page-table
model. Both are validated when they load: a declaration whose operations or
parameters differ from its vocabulary's, or a driver that lacks a hook, is a
`RegistrationError` naming the file and what is missing, never a late
AttributeError in the middle of a search.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from mmcheck.checker.systems import System
    from mmcheck.checker.trace import Step
    from mmcheck.model.vocabulary import Vocabulary

# The repository root: declarations name their examples relative to it.
ROOT = Path(__file__).resolve().parents[2]

Values = tuple[int, ...] | Callable[[Mapping[str, int]], Sequence[int]]


class RegistrationError(TypeError):
    """A subsystem's declaration, model or driver does not fit the registry's protocol."""


# ---------------------------------------------------------------- declarations


@dataclass(frozen=True)
class Domain:
    """Where a step generator draws one argument from, as data.

    `legal`: values the contract accepts, the simplest first (shrinking moves
    towards them); `invalid`: values on the contract's error paths. Either is a
    tuple, or a function of the setup when the values depend on it (a pfn past
    npages). `returned_by` names the operation whose results this argument
    takes (free's pfn is one alloc returned): a generator draws it from what
    the trace has seen, and `legal` is then only a fallback."""

    legal: Values = ()
    invalid: Values = ()
    returned_by: str = ""
    doc: str = ""

    def legal_values(self, setup: Mapping[str, int]) -> tuple[int, ...]:
        return _values(self.legal, setup)

    def invalid_values(self, setup: Mapping[str, int]) -> tuple[int, ...]:
        return _values(self.invalid, setup)


def _values(v: Values, setup: Mapping[str, int]) -> tuple[int, ...]:
    return tuple(v(setup)) if callable(v) else tuple(v)


@dataclass(frozen=True)
class Op:
    """One operation of the contract class, with a domain for each argument in order."""

    name: str
    args: tuple[tuple[str, Domain], ...] = ()

    def domain(self, param: str) -> Domain:
        return dict(self.args)[param]


@dataclass(frozen=True)
class Subsystem:
    """Everything mmcheck knows about one subsystem, in one place.

    name            what a spec's `spec NAME` line and a trace's "subsystem" say
    rank            its place in the contract (docs/contract.md): when a submission
                    defines several contract classes, the lowest rank is checked
    contract_class  the class a submission defines (BuddyAllocator, ...)
    model           module whose VOCABULARY a spec of this subsystem may name
    driver          module with the driver hooks (see `Driver`)
    operations      the contract's operations with argument domains; the same names
                    and parameters as the vocabulary's operations, in its order
    symbolic        the driver defines symbolic_system (a Z3 encoding)
    symbolic_pages  the size its symbolic_system gets when --z3-pages is not given:
                    (proofs on the reference, traces for a submission); sizes where
                    the whole spec is answered within the engine's default budget
    symbolic_whole_pages  a smaller size at which the encoding also models names the
                    default size leaves out (slab's white box: array caches, slab
                    lists): on the reference, the properties not compiled at the
                    default size are checked at this one too, and the report names
                    it (0: none)
    correct, buggy  example submissions (repository paths): one that passes the
                    library, one that a short search convicts (the registration
                    test walks both for every subsystem)
    clauses         the prefix of its clauses in docs/contract.md ([BUDDY-...]): the
                    traceability table (trace_matrix.py) checks them against its specs
    addresses       its numbers are virtual addresses and byte lengths: reports show
                    them in hex from a page up (decode.py)
    kinds           parameter or state name -> what it holds, where the subsystem
                    means something else than decode.py's default for that name
                    (pagetable's `flags` are entry bits: ("flags", "pteflags"))
    results         op -> the parameter name by which later steps use what it returned
                    (("alloc", "pfn")): the minimiser renames them when a replay's
                    choice differs (minimise.py)
    fixed_setup     constructor arguments the minimiser leaves as they are (only a
                    few values are meaningful)
    """

    name: str
    rank: int
    contract_class: str
    model: str
    driver: str
    operations: tuple[Op, ...]
    correct: str
    buggy: str
    clauses: str = ""
    symbolic: bool = False
    symbolic_pages: tuple[int, int] = (8, 12)
    symbolic_whole_pages: int = 0
    addresses: bool = False
    kinds: tuple[tuple[str, str], ...] = ()
    results: tuple[tuple[str, str], ...] = ()
    fixed_setup: tuple[str, ...] = ()
    doc: str = ""

    def op(self, name: str) -> Op | None:
        return next((o for o in self.operations if o.name == name), None)

    @property
    def operation_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.operations)

    def kind(self, name: str) -> str | None:
        """What the parameter or state name `name` holds here, if the declaration says."""
        return dict(self.kinds).get(name)

    def result_param(self, op: str) -> str | None:
        """The parameter name that later steps give to what `op` returned."""
        return dict(self.results).get(op)


_REGISTRY: dict[str, Subsystem] = {}


def register(decl: Subsystem) -> Subsystem:
    """Add a subsystem; RegistrationError if it clashes with one already declared."""
    _check_declaration(decl)
    old = _REGISTRY.get(decl.name)
    if old is not None and old != decl:
        raise RegistrationError(f"the subsystem '{decl.name}' is declared twice")
    for other in _REGISTRY.values():
        if other.name == decl.name:
            continue
        if other.contract_class == decl.contract_class:
            raise RegistrationError(
                f"'{decl.name}' and '{other.name}' both claim the contract class "
                f"{decl.contract_class}")
        if other.rank == decl.rank:
            raise RegistrationError(f"'{decl.name}' and '{other.name}' have the same rank "
                                    f"{decl.rank}")
        if other.clauses == decl.clauses:
            raise RegistrationError(f"'{decl.name}' and '{other.name}' both claim the "
                                    f"contract clauses [{decl.clauses}-...]")
    _REGISTRY[decl.name] = decl
    return decl


def _check_declaration(d: Subsystem) -> None:
    where = f"the declaration of subsystem '{d.name}'"
    if not d.name.isidentifier() or not d.contract_class.isidentifier():
        raise RegistrationError(f"{where}: name and contract_class must be identifiers")
    for attr in ("model", "driver", "correct", "buggy", "clauses"):
        if not getattr(d, attr):
            raise RegistrationError(f"{where}: `{attr}` is empty")
    if not d.clauses.isalnum() or not d.clauses.isupper():
        raise RegistrationError(f"{where}: clauses '{d.clauses}' is no clause prefix "
                                "(upper-case letters and digits: BUDDY, AS)")
    names = [o.name for o in d.operations]
    if not names or len(set(names)) != len(names):
        raise RegistrationError(f"{where}: operations must be non-empty and distinct: {names}")
    for o in d.operations:
        for p, dom in o.args:
            if not isinstance(dom, Domain):
                raise RegistrationError(f"{where}: {o.name}({p}) has no Domain")
            if dom.returned_by and dom.returned_by not in names:
                raise RegistrationError(f"{where}: {o.name}({p}) takes results of "
                                        f"'{dom.returned_by}', which is no operation")
    _check_fields(d, where)


# What a number can hold (decode.py spells each one): the values of `kinds`.
KINDS = ("address", "length", "prot", "mapflags", "pteflags", "errno", "pfcode", "sicode",
         "selector", "sreg", "bool", "int")


def _check_fields(d: Subsystem, where: str) -> None:
    """The data fields name operations, parameters and kinds that exist."""
    names = {o.name for o in d.operations}
    params = {p for o in d.operations for p, _ in o.args}
    for name, kind in d.kinds:
        if kind not in KINDS:
            raise RegistrationError(f"{where}: kinds says '{name}' holds '{kind}', which is "
                                    f"none of {', '.join(KINDS)}")
    for op, param in d.results:
        if op not in names or param not in params:
            raise RegistrationError(f"{where}: results names {op} -> {param}, but '{op}' is no "
                                    f"operation or '{param}' no parameter of one")
    for name in d.fixed_setup:
        if not name.isidentifier():
            raise RegistrationError(f"{where}: fixed_setup '{name}' is no argument name")


def _load_declarations() -> None:
    from mmcheck.checker.subsystems import declared

    for info in pkgutil.iter_modules(declared.__path__):
        importlib.import_module(f"{declared.__name__}.{info.name}")


@cache
def _loaded() -> tuple[Subsystem, ...]:
    _load_declarations()
    return tuple(sorted(_REGISTRY.values(), key=lambda d: d.rank))


def declared() -> tuple[Subsystem, ...]:
    """Every registered subsystem, in contract order."""
    return _loaded()


def names() -> list[str]:
    return [d.name for d in declared()]


def get(name: str) -> Subsystem | None:
    return next((d for d in declared() if d.name == name), None)


def contract_classes() -> tuple[str, ...]:
    """The classes a submission may define, in contract order (the sandbox's list)."""
    return tuple(d.contract_class for d in declared())


def subsystem_of_class(class_name: str) -> str | None:
    """The subsystem whose contract class is `class_name` (BuddyAllocator -> buddy)."""
    return next((d.name for d in declared() if d.contract_class == class_name), None)


# ---------------------------------------------------------------- vocabulary


def vocabulary(name: str) -> Vocabulary | None:
    """The vocabulary of a subsystem (its model imported now), or None if none is declared.
    RegistrationError if the model does not declare the operations the subsystem does."""
    d = get(name)
    return _vocabulary(d) if d is not None else None


@cache
def _vocabulary(d: Subsystem) -> Vocabulary:
    from mmcheck.model.vocabulary import Vocabulary

    module = importlib.import_module(d.model)
    vocab = getattr(module, "VOCABULARY", None)
    if not isinstance(vocab, Vocabulary):
        raise RegistrationError(f"{module.__file__}: the model of '{d.name}' defines no "
                                "VOCABULARY (a model.vocabulary.Vocabulary)")
    if vocab.subsystem != d.name:
        raise RegistrationError(f"{module.__file__}: VOCABULARY is for '{vocab.subsystem}', "
                                f"the registry expects '{d.name}'")
    declared_ops = [(o.name, tuple(p for p, _ in o.args)) for o in d.operations]
    model_ops = [(o.name, tuple(p for p, _ in o.params)) for o in vocab.operations]
    if declared_ops != model_ops:
        raise RegistrationError(
            f"the declaration of '{d.name}' lists operations {_sig(declared_ops)}, its "
            f"vocabulary ({d.model}) {_sig(model_ops)}: they must be the same, in order")
    return vocab


def _sig(ops: Sequence[tuple[str, tuple[str, ...]]]) -> str:
    return ", ".join(f"{n}({', '.join(ps)})" for n, ps in ops)


# ---------------------------------------------------------------- drivers


class StepView(Protocol):
    """What a step generator remembers of one trace; told every step's outcome."""

    def record(self, step: Step) -> None: ...


Pick = list[tuple[str, tuple[int, ...]]]


@dataclass(frozen=True)
class Driver:
    """How the engines set a subsystem up, drive it and draw its state: the hooks a
    driver module must define (checked when it loads; missing => RegistrationError).

    setups(max_pages)            a Hypothesis strategy of constructor arguments (dict)
    View(setup)                  what the step generator remembers (`StepView`)
    draw_steps(data, view)       the next operation(s) [(op, args)], drawn with
                                 data.draw(...), the simplest choices first
    ReferenceSystem(setup)       the reference model as a `System` (systems.py); with
                                 apply(op, args, expect) it makes the trace's choices
    SubmissionSystem(sub, setup) a sandboxed submission as a System, the reference
                                 following its choices (refinement)
    render_state(state, named)   the state at a violation, as a student reads it;
                                 `named`: the values the explanation binds, which the
                                 picture may point at
    classify_step(step, old, new, setup)
                                 the contract-coverage classes a step falls in beyond
                                 its operation ("outcome: alloc -> none", "boundary:
                                 ..."; checker/coverage.py has the shared helpers)
    classify_setup(setup)        (optional) the classes the constructor's arguments fall in
    COVERAGE                     the classes the contract names (a tuple of strings
                                 "operation: ...", "outcome: ...", "boundary: ...", an
                                 "operation: OP" for every operation): a default run
                                 must hit them all (tests/unit/test_coverage.py)
    symbolic_system(npages, mutation=None)
                                 (when the declaration says `symbolic`) the Z3
                                 encoding: (system, setup, integer universe, exponent bound)
    render_svg(state, focus)     the state as an SVG picture (HTML reports), from the
                                 subsystem's module in checker/formats/pictures/
    hidden_names(sub)            (optional) the vocabulary names submission `sub` does not
                                 show: a property reading one is n/a on it (observable.py)
    SUBMISSION_VIEW              (optional) state name -> how a submission shows it
                                 (`mmcheck vocab`); `submission_view` here
    """

    decl: Subsystem
    setups: Callable[[int], Any]
    View: Callable[[Mapping[str, int]], StepView]
    draw_steps: Callable[[Any, Any], Pick]
    ReferenceSystem: Callable[[Mapping[str, int]], System]
    SubmissionSystem: Callable[[Any, Mapping[str, int]], System]
    render_state: Callable[..., list[str]]
    classify_step: Callable[..., list[str]]
    render_svg: Callable[..., str]
    coverage: tuple[str, ...] = ()
    classify_setup: Callable[[Mapping[str, int]], list[str]] | None = None
    symbolic_system: Callable[..., Any] | None = None
    hidden_names: Callable[[Any], frozenset[str]] | None = None
    submission_view: Mapping[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.decl.name

    @property
    def vocabulary(self) -> Vocabulary:
        return _vocabulary(self.decl)


OPTIONAL = ("coverage", "classify_setup", "symbolic_system", "hidden_names", "submission_view")
COVERAGE_KINDS = ("operation: ", "outcome: ", "boundary: ")
HOOKS = tuple(f.name for f in fields(Driver) if f.name not in ("decl", *OPTIONAL))


def driver(name: str) -> Driver | None:
    """The driver of a subsystem (its module imported and checked now), or None if no
    subsystem of that name is declared."""
    d = get(name)
    return _driver(d) if d is not None else None


@cache
def _driver(d: Subsystem) -> Driver:
    module = importlib.import_module(d.driver)
    where = getattr(module, "__file__", d.driver)
    missing = [h for h in HOOKS if not callable(getattr(module, h, None))]
    if missing:
        raise RegistrationError(
            f"{where}: the driver of '{d.name}' lacks {', '.join(missing)} (every driver "
            f"defines {', '.join(HOOKS)}; see checker/subsystems/registry.py Driver)")
    symbolic = getattr(module, "symbolic_system", None)
    if d.symbolic and not callable(symbolic):
        raise RegistrationError(f"{where}: '{d.name}' is declared symbolic but its driver "
                                "defines no symbolic_system")
    if symbolic is not None and not d.symbolic:
        raise RegistrationError(f"{where}: the driver defines symbolic_system but the "
                                f"declaration of '{d.name}' does not say symbolic=True")
    _vocabulary(d)
    hooks = {h: getattr(module, h) for h in HOOKS}
    return Driver(d, coverage=_coverage(d, module, where), symbolic_system=symbolic,
                  classify_setup=getattr(module, "classify_setup", None),
                  hidden_names=getattr(module, "hidden_names", None),
                  submission_view=dict(getattr(module, "SUBMISSION_VIEW", {})), **hooks)


def _coverage(d: Subsystem, module: Any, where: str) -> tuple[str, ...]:
    """The driver's COVERAGE, checked: classes of the three kinds, every operation named."""
    classes = getattr(module, "COVERAGE", None)
    if not isinstance(classes, tuple) or not all(isinstance(c, str) for c in classes):
        raise RegistrationError(f"{where}: the driver of '{d.name}' defines no COVERAGE (a "
                                "tuple of the contract-coverage classes a default run hits)")
    odd = [c for c in classes if not c.startswith(COVERAGE_KINDS)]
    unnamed = [o for o in d.operation_names if f"operation: {o}" not in classes]
    if odd or unnamed:
        raise RegistrationError(f"{where}: COVERAGE of '{d.name}': classes of no kind "
                                f"{odd}, operations not named {unnamed}")
    return classes


def drivers() -> Iterator[Driver]:
    for d in declared():
        yield _driver(d)
