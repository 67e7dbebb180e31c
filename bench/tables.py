"""The recorded figures (bench/results.json) as markdown tables, for the terminal and the docs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _num(v: Any, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.{digits}g}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(c if isinstance(c, str) else _num(c) for c in r) + " |")
    return lines


def _header(title: str, fig: dict[str, Any], runs: str = "") -> list[str]:
    loads = [r["loadavg_before"][0] for r in fig.get("runs", []) if "loadavg_before" in r]
    load = f"{min(loads):.2f}..{max(loads):.2f}" if loads else "-"
    runs = runs or f"{fig.get('config', {}).get('repeat', '?')} run(s) each, median"
    quick = ", QUICK settings" if fig.get("quick") else ""
    return [f"### {title}", "",
            f"commit {fig.get('commit')}, {fig.get('date')}, {runs}, "
            f"1-min load average {load}{quick}", ""]


def _ratios(s: dict[str, Any]) -> str:
    """`32% (runs: 33%, 22%)`: the ratio of the medians, then each repetition's own."""
    if not s.get("ratio"):
        return "-"
    each = ", ".join(f"{r:.0%}" for r in s.get("ratio_per_rep", []))
    return f"{s['ratio']:.0%}" + (f" (runs: {each})" if each else "")


def _steps(fig: dict[str, Any]) -> list[str]:
    cfg = fig["config"]
    rows = []
    for npages, s in fig["summary"].items():
        cpu = (f"{s['checked_steps_per_cpu_s']:,.0f} / {s['bare_steps_per_cpu_s']:,.0f} = "
               f"{s['ratio_cpu']:.0%}" if s.get("ratio_cpu") else "-")
        share = f"{s['cpu_share']:.0%}" if s.get("cpu_share") else "-"
        rows.append([f"{int(npages):,}", s["checked_steps_per_s"], s["bare_steps_per_s"],
                     _ratios(s), cpu, share,
                     s.get("checked_maxrss_mib"), s.get("bare_maxrss_mib"),
                     ", ".join(s.get("violations", [])) or "none"])
    return _header(f"Step rate: checked vs bare ({cfg['steps_budget']:g} s per run)", fig) + _table(
        ["pages", "checked steps/s", "bare steps/s", "checked/bare",
         "per CPU second: checked / bare", "CPU got", "peak RSS checked (MiB)",
         "peak RSS bare (MiB)", "violations"], rows)


def _counterexamples(fig: dict[str, Any]) -> list[str]:
    cfg = fig["config"]
    rows = []
    for name, s in fig["summary"].items():
        errors = "; ".join(s.get("errors", []))
        rows.append([name, s.get("first_found_s"), s.get("cli_s"), s.get("property") or "-",
                     s.get("trace_len"), ", ".join(str(c) for c in s.get("rc", [])),
                     ", ".join(s.get("all_found", [])) + (f" ERROR {errors}" if errors else "")])
    return _header(f"Time to first counterexample (mmcheck check --impl ... --budget "
                   f"{cfg['cx_budget']:g})", fig) + _table(
        ["example", "first found (s)", "CLI done (s)", "first property", "trace length", "exit",
         "all violations reported"], rows)


def _z3(fig: dict[str, Any]) -> list[str]:
    cfg = fig["config"]
    rows = []
    for depth, s in fig["summary"].items():
        if s["outcome"] == "done":
            t = f"{_num(s['elapsed_s'])} (CPU {_num(s.get('cpu_s'))})"
        elif s["outcome"] == "skipped":
            t = f"skipped ({s['why']})"
        elif s["outcome"] == "timeout":
            reached = ", ".join(str(d) if d is not None and d >= 0 else "none"
                                for d in s.get("depth_reached", []))
            t = (f"timeout (> {cfg['z3_timeout']:g} s; CPU {_num(s.get('cpu_s'))} s; "
                 f"deepest depth cleared: {reached or '-'}{_per_depth(s)})")
        else:
            t = "error: " + "; ".join(s.get("errors", []))[:200]
        rows.append([depth, t, ", ".join(s.get("verdicts", [])) or "-"])
    title = f"Z3 bounded model checking, {cfg['z3_pages']} pages, induction off"
    return _header(title, fig) + _table(["depth", "time (s)", "verdict"], rows)


def _per_depth(s: dict[str, Any]) -> str:
    """`; depth 0 in 2.4 s, 1 in 5.3 s` from the first run's own timings."""
    runs = [r for r in s.get("per_depth_s", []) if r]
    if not runs:
        return ""
    return "; depth " + ", ".join(f"{d} in {_num(t)} s" for d, t in runs[0])


def _induction(fig: dict[str, Any]) -> list[str]:
    cfg = fig["config"]
    rows = []
    for npages, s in fig["summary"].items():
        if npages == "largest_proved":
            continue
        rows.append([npages, "yes" if s["proved"] else "no", s.get("elapsed_s"), s.get("cpu_s"),
                     ", ".join(str(v)[:120] for v in s.get("verdicts", [])),
                     "; ".join(s.get("notes", []))[:200]])
    largest = fig["summary"].get("largest_proved")
    return _header(f"k-induction within {cfg['induction_timeout']:g} s (depth "
                   f"{cfg['induction_depth']}): largest memory proved = "
                   f"{largest if largest is not None else 'none'} pages", fig) + _table(
        ["pages", "proved", "time (s)", "CPU (s)", "verdicts", "note"], rows)


def _sandbox(fig: dict[str, Any]) -> list[str]:
    rows = [[name, s["wall_us"], s["cpu_us"]] for name, s in fig["summary"].items()]
    return _header("Sandbox round trip per call", fig) + _table(
        ["call", "wall (us)", "checker CPU (us)"], rows)


def _profile(fig: dict[str, Any]) -> list[str]:
    cfg = fig["config"]
    out = _header(f"Where the time goes: the checked run, {cfg['profile_budget']:g} s", fig,
                  "one stopwatch run and one cProfile run per size")
    for npages, s in fig["summary"].items():
        out += [f"#### {int(npages):,} pages", ""] + _one_profile(s) + [""]
    return out


def _breakdown(b: dict[str, Any]) -> list[str]:
    if "error" in b:
        return [f"(no breakdown: {b['error']})"]
    total = b["total_s"]
    rows = [[c["what"], c["calls"], c["seconds"], f"{c['seconds'] / total:.0%}",
             c["seconds"] / c["calls"] * 1e6 if c["calls"] else None] for c in b["costs"]]
    spent = sum(c["seconds"] for c in b["costs"])
    rows.append(["(the rest: Hypothesis, drawing steps, the engine)", "", total - spent,
                 f"{(total - spent) / total:.0%}", None])
    run = b.get("run", {})
    head = f"Stopwatch per property: {run.get('steps', '?')} steps in {_num(total)} s"
    return [head, ""] + _table(["what", "calls", "seconds", "share", "us per call"], rows)


def _one_profile(s: dict[str, Any]) -> list[str]:
    out = _breakdown(s["breakdown"]) + [""] if "breakdown" in s else []
    if "error" in s:
        return out + [f"(no profile: {s['error']})"]
    total = s["profiled_s"]
    run = s.get("run", {})
    out += [f"cProfile: {run.get('steps', '?')} steps in {_num(total)} s under the profiler; "
            f"shares are of the whole engine run (own time: in the function itself; "
            f"cumulative: with callees)", ""]
    out += _table(["area (own time)", "share"],
                  [[a, f"{t / total:.0%}"] for a, t in s["by_area"][:8]])
    out += [""] + _table(["function (own time)", "calls", "own s", "share"],
                         [[r["where"], r["calls"], r["tottime_s"], f"{r['tottime_s'] / total:.0%}"]
                          for r in s["by_tottime"][:10]])
    out += [""] + _table(["mmcheck function (cumulative)", "calls", "cum s", "share"],
                         [[r["where"], r["calls"], r["cumtime_s"], f"{r['cumtime_s'] / total:.0%}"]
                          for r in s["by_cumtime_mmcheck"][:10]])
    return out


RENDER = {
    "steps": _steps,
    "counterexamples": _counterexamples,
    "z3": _z3,
    "induction": _induction,
    "sandbox": _sandbox,
    "profile": _profile,
}


def render(results: dict[str, Any], only: Sequence[str] | None = None) -> str:
    """Every recorded figure (or those in `only`) with the environment they ran in."""
    env = results.get("environment", {})
    lines = [f"Python {env.get('python', '?')}, z3 {env.get('z3', '?')}, hypothesis "
             f"{env.get('hypothesis', '?')}, {env.get('cpus', '?')} CPUs, "
             f"{env.get('platform', '?')}", ""]
    for name, fig in results.get("figures", {}).items():
        if only is not None and name not in only:
            continue
        try:
            lines += RENDER[name](fig) + [""]
        except (KeyError, TypeError) as err:  # a results file from an older harness
            lines += [f"### {name}: cannot render ({err!r})", ""]
    return "\n".join(lines)
