"""The submission plumbing every driver shares (buddy, vma, pagetable, fault).

`construct` makes the submission's object in its sandbox (`construct_refused`,
a trace step, tries arguments the contract refuses: ValueError expected); a constructor that
raises or crashes on a setup the contract allows is a SubmissionError (exit 2,
with the submission's message), never a trace step nor a bug in mmcheck.
A submission's step is run in its sandbox; `convert` turns the sandbox's
`Outcome` into a trace `Step` (the exception named as the contract names it)
or a Problem the spec need not state (a crash, a timeout, an exception the
contract does not allow, a result that is not what the operation returns).

The reference model then takes the same step, following the submission's
legal choices, and compares what the contract fixes (results, errnos, values
read, what a SIGSEGV or #PF says, vmas()). A difference is a *divergence*.
The spec sees the submission's own state at that step and usually names the
broken property itself, which is the better report; so a divergence is held
back one step (`Divergence`): if no property flagged it, the next step reports
it as a refinement problem that names the step where it happened and what the
reference did there. A reference that diverged cannot judge later steps, so
nothing else is compared after one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mmcheck.checker.systems import Problem, SubmissionError
from mmcheck.checker.trace import Step

if TYPE_CHECKING:
    from mmcheck.checker.subsystems.registry import Subsystem
    from mmcheck.model.vocabulary import Vocabulary


def pick(data: Any, label: str, *dims: Sequence[Any]) -> tuple[Any, ...]:
    """One element of each of `dims`, drawn as ONE integer (mixed radix, the first
    dim most significant, so shrinking towards 0 picks every dim's first element).

    Why one draw: Hypothesis deletes a step of a state machine by deleting its
    choices, at most five in a row, and each step costs two of its own; a step
    that draws more than three values can never be deleted, so a failing trace
    would not shrink at all. Every draw_steps here draws a kind and one pick."""
    from hypothesis import strategies as st

    sizes = [len(d) for d in dims]
    total = 1
    for n in sizes:
        total *= n
    i = data.draw(st.integers(0, total - 1), label=label)
    out = []
    for d, n in zip(reversed(dims), reversed(sizes), strict=True):
        i, r = divmod(i, n)
        out.append(d[r])
    return tuple(reversed(out))


def returns_of(vocab: Vocabulary) -> dict[str, str]:
    """What each operation returns ("int", "int?", "none"), as the vocabulary declares."""
    return {o.name: o.returns for o in vocab.operations}


def raises_of(vocab: Vocabulary) -> dict[str, tuple[str, ...]]:
    """The exceptions the contract lets each operation raise, as the vocabulary declares."""
    return {o.name: o.raises for o in vocab.operations}


def plain_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def stderr_tail(text: str, lines: int = 6) -> tuple[str, ...]:
    """The submission's own frames of a crash dump (not the worker's), else the last lines."""
    kept = [x for x in text.strip().splitlines() if x.strip()]
    own = [
        x.strip() for x in kept
        if 'File "' in x and "mmcheck" not in x and "runpy" not in x and "<frozen" not in x
    ]
    if own:
        return ("the submission's frames when it died (innermost first):", *own[:lines])
    if kept:
        return tuple(kept[-lines:])
    return ("the worker process ended during this call and left no message",)


def construct(sub: Any, decl: Subsystem, *args: Any) -> Any:
    """The handle of `decl.contract_class(*args)` made in the submission's sandbox.
    SubmissionError if the constructor raised or crashed: every setup a driver
    draws is one the contract allows, so nothing can be checked on such a submission."""
    from mmcheck.checker.sandbox import ConstructorFailed

    try:
        return sub.new(decl.contract_class, *args)
    except ConstructorFailed as err:
        out = err.outcome
        shown = ", ".join(_arg(a) if plain_int(a) else type(a).__name__ for a in args)
        where = f" at {out.exc.where}" if out.raised and out.exc.where else ""
        lines = stderr_tail(out.stderr) if out.crashed else ()
        raise SubmissionError(
            f"{decl.contract_class}({shown}) {out.describe()}{where}; the contract's "
            "constructor accepts these arguments, so nothing could be checked"
            + "".join(f"\n  {x}" for x in lines), out) from None


def construct_refused(sub: Any, decl: Subsystem, step_args: tuple[int, ...], *args: Any,
                      clause: str) -> tuple[Step, Problem | None]:
    """A constructor step: `decl.contract_class(*args)` with arguments the contract's
    `clause` (e.g. [BUDDY-INIT-ARGS]) says make no object: ValueError is right, an
    object made (dropped again) is a refinement problem, another exception or a
    crash is a crash. The step is named after the class and carries `step_args`."""
    from mmcheck.checker.sandbox import ConstructorFailed

    op = decl.contract_class
    call = f"{op}({', '.join(_arg(a) for a in step_args)})"
    try:
        handle = sub.new(op, *args)
    except ConstructorFailed as err:
        out = err.outcome
        if out.raised and out.exc is not None and out.exc.is_a("ValueError"):
            return Step(op, step_args, None, "ValueError"), None
        where = f" at {out.exc.where}" if out.raised and out.exc and out.exc.where else ""
        return Step(op, step_args, None, "crash"), Problem(
            "crash", f"{call} {out.describe()}{where}",
            (f"the contract says: ValueError (docs/contract.md {clause})",))
    try:
        sub.drop(handle)
    except Exception:  # noqa: BLE001 - a dead worker has nothing to drop
        pass
    return Step(op, step_args, None, None), Problem(
        "refinement", f"{call} made an object, but the contract says these arguments make none",
        (f"docs/contract.md {clause}: the constructor raises ValueError for them",))


@dataclass(frozen=True)
class Converted:
    """A submission's step as the trace records it, and what its exception carried."""

    step: Step
    problem: Problem | None = None
    errno: int | None = None  # OSError.errno
    # Segfault.code (si_code) or PageFault.code (x86 error code): the first argument of
    # PageFault(code, va) / Segfault(code, va), docs/contract.md [GEN-FAULT-CLASSES]
    code: int | None = None
    address: int | None = None  # the fault's `address`, if it has one



def convert(op: str, args: tuple[int, ...], out: Any, allowed: Sequence[str],
            returns: str) -> Converted:
    """The Step an Outcome stands for. `allowed` names the exceptions the contract
    lets `op` raise (an exception counts as the first of them it is an instance
    of, by class name along its MRO); `returns` is "int", "int?" or "none"."""
    if out.crashed:
        kind = "timeout" if out.status.value == "timeout" else "crash"
        return Converted(Step(op, args, None, kind),
                         Problem(kind, out.detail, stderr_tail(out.stderr)))
    if out.status.value == "violation":
        return Converted(Step(op, args, None, "protocol"), Problem("protocol", out.detail, ()))
    call = f"{op}({', '.join(_arg(a) for a in args)})"
    if out.raised:
        exc = out.exc
        name = next((n for n in allowed if exc.is_a(n)), None)
        if name is None:
            where = f" at {exc.where}" if exc.where else ""
            allow = " or ".join(allowed) or "nothing"
            return Converted(Step(op, args, None, exc.type), Problem(
                "crash", f"{call} raised {exc}{where}",
                (f"the contract lets {op} raise {allow} only; this is a bug in the submission",)))
        return Converted(Step(op, args, None, name), errno=exc.errno, code=exc.code,
                         address=exc.address)
    value = out.value
    ok = (value is None if returns == "none" else
          plain_int(value) or (returns == "int?" and value is None))
    if not ok:
        want = {"none": "None", "int": "an int", "int?": "an int or None"}[returns]
        return Converted(Step(op, args, None, "protocol"), Problem(
            "protocol", f"{call} returned {value!r}; the contract says it returns {want}", ()))
    return Converted(Step(op, args, value, None))


def _arg(a: object) -> str:
    return hex(a) if plain_int(a) and a >= 4096 else repr(a)


def call_text(step: Step) -> str:
    return f"{step.op}({', '.join(_arg(a) for a in step.args)})"


class Divergence:
    """A difference from the reference, held back one step so the spec can name it."""

    def __init__(self) -> None:
        self.pending: Problem | None = None
        self.index = 0  # steps applied so far

    @property
    def diverged(self) -> bool:
        return self.pending is not None

    def note(self, step: Step, what: str, lines: Sequence[str]) -> None:
        """Remember that `step` (the one just applied) diverged: `what` in one line."""
        if self.pending is None:
            self.pending = Problem(
                "refinement", f"step {self.index - 1}: {call_text(step)} {what}",
                (*lines, "no property still being checked flagged that step, and the "
                 "reference model (Linux) cannot follow the submission past it"))

    def due(self) -> Problem | None:
        """Count one more step; the held-back problem, if the previous step left one."""
        self.index += 1
        return self.pending


def outcome_text(step: Step, errno: int | None = None, code: int | None = None) -> str:
    """How a step ended, with what its exception carried: 'raised OSError(EEXIST)'."""
    import errno as errnos

    if step.raised is None:
        return "returned none" if step.result is None else f"returned {_arg(step.result)}"
    if errno is not None:
        return f"raised {step.raised}({errnos.errorcode.get(errno, errno)})"
    if code is not None:
        return f"raised {step.raised}(code {code:#x})"
    return f"raised {step.raised}"


def call_op(sub: Any, handle: Any, vocab: Vocabulary, op: str, args: tuple[int, ...]
            ) -> Converted:
    """Call operation `op` of the submission's object `handle` and `convert` what came
    back by the exceptions and return type `vocab` declares for it."""
    contract = vocab.operation(op)
    assert contract is not None, op
    return convert(op, args, sub.call(handle, op, *args), contract.raises, contract.returns)
