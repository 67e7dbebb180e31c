"""The slab step generator (checker/subsystems/slab.py): a destroyed cache gets every
call once, then no more steps (they would only spend the trace's budget)."""

from __future__ import annotations

from mmcheck.checker.subsystems import slab

SETUP = {"size": 32, "align": 8, "npages": 64, "debug": 0}


def run(system: slab.ReferenceSystem, view: slab.View, op: str, *args: int) -> str | None:
    """Apply one step to the reference and tell the generator; what it raised."""
    step, problem = system.apply(op, args)
    assert problem is None
    view.record(step)
    return step.raised


def test_a_destroyed_cache_gets_every_call_once_then_nothing() -> None:
    system, view = slab.ReferenceSystem(SETUP), slab.View(SETUP)
    run(system, view, "alloc")
    addr = view.live[0]
    assert run(system, view, "destroy") == "ValueError"  # live objects: not destroyed
    assert view.dead_calls is None
    run(system, view, "free", addr)
    assert run(system, view, "destroy") is None
    dead = slab.draw_steps(None, view)  # type: ignore[arg-type] - no draw once destroyed
    assert [op for op, _ in dead] == ["alloc", "free", "shrink", "destroy"]
    assert dict(dead)["free"] == (addr,)  # an object it once handed out
    assert all(run(system, view, op, *args) == "ValueError" for op, args in dead)
    assert slab.draw_steps(None, view) == []  # type: ignore[arg-type]


def test_teardown_frees_every_live_object_then_destroys() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    seen: list[list[str]] = []

    @settings(derandomize=True, max_examples=60, database=None)
    @given(st.data())
    def draw(data: st.DataObject) -> None:
        view = slab.View(SETUP)
        view.live = [0x1000, 0x1020]
        steps = slab.draw_steps(data, view)
        if ("destroy", ()) in steps:
            seen.append([op for op, _ in steps])

    draw()
    teardowns = [s for s in seen if len(s) > 1]
    assert teardowns and all(s == ["free", "free", "destroy"] for s in teardowns)
