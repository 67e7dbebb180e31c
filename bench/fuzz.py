"""Fuzzing mmcheck for tracebacks and hangs: generated specs and command lines.

    python -m bench fuzz [--specs N] [--argv N] [--seed S] [--limit SECONDS] [--shard K/N]
                         [--budgets N] [--out FILE]

One invariant for every input: mmcheck answers with a result or a located error,
never a traceback, never a hang.

Specs (`spec_cases`) come from three generators, in turn:
- grammar: random derivations of spec/grammar.lark (its compiled rules, read from
  the parser itself, so a new rule is fuzzed without touching this file), names
  drawn from the subsystems' vocabularies, numbers from a set of boundaries;
- mutation: a standard-library file (spec/lib/*.mm) with a few token deletions,
  duplications, swaps, replacements, a number set to a boundary value, an item
  spliced in from another file, or a sub-expression nested hundreds deep;
- deep: the library with one property's body nested past and below the limits
  of spec/limits.py (not, parentheses, let, and-chains, def chains).
Each spec is parsed and type-checked; one that checks is compiled and evaluated
(every invariant on a few reference states, every action on a few steps, with
an explanation of each failure), and a buddy spec goes through Z3's compiler too.
Allowed: success, or SpecError located inside the text (file:line:col).

Command lines (`argv_cases`) are drawn from the real option set of the CLI's
parser (read at run time) plus junk: bad, negative and huge numbers, missing
files, directories, unicode, generated spec files, saved and broken traces.
Work is kept tiny (`--budget`, `--steps`, `--traces` when the CLI has it, small
memories), since the point is the paths, not the search. Allowed: exit code 0,
1, 2 or 3, no "Traceback" and no "internal error" on stderr, and every
`file:line:col` that a spec error names inside that file.

A spec case runs in this process under a CPU-time timer (a fork per case would
cost more than the case); a command line runs in a forked child (so a hang in C,
a crash of the interpreter or a global that main() sets cannot spoil the next
case), killed with its process group past its wall-clock limit.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LIBRARY = REPO / "spec" / "lib"

# Exit codes of a spec case's child (an argv case's child exits with mmcheck's own).
OK, SPEC_ERROR, CRASH = 0, 2, 70
ALLOWED_EXITS = {0, 1, 2, 3}

NUMBERS = [
    "0", "1", "2", "3", "7", "8", "11", "12", "63", "64", "4095", "4096", "4097",
    "0x1000", "0x7fffffffffff", "0xffffffffffffffff", "0x_", "00", "1_000",
    str(2**31 - 1), str(2**32), str(2**63 - 1), str(2**63), str(2**64), str(2**64 + 1),
    "9" * 40, "9" * 3600, "9" * 3800, "1" + "0" * 4400, "0x" + "f" * 3100,
]
LOCALS = ["a", "b", "c", "x", "y", "p", "q", "r", "o", "n", "m", "v", "t", "k", "d", "e"]
STRINGS = ['"doc"', '""', '"unicode: é ü 漢字 \U0001f600"', r'"esc \" \\ \n"', '"[BUD-1] tag"']


# ------------------------------------------------------------------ outcomes


@dataclass
class Outcome:
    """What one case did: `status` is ok, error (a located spec or usage error),
    crash (a traceback, an unlocated error, a bad exit code) or hang."""

    status: str
    seconds: float
    detail: str = ""


@dataclass
class Case:
    kind: str  # "spec" or "argv"
    origin: str  # which generator made it
    payload: str | list[str]  # the spec text, or the argv

    def short(self) -> str:
        text = self.payload if isinstance(self.payload, str) else " ".join(self.payload)
        return text if len(text) <= 300 else text[:300] + f"... ({len(text)} chars)"


@dataclass
class Summary:
    seed: int
    cases: Counter = field(default_factory=Counter)  # kind/origin -> count
    statuses: Counter = field(default_factory=Counter)  # kind/status -> count
    exits: Counter = field(default_factory=Counter)  # argv exit codes
    failures: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    slowest: dict[str, float] = field(default_factory=dict)
    time_by_origin: Counter = field(default_factory=Counter)

    def record(self, case: Case, out: Outcome) -> None:
        self.cases[f"{case.kind}/{case.origin}"] += 1
        self.statuses[f"{case.kind}/{out.status}"] += 1
        self.slowest[case.kind] = max(self.slowest.get(case.kind, 0.0), out.seconds)
        self.time_by_origin[f"{case.kind}/{case.origin}"] += out.seconds
        if out.status in ("crash", "hang"):
            self.failures.append({**asdict(case), "payload": case.short(), **asdict(out)})

    @property
    def crashes(self) -> int:
        return sum(n for k, n in self.statuses.items() if k.endswith("/crash"))

    @property
    def hangs(self) -> int:
        return sum(n for k, n in self.statuses.items() if k.endswith("/hang"))


# ------------------------------------------------------------------ isolation


def run_isolated(fn: Callable[[], int], limit: float) -> tuple[int | None, str, float]:
    """Run fn in a forked child with stdout and stderr captured; (exit code, output,
    seconds), the code None when the child ran past `limit` seconds and was killed.
    A child killed by a signal (a crash of the interpreter) reports 128 + signal."""
    with tempfile.TemporaryFile() as out:
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            code = CRASH
            try:
                os.dup2(out.fileno(), 1)
                os.dup2(out.fileno(), 2)
                code = fn()
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 2
            except BaseException:  # noqa: BLE001 - the evidence for the report
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        code = _wait(pid, start + limit)
        seconds = time.monotonic() - start
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    return code, text, seconds


def _wait(pid: int, deadline: float) -> int | None:
    delay = 0.001
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status) if status >= 0 else None
        if time.monotonic() > deadline:
            os.killpg(pid, signal.SIGKILL) if _own_group(pid) else os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _own_group(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except OSError:
        return False


def _exit_code(code: int) -> int:
    """A child's exit status as a positive number (killed by signal N: 128 + N)."""
    return 128 - code if code < 0 else code


# ------------------------------------------------------------------ the grammar generator


class GrammarGen:
    """Random derivations of the spec grammar, shortest expansions past `depth`
    levels of constructs."""

    def __init__(self, rng: random.Random) -> None:
        from mmcheck.spec.parser import _lark

        lark = _lark()
        self.rng = rng
        self.rules: dict[str, list[list[tuple[str, bool]]]] = {}
        for r in lark.rules:
            self.rules.setdefault(r.origin.name, []).append(
                [(s.name, s.is_term) for s in r.expansion]
            )
        self.samplers = {t.name: _sampler(t) for t in lark.terminals if t.name not in ("WS",)}
        self.height = self._heights()
        self.names = _vocabulary_names()

    def _heights(self) -> dict[str, int]:
        """The least derivation height of each rule (terminals: 0), by fixpoint."""
        inf = 10**9
        h = dict.fromkeys(self.rules, inf)
        changed = True
        while changed:
            changed = False
            for name, alts in self.rules.items():
                best = min(
                    1 + max((0 if t else h[s] for s, t in alt), default=0) for alt in alts
                )
                if best < h[name]:
                    h[name], changed = best, True
        return h

    def spec(self, subsystem: str) -> str:
        """A header for `subsystem` (usually) and a few random items."""
        items = [self.derive("_item", self.rng.choice([2, 4, 6, 9])) for _ in range(
            self.rng.randint(1, 4))]
        if self.rng.random() < 0.9:
            items.insert(0, f'spec {subsystem} "generated"')
        return "\n".join(items) + "\n"

    def derive(self, symbol: str, depth: int) -> str:
        out: list[str] = []
        stack: list[tuple[str, bool, int]] = [(symbol, False, depth)]
        while stack:
            name, term, d = stack.pop()
            if term:
                out.append(self.terminal(name))
                continue
            alts = self.rules[name]
            if d <= 0:
                least = min(
                    max((0 if t else self.height[s] for s, t in a), default=0) for a in alts
                )
                alts = [
                    a for a in alts
                    if max((0 if t else self.height[s] for s, t in a), default=0) == least
                ]
            alt = self.rng.choice(alts)
            # Only a real construct costs depth, not a step down the precedence
            # levels (iff -> implies -> ... -> atom, a dozen unit rules).
            cost = 0 if len(alt) == 1 and not alt[0][1] else 1
            stack.extend((s, t, d - cost) for s, t in reversed(alt))
        return " ".join(out)

    def terminal(self, name: str) -> str:
        if name == "NAME":
            return self.rng.choice(self.names if self.rng.random() < 0.8 else LOCALS)
        return self.samplers[name](self.rng)


def _sampler(t) -> Callable[[random.Random], str]:  # noqa: ANN001 - a Lark TerminalDef
    """How to write one token of terminal t: its text, or a choice of its alternatives."""
    value = t.pattern.value
    if t.pattern.type == "str":
        return lambda rng: value
    fixed = {
        "INT": NUMBERS,
        "STRING": STRINGS,
        "COMMENT": ["# a comment", "#", "# é"],
        "NAME": LOCALS,
    }.get(t.name)
    if fixed is None:
        m = re.fullmatch(r"(?:\\b)?\((?:\?:)?([^()]*)\)(?:\\b)?", value)
        if m is None:
            raise ValueError(f"the fuzzer cannot write terminal {t.name} ({value}): add a sampler")
        fixed = [re.sub(r"\\(.)", r"\1", a) for a in m[1].split("|")]
    if t.name != "NAME":  # junk numbers are the mutator's business: tokens here are valid
        fixed = [v for v in fixed if re.fullmatch(value, v)]
    if not fixed:
        raise ValueError(f"no sample matches terminal {t.name} ({value})")
    return lambda rng: rng.choice(fixed)


def _vocabulary_names() -> list[str]:
    """Every name a spec may use: state, operations, records and their fields, builtins."""
    from mmcheck.checker.subsystems import registry
    from mmcheck.spec.typecheck import BUILTINS

    names = set(BUILTINS) | {"old", "raised", "ValueError", "OSError", "PageFault"}
    for sub in library_subsystems():
        vocab = registry.vocabulary(sub)
        if vocab is None:
            continue
        names |= {s.name for s in vocab.state} | {o.name for o in vocab.operations}
        for r in vocab.records:
            names |= {r.name, *(n for n, _ in r.fields)}
    return sorted(names)


def library_files() -> list[Path]:
    return sorted(LIBRARY.glob("*.mm"))


def library_subsystems() -> list[str]:
    found = []
    for f in library_files():
        m = re.search(r"^spec\s+(\w+)", f.read_text(encoding="utf-8"), re.M)
        if m and m[1] not in found:
            found.append(m[1])
    return found


# ------------------------------------------------------------------ mutation of the library

TOKEN = re.compile(r"\s+|#[^\n]*|\"(?:[^\"\\\n]|\\.)*\"|0x\w+|\w+|\*\*|<->|->|\.\.|[<>=!]=|<<|>>|.")
ITEM = re.compile(r"^(?=(?:def|invariant|action)\b)", re.M)


def tokens(text: str) -> list[str]:
    return TOKEN.findall(text)


def items(text: str) -> list[str]:
    """The items of a spec file (header first), as text."""
    return [p for p in ITEM.split(text) if p]


class Mutator:
    """Small edits of the standard library's files, each a plausible mistake or an edge."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.corpus = {f.name: f.read_text(encoding="utf-8") for f in library_files()}
        self.vocab = [t for text in self.corpus.values() for t in tokens(text) if t.strip()]

    def mutant(self) -> str:
        text = self.corpus[self.rng.choice(sorted(self.corpus))]
        for _ in range(self.rng.choice([1, 1, 2, 3, 5])):
            how = self.rng.choice(
                ["delete", "duplicate", "swap", "replace", "number", "number", "splice",
                 "truncate", "nest", "chain", "junk"]
            )
            text = getattr(self, how)(text)
        return text

    def _pick(self, toks: list[str], want: Callable[[str], bool] = str.strip) -> int | None:
        spots = [i for i, t in enumerate(toks) if want(t)]
        return self.rng.choice(spots) if spots else None

    def delete(self, text: str) -> str:
        toks = tokens(text)
        i = self._pick(toks)
        return text if i is None else "".join(toks[:i] + toks[i + 1:])

    def duplicate(self, text: str) -> str:
        toks = tokens(text)
        i = self._pick(toks)
        return text if i is None else "".join(toks[:i] + [toks[i], " "] + toks[i:])

    def swap(self, text: str) -> str:
        toks = tokens(text)
        i, j = self._pick(toks), self._pick(toks)
        if i is None or j is None:
            return text
        toks[i], toks[j] = toks[j], toks[i]
        return "".join(toks)

    def replace(self, text: str) -> str:
        toks = tokens(text)
        i = self._pick(toks)
        if i is not None:
            toks[i] = self.rng.choice(self.vocab)
        return "".join(toks)

    def number(self, text: str) -> str:
        toks = tokens(text)
        i = self._pick(toks, lambda t: t[:1].isdigit())
        if i is not None:
            toks[i] = self.rng.choice(NUMBERS)
            if self.rng.random() < 0.3:
                toks[i] = "-" + toks[i]
        return "".join(toks)

    def splice(self, text: str) -> str:
        """An item of another (or the same) file inserted, or an item dropped."""
        parts = items(text)
        other = items(self.corpus[self.rng.choice(sorted(self.corpus))])
        if len(other) > 1 and self.rng.random() < 0.7:
            parts.insert(self.rng.randint(0, len(parts)), self.rng.choice(other[1:]))
        elif len(parts) > 1:
            del parts[self.rng.randint(1, len(parts) - 1)]
        return "".join(parts)

    def truncate(self, text: str) -> str:
        return text[: self.rng.randint(0, len(text))]

    def junk(self, text: str) -> str:
        at = self.rng.randint(0, len(text))
        bit = self.rng.choice(["\x00", "\r", "\t", "\u2028", "é", "漢", "\ufeff", "{", "}", "[",
                               "'", '"', "\\", "@", "$", "`", "!", "&&", "||", "=", ";"])
        return text[:at] + bit + text[at:]

    def nest(self, text: str) -> str:
        """One property's body nested N deep (around and below the limit)."""
        parts = items(text)
        props = [i for i, p in enumerate(parts) if p.startswith(("invariant", "action"))]
        if not props:
            return text
        i = self.rng.choice(props)
        head, sep, body = parts[i].partition(":\n")
        if not sep:
            return text
        n = self.rng.choice([50, 300, 1000, 1999, 2001, 5000])
        wrap = self.rng.choice(["not", "paren", "let", "if"])
        body = body.rstrip("\n")
        if wrap == "not":
            body = "not " * (2 * (n // 2)) + f"({body})"
        elif wrap == "paren":
            body = "(" * n + body + ")" * n
        elif wrap == "let":
            body = "".join(f"let zz{k} = {k} in " for k in range(n)) + f"({body})"
        else:
            body = "if true then " * n + f"({body})" + " else false" * n
        parts[i] = head + sep + "    " + body + "\n\n"
        return "".join(parts)

    def chain(self, text: str) -> str:
        """A long chain: `and` of one body with itself, or a chain of defs."""
        n = self.rng.choice([100, 400, 1000, 1999, 2500])
        if self.rng.random() < 0.5:
            defs = "def zz0 = 1\n" + "".join(f"def zz{k} = zz{k - 1} + 1\n" for k in range(1, n))
            return text + "\n" + defs + f"invariant zz_chain: zz{n - 1} > 0\n"
        body = " and ".join(["1 + 1 == 2"] * n)
        return text + f"\ninvariant zz_and:\n    {body}\n"


def deep_case(rng: random.Random, mut: Mutator) -> str:
    """A library file with one nesting edit near the limits (the `deep` generator)."""
    text = mut.corpus[rng.choice(sorted(mut.corpus))]
    return mut.nest(text) if rng.random() < 0.6 else mut.chain(text)


# ------------------------------------------------------------------ one spec case


class States:
    """A few reference states and steps of each subsystem, drawn once (deterministic)."""

    def __init__(self, per_subsystem: int = 2, steps: int = 6) -> None:
        self.samples: dict[str, list[tuple]] = {}
        for sub in library_subsystems():
            self.samples[sub] = _draw_samples(sub, per_subsystem, steps)


def _draw_samples(subsystem: str, traces: int, steps: int) -> list[tuple]:
    """(old state, Step, new state) triples from short random traces of the reference."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from mmcheck.checker import subsystems

    driver = subsystems.driver(subsystem)
    if driver is None:
        return []
    out: list[tuple] = []

    @settings(derandomize=True, max_examples=traces, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def draw(data: st.DataObject) -> None:
        setup = data.draw(driver.setups())
        system = driver.ReferenceSystem(setup)
        view = driver.View(setup)
        try:
            for _ in range(steps):
                for op, args in driver.draw_steps(data, view):
                    old = system.snapshot()
                    step, _ = system.apply(op, args)
                    view.record(step)
                    out.append((old, step, system.snapshot()))
        finally:
            system.close()

    draw()
    # The smallest states: evaluation cost grows with the memory, paths do not.
    return sorted(out, key=lambda s: len(repr(s[2])))[:6]


def check_spec(text: str, states: States, z3: bool = False) -> int:
    """The spec pipeline on one text: OK, SPEC_ERROR (located inside the text) or an
    AssertionError/exception (a crash, printed by the caller)."""
    from mmcheck.checker.evaluate import CompiledSpec
    from mmcheck.checker.explain import explain_action, explain_invariant
    from mmcheck.spec.errors import SpecError
    from mmcheck.spec.loader import SpecErrors, check_text

    try:
        checked = check_text(text, "fuzz.mm")
    except SpecError as err:
        lines = text.split("\n")
        for e in err.errors if isinstance(err, SpecErrors) else [err]:
            assert 1 <= e.line <= len(lines), f"error outside the file: {e.render()}"
            assert 1 <= e.column <= len(lines[e.line - 1]) + 1, f"column outside: {e.render()}"
            rendered = e.render()
            assert f"fuzz.mm:{e.line}:{e.column}" in rendered, rendered
        return SPEC_ERROR
    compiled = CompiledSpec(checked)
    samples = states.samples.get(checked.subsystem, [])
    for old, step, new in samples:
        for inv in checked.spec.invariants:
            if not compiled.check_invariant(inv.name, new).holds:
                explain_invariant(compiled, inv.name, new)
        for act, fn in compiled.actions.get(step.op, []):
            verdict = compiled.check_action(
                act, fn, old, new, step.args, step.result, step.raised
            )
            if not verdict.holds:
                explain_action(compiled, act, old, new, step.args, step.result, step.raised)
    if z3 and checked.subsystem == "buddy":
        _z3_once(checked)
    return OK


def _z3_once(checked) -> None:  # noqa: ANN001 - a CheckedSpec
    """Z3's compiler and one bounded step on a 4-page buddy memory."""
    from mmcheck.checker import subsystems
    from mmcheck.checker.options import Options
    from mmcheck.checker.z3_engine import bounded_check

    system, setup, universe, exponent = subsystems.driver("buddy").symbolic_system(4)
    options = Options(engines=("z3",), depth=1, induction=False, budget=2.0)
    bounded_check([checked], system, setup, options, universe, exponent)


# ------------------------------------------------------------------ the argv fuzzer


class ArgvGen:
    """Random command lines from the CLI's real options, plus junk."""

    def __init__(self, rng: random.Random, workdir: Path) -> None:
        from mmcheck.checker.cli import _parser

        self.rng = rng
        self.work = workdir
        self.commands = _commands(_parser())
        self.files = self._files()
        self.specs = [f for f in self.files if not f.endswith((".py", ".json"))]
        self.traces = [f for f in self.files if f.endswith(".json")]

    def _files(self) -> list[str]:
        w = self.work
        (w / "dir.mm").mkdir(exist_ok=True)
        (w / "good.mm").write_text('spec buddy "x"\ninvariant a: npages > 0\n', encoding="utf-8")
        (w / "bad.mm").write_text('spec buddy\ninvariant a: npages >\n', encoding="utf-8")
        (w / "latin1.mm").write_bytes(b"spec buddy\n# caf\xe9\ninvariant a: true\n")
        (w / "empty.mm").write_text("", encoding="utf-8")
        (w / "vma.mm").write_text('spec vma\ninvariant a: true\n', encoding="utf-8")
        (w / "trace.json").write_text("{not json", encoding="utf-8")
        (w / "trace2.json").write_text('{"subsystem": "buddy", "steps": [["alloc", [99]]]}',
                                       encoding="utf-8")
        (w / "list.json").write_text("[1, 2, 3]", encoding="utf-8")
        (w / "impl.py").write_text("class BuddyAllocator:\n    def __init__(self, n, m=11):\n"
                                   "        raise RuntimeError('boom')\n", encoding="utf-8")
        (w / "syntax.py").write_text("def (:\n", encoding="utf-8")
        (w / "nothing.py").write_text("x = 1\n", encoding="utf-8")
        lib = [str(p.relative_to(REPO)) for p in library_files()]
        examples = sorted(str(p.relative_to(REPO)) for p in (REPO / "examples").rglob("*.py"))
        junk = [str(w / n) for n in ("dir.mm", "good.mm", "bad.mm", "latin1.mm", "empty.mm",
                                     "vma.mm", "trace.json", "trace2.json", "list.json",
                                     "impl.py", "syntax.py", "nothing.py")]
        missing = [str(w / "missing.mm"), "/nonexistent/x.py", "", "-", ".", "/", "/dev/null",
                   "ü.mm", "a\nb.mm", "x" * 300]
        return lib + examples[:: max(1, len(examples) // 8)] + junk + missing + self._saved()

    def _saved(self) -> list[str]:
        """Counterexample traces as `mmcheck check` saves them (one run of a buggy example)."""
        from mmcheck.checker.cli import main

        save = self.work / "saved"
        code, _, _ = run_isolated(lambda: main([
            "check", "spec/lib/buddy.mm", "--impl", "examples/buddy/buggy/double_alloc.py",
            "--budget", "10", "--save", str(save)]), 120)
        return sorted(str(p) for p in save.rglob("*.json")) if code is not None else []

    def argv(self) -> list[str]:
        rng = self.rng
        if rng.random() < 0.03:
            return [self.junk_value() for _ in range(rng.randint(1, 4))]
        command = rng.choice(["check"] * 6 + ["replay"] * 3 + ["specs", "conform", ""])
        options, _, _ = self.commands[command]
        # --help and --version print and exit: rarely worth a case.
        common = [o for o in options if o[0] not in ("--help", "--version")] or options
        out = [command] if command else []
        for i in range(rng.choice([0, 1, 1, 2, 3])):
            out.append(self.positional(command, i))
        for _ in range(rng.randint(0, 4)):
            opt, kind = rng.choice(common if rng.random() < 0.97 else options)
            if kind != "flag" and rng.random() < 0.05:
                out.append(opt + "=" + self.value(kind))
            elif kind == "flag" or rng.random() < 0.05:  # sometimes the value is missing
                out.append(opt)
            else:
                out += [opt, self.value(kind)]
        if rng.random() < 0.05:
            rng.shuffle(out)
        return self.tame(out)

    def positional(self, command: str, i: int) -> str:
        """A spec file for check, a trace (then specs) for replay, else anything."""
        rng = self.rng
        if rng.random() < 0.1:
            return self.junk_value()
        if command == "replay" and i == 0:
            return rng.choice(self.traces or self.files)
        if command in ("check", "replay"):
            return rng.choice(self.specs)
        return rng.choice(self.files)

    def value(self, kind: str | list) -> str:
        rng = self.rng
        if isinstance(kind, list):  # choices
            return rng.choice(kind + [self.junk_value()]) if rng.random() < 0.9 else "ALL"
        if kind == "int":
            return rng.choice(["0", "1", "2", "3", "-1", "-5", "64", "4096", "99999999999999999999",
                               "1e3", "0x10", "", " 3", "٣", "nan", "1.5", self.junk_value()])
        if kind == "float":
            return rng.choice(["0", "0.5", "1", "2", "-1", "nan", "inf", "-inf", "1e-9", "1e308",
                               "1e999", "", "x", "١", self.junk_value()])
        if kind == "flag":
            return ""
        return rng.choice(self.files) if rng.random() < 0.9 else self.junk_value()

    def junk_value(self) -> str:
        return self.rng.choice(["--", "-", "--budget", "--nope", "-x", "ünïcödé", "\U0001f600",
                                "a" * 1000, "--impl", "check", "specs", " ", "--format=json",
                                "%s%n", "$(true)", "'", '"'])

    def tame(self, argv: list[str]) -> list[str]:
        """Tiny work: a short budget and few steps, whatever else was drawn (a
        generous budget only makes a case slower, not a different path)."""
        if not argv or argv[0] not in ("check", "conform"):
            return argv
        out: list[str] = []
        skip = False
        for i, a in enumerate(argv):
            if skip:
                skip = False
                continue
            name = a.split("=", 1)[0]
            if name in _CAPS and "=" not in a:
                value = argv[i + 1] if i + 1 < len(argv) else ""
                out += [name, _small(name, value)]
                skip = True
            elif "=" in a and name in _CAPS:
                out.append(f"{name}={_small(name, a.split('=', 1)[1])}")
            else:
                out.append(a)
        have = {a.split("=", 1)[0] for a in out}
        for name, value in (("--budget", "1"), ("--steps", "5"), ("--traces", "2"),
                            ("--depth", "2"), ("--z3-pages", "4"), ("--ops", "20")):
            if name not in have and name in self.commands[argv[0]][2]:
                out += [name, value]
        return out


def _small(name: str, value: str) -> str:
    """value, unless it is a number too large for a quick run; then a small one."""
    try:
        v = float(value)
    except ValueError:
        return value  # junk stays junk: the CLI must refuse it cleanly
    return value if v != v or v <= _CAPS[name] else str(_CAPS[name])


# The largest value of each work option that an argv case may keep.
_CAPS = {"--budget": 2, "--steps": 10, "--traces": 3, "--depth": 3, "--max-pages": 1 << 20,
         "--z3-pages": 16, "--ops": 50}


def _commands(parser: argparse.ArgumentParser) -> dict[str, tuple]:
    """command -> (options [(flag, kind)], positional kind, option names), from argparse."""
    out: dict[str, tuple] = {}
    for action in parser._actions:  # noqa: SLF001 - argparse has no public walk
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            for name, sub in action.choices.items():
                opts, positional = [], "file"
                for a in sub._actions:  # noqa: SLF001
                    if a.option_strings:
                        opts.append((a.option_strings[-1], _kind(a)))
                names = {o for o, _ in opts}
                out[name] = (opts, positional, names)
    out[""] = ([("--version", "flag"), ("--help", "flag")], "file", set())
    return out


def _kind(a: argparse.Action) -> str | list:
    if a.nargs == 0:
        return "flag"
    if a.choices:
        return [str(c) for c in a.choices]
    if a.type is int:
        return "int"
    if a.type is float:
        return "float"
    return "file"


def check_argv(argv: list[str], text: str, code: int) -> str | None:
    """Why a command line's answer breaks the invariant, or None."""
    if code not in ALLOWED_EXITS:
        return f"exit code {code}"
    if "Traceback" in text or "internal error" in text:
        return "traceback"
    for path, line, col in re.findall(r"--> (.+?):(\d+):(\d+)$", text, re.M):
        try:
            lines = Path(path).read_text(encoding="utf-8").split("\n")
        except (OSError, UnicodeDecodeError):
            return f"an error names {path}:{line}:{col}, which cannot be read"
        if not (1 <= int(line) <= len(lines) and 1 <= int(col) <= len(lines[int(line) - 1]) + 1):
            return f"{path}:{line}:{col} is outside the file"
    return None


# ------------------------------------------------------------------ the run


def spec_cases(seed: int, n: int) -> Iterator[Case]:
    rng = random.Random(seed)
    grammar, mut = GrammarGen(rng), Mutator(rng)
    subs = library_subsystems()
    for i in range(n):
        which = "deep" if i % 10 == 9 else ("grammar", "mutation")[i % 2]
        if which == "grammar":
            yield Case("spec", which, grammar.spec(rng.choice(subs + ["nosuch"])))
        elif which == "mutation":
            yield Case("spec", which, mut.mutant())
        else:
            yield Case("spec", which, deep_case(rng, mut))


class _Hang(BaseException):
    """Raised by the alarm in a spec case past its wall-clock limit (a BaseException,
    so that no `except Exception` in mmcheck swallows it)."""


def _alarm(signum: int, frame: object) -> None:
    raise _Hang


def run_spec_case(case: Case, states: States, limit: float, z3: bool) -> Outcome:
    """One spec case in this process (a fork per case costs more than most cases),
    an interval timer on its CPU time standing guard against hangs."""
    assert isinstance(case.payload, str)
    start = time.monotonic()
    # CPU time, not wall time: a loaded machine must not turn a slow case into a "hang".
    previous = signal.signal(signal.SIGPROF, _alarm)
    signal.setitimer(signal.ITIMER_PROF, limit)
    try:
        code = check_spec(case.payload, states, z3)
    except _Hang:
        return Outcome("hang", time.monotonic() - start, f"over {limit:g} s of CPU")
    except Exception:  # noqa: BLE001 - a crash: the evidence for the report
        return Outcome("crash", time.monotonic() - start, traceback.format_exc()[-3000:])
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)
    return Outcome("ok" if code == OK else "error", time.monotonic() - start)


def run_argv_case(case: Case, limit: float, cwd: Path) -> Outcome:
    from mmcheck.checker.cli import main

    def child() -> int:
        os.setpgid(0, 0)  # its own group: a kill on a hang takes its workers too
        os.chdir(cwd)
        sys.stdin = open(os.devnull)  # noqa: SIM115 - the child exits right after
        return main(list(case.payload))

    code, text, seconds = run_isolated(child, limit)
    if code is None:
        return Outcome("hang", seconds, f"over {limit:g} s")
    why = check_argv(list(case.payload), text, _exit_code(code))
    if why:
        # keep the evidence: from the traceback on, if there is one, else the end
        found = [i for i in (text.find("Traceback"), text.find("internal error")) if i >= 0]
        shown = text[min(found):min(found) + 3000] if found else text[-3000:]
        return Outcome("crash", seconds, f"{why}: {shown}")
    return Outcome("ok" if code in (0, 1, 3) else "error", seconds, f"exit {code}")


# Budget cases: the specs and options of the command line that once crashed at --budget 1
# (session 3, not reproduced: a traceback only a stop at one moment shows).
BUDGET_SPECS = ("spec/lib/fault.mm", "spec/lib/slab.mm", "spec/lib/pagetable.mm")
BUDGET_IMPLS = ("", "examples/fault/buggy/cow_never_copies.py",
                "examples/slab/buggy/double_free.py",
                "examples/pagetable/buggy/no_tlb_flush.py")
BUDGET_EXTRAS = ((), ("--engine", "z3"), ("--engine", "all"), ("--format", "json"),
                 ("--format", "html"), ("--traces", "3"), ("--steps", "5"))


def budget_cases(seed: int, n: int) -> Iterator[Case]:
    """`check` of fault, slab and pagetable specs (all three or some, in any order)
    stopped by --budget between 0.05 and 2.5 s, so that the stop falls at every
    moment of a run: loading, searching, evaluating, shrinking, confirming."""
    rng = random.Random(seed + 2)
    for _ in range(n):
        specs = list(BUDGET_SPECS) if rng.random() < 0.5 else rng.sample(
            BUDGET_SPECS, rng.randint(1, 3))
        argv = ["check", *specs, "--budget", f"{rng.uniform(0.05, 2.5):.2f}", "--save", ""]
        impl = rng.choice(BUDGET_IMPLS)
        if impl and len(specs) == 1 and impl.split("/")[1] in specs[0]:
            argv += ["--impl", impl]
        argv += rng.choice(BUDGET_EXTRAS)
        yield Case("argv", "budget", argv)


def fuzz(seed: int, specs: int, argvs: int, limit: float = 20.0, argv_limit: float = 180.0,
         z3_every: int = 50, progress: Callable[[str], None] | None = None,
         shard: tuple[int, int] = (0, 1), budgets: int = 0, first: int = 0) -> Summary:
    """Run `specs` spec cases and `argvs` command lines from `seed`; the summary.
    With shard (k, n), only the spec cases whose index is k modulo n: n processes
    with k = 0 .. n-1 run the same cases as one. Spec cases below index `first` are
    drawn (the same cases follow) but not run: a stopped shard goes on from there."""
    summary = Summary(seed)
    start = time.monotonic()
    states = States()
    for i, case in enumerate(spec_cases(seed, specs)):
        if i % shard[1] != shard[0] or i < first:
            continue
        out = run_spec_case(case, states, limit, z3=z3_every > 0 and i % z3_every == 0)
        summary.record(case, out)
        if progress and out.status in ("crash", "hang"):
            progress(f"{out.status}: {case.short()!r}\n{out.detail[-2000:]}")
        if progress and sum(summary.cases.values()) % 250 == 0:
            progress(f"spec {i + 1}/{specs}: {dict(summary.statuses)}")
    if argvs:
        with tempfile.TemporaryDirectory(prefix="mmcheck-fuzz-") as tmp:
            gen = ArgvGen(random.Random(seed + 1), Path(tmp))
            cases = (Case("argv", "argv", gen.argv()) for _ in range(argvs))
            run_command_lines(cases, argvs, summary, argv_limit, progress, every=100)
    run_command_lines(budget_cases(seed, budgets), budgets, summary, argv_limit, progress,
                      every=50)
    summary.seconds = time.monotonic() - start
    return summary


def run_command_lines(cases: Iterator[Case], n: int, summary: Summary, limit: float,
                      progress: Callable[[str], None] | None, every: int) -> None:
    """Run `n` command-line cases into `summary`; a crash or hang is shown from its
    traceback on, and the counts every `every` cases."""
    for i, case in enumerate(cases):
        out = run_argv_case(case, limit, REPO)
        summary.record(case, out)
        bad = out.status in ("crash", "hang")
        summary.exits[out.status if bad else out.detail.split()[-1]] += 1
        if progress and bad:
            progress(f"{out.status}: {case.payload!r}\n{out.detail[:2000]}")
        if progress and (i + 1) % every == 0:
            progress(f"{case.origin} {i + 1}/{n}: {dict(summary.statuses)}")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench fuzz", description=__doc__.split("\n")[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--specs", type=int, default=10_000)
    p.add_argument("--argv", type=int, default=1_000)
    p.add_argument("--limit", type=float, default=20.0, help="CPU seconds per spec case")
    p.add_argument("--argv-limit", type=float, default=180.0,
                   help="wall-clock seconds per command line (its work is tiny, see tame)")
    p.add_argument("--shard", default="0/1", metavar="K/N",
                   help="run only the spec cases whose index is K modulo N (default 0/1: all)")
    p.add_argument("--budgets", type=int, default=0,
                   help="command lines of fault/slab/pagetable specs cut by a --budget "
                        "of 0.05 to 2.5 s (budget_cases)")
    p.add_argument("--from", dest="first", type=int, default=0, metavar="I",
                   help="draw the spec cases below index I but run only those from I on")
    p.add_argument("--out", default=str(REPO / "bench" / "fuzz-results.json"))
    args = p.parse_args(argv)
    k, n = (int(x) for x in args.shard.split("/"))
    summary = fuzz(args.seed, args.specs, args.argv, args.limit, args.argv_limit,
                   progress=lambda s: print(s, flush=True), shard=(k, n),
                   budgets=args.budgets, first=args.first)
    record = {
        "command": "python -m bench fuzz " + " ".join(sys.argv[1:] if argv is None else argv),
        "seed": summary.seed,
        "cases": dict(summary.cases),
        "statuses": dict(summary.statuses),
        "argv_exits": dict(summary.exits),
        "crashes": summary.crashes,
        "hangs": summary.hangs,
        "seconds": round(summary.seconds, 1),
        "slowest_case_seconds": {k: round(v, 2) for k, v in summary.slowest.items()},
        "seconds_by_origin": {k: round(v, 1) for k, v in summary.time_by_origin.items()},
        "failures": summary.failures[:50],
    }
    Path(args.out).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n",
                              encoding="utf-8")
    print(json.dumps({k: v for k, v in record.items() if k != "failures"}, indent=2))
    for f in summary.failures[:10]:
        print(f"--- {f['status']} ({f['origin']}): {f['payload'][:300]!r}\n{f['detail'][-1500:]}")
    return 1 if summary.crashes or summary.hangs else 0


if __name__ == "__main__":
    raise SystemExit(main())
