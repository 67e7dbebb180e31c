"""C submissions (checker/sandbox/cloader.py): built with cc, driven through ctypes.

A compile error is a submission error with the compiler's message (exit 2 on
the command line); a library exporting the buddy.h or slab.h functions shows
up as the contract's classes, with -1 read as None and a negative errno as
ValueError; a crash in C is a crash of the worker, not of the checker.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mmcheck.checker.sandbox import AuditedPages, LoadError, Submission
from mmcheck.model.buddy import BuddyAllocator

ROOT = Path(__file__).resolve().parents[2]
CACHE_C = ROOT / "examples" / "slab" / "correct" / "cache.c"
BUDDY_C = ROOT / "examples" / "buddy" / "correct" / "buddy.c"


def test_compile_error_is_a_load_error_with_the_compilers_message(tmp_path: Path) -> None:
    bad = tmp_path / "bad.c"
    bad.write_text("#include <mmcheck/buddy.h>\nlong buddy_alloc(unsigned order) { return 0 }\n")
    with pytest.raises(LoadError) as info:
        Submission.open(bad)
    assert info.value.kind == "compile"
    assert f"{bad}:2:" in str(info.value) and "error" in str(info.value)


def test_cli_reports_a_compile_error_as_a_submission_error(tmp_path: Path, mmcheck) -> None:  # noqa: ANN001
    bad = tmp_path / "cache.c"
    bad.write_text("#include <mmcheck/slab.h>\nint kmem_cache_free(struct kmem_cache *c) {\n")
    result = mmcheck("check", "--impl", str(bad))
    assert result.code == 2
    assert "did not compile" in result.err and "cache.c:" in result.err


def test_a_library_without_contract_functions_does_not_load(tmp_path: Path) -> None:
    other = tmp_path / "other.c"
    other.write_text("int unrelated(void) { return 1; }\n")
    with pytest.raises(LoadError) as info:
        Submission.open(other)
    assert "kmem_cache" in str(info.value)


def test_c_buddy_allocator_follows_the_python_contract() -> None:
    with Submission.open(BUDDY_C) as sub:
        assert list(sub.classes()) == ["BuddyAllocator"]
        h = sub.new("BuddyAllocator", 4, 3)
        assert [sub.call(h, "alloc", 1).value for _ in range(3)] == [0, 2, None]
        assert sub.call(h, "alloc", 3).exc.is_a("ValueError")  # order out of range
        assert sub.call(h, "free", 2, 1).returned
        assert sub.call(h, "free", 2, 1).exc.is_a("ValueError")  # a double free


def test_c_free_area_shows_the_free_lists_when_the_library_exports_it(tmp_path: Path) -> None:
    """buddy_free_area is optional: with it the class has free_area() (asked again
    with room when a list is longer than the first buffer); without it, none; a
    count no memory holds is a ValueError."""
    with Submission.open(BUDDY_C) as sub:
        assert "free_area" in sub.methods("BuddyAllocator")
        h = sub.new("BuddyAllocator", 130, 3)  # 32 blocks of order 2, 1 of order 1
        assert sub.call(h, "alloc", 0).value == 128  # the smallest order that fits
        assert sub.call(h, "free_area").value == [[129], [], list(range(0, 128, 4))]
        h = sub.new("BuddyAllocator", 300, 1)  # 300 blocks: more than the first buffer
        assert sub.call(h, "alloc", 0).value == 0
        assert sub.call(h, "free_area").value == [list(range(1, 300))]
    text = BUDDY_C.read_text()
    bare = tmp_path / "bare.c"
    bare.write_text(text[:text.index("long buddy_free_area")])
    with Submission.open(bare) as sub:
        assert "free_area" not in sub.methods("BuddyAllocator")
    liar = tmp_path / "liar.c"
    liar.write_text(text[:text.index("long buddy_free_area")] + "long buddy_free_area("
                    "unsigned o, unsigned long *p, unsigned long max) { return 1L << 40; }\n")
    with Submission.open(liar) as sub:
        h = sub.new("BuddyAllocator", 4, 3)
        assert sub.call(h, "free_area").exc.is_a("ValueError")


def test_c_slab_cache_takes_pages_from_the_checker() -> None:
    pages = AuditedPages(BuddyAllocator(4))
    with Submission.open(CACHE_C) as sub:
        h = sub.new("KmemCache", "c", 1000, 8, sub.export(pages))
        objs = [sub.call(h, "alloc").value for _ in range(5)]
        assert objs == [0, 1000, 2000, 3000, 4096] and pages.held == {0: 0, 1: 0}
        assert sub.call(h, "free", 1000).returned
        assert sub.call(h, "free", 1000).exc.is_a("ValueError")
        assert sub.call(h, "destroy").exc.is_a("ValueError")  # objects live
        assert sub.call(h, "slabinfo").value["num_slabs"] == 2
        for a in objs[:1] + objs[2:]:
            assert sub.call(h, "free", a).returned
        assert sub.call(h, "destroy").returned and pages.held == {}
        assert sub.call(h, "alloc").exc.is_a("ValueError")  # destroyed


def test_bad_constructor_arguments_raise_value_error() -> None:
    from mmcheck.checker.sandbox import ConstructorFailed

    pages = AuditedPages(BuddyAllocator(4))
    with Submission.open(CACHE_C) as sub:
        for size, align in ((0, 8), (8, 3), (-1, 8)):
            with pytest.raises(ConstructorFailed) as info:
                sub.new("KmemCache", "c", size, align, sub.export(pages))
            assert info.value.outcome.exc.is_a("ValueError")


def test_compiler_warnings_are_kept_for_the_students_feedback(tmp_path: Path) -> None:
    src = tmp_path / "buddy.c"
    src.write_text(BUDDY_C.read_text()
                   + "\nint warn_me(int x) { if (x = 3) return 1; return 0; }\n")
    with Submission.open(src) as sub:
        assert list(sub.classes()) == ["BuddyAllocator"]
        said = sub.build_messages
    assert f"{src}:" in said and "warning" in said and "-Wparentheses" in said
    with Submission.open(BUDDY_C) as sub:  # a clean build says nothing
        assert sub.build_messages == ""


def test_the_compiler_runs_confined(tmp_path: Path) -> None:
    """A source may #include only what the compiler's private root holds: its own
    folder's files, the contract headers and the system's; nothing else of the machine."""
    with Submission.open(ROOT / "tests" / "fixtures" / "submissions" / "buddy_ok.py") as sub:
        if "mount-ns" not in sub.layers:
            pytest.skip(f"no private root on this machine: {', '.join(sub.layers)}")
    secret = tmp_path / "elsewhere" / "secret.h"
    secret.parent.mkdir()
    secret.write_text("int secret_answer = 42;\n")
    src = tmp_path / "sub" / "buddy.c"
    src.parent.mkdir()
    src.write_text(f'#include "{secret}"\n' + BUDDY_C.read_text())
    with pytest.raises(LoadError) as info:
        Submission.open(src)
    assert info.value.kind == "compile"
    assert f"{src}:1:" in str(info.value) and "No such file or directory" in str(info.value)
    src.write_text('#include "local.h"\n' + BUDDY_C.read_text())  # its own folder: seen
    (src.parent / "local.h").write_text("int local_answer = 42;\n")
    with Submission.open(src) as sub:
        assert list(sub.classes()) == ["BuddyAllocator"]
