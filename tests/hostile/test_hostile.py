"""Hostile submissions: each attack is contained, gets the right verdict, leaves
nothing running and writes nothing outside its scratch folder.

The attacks live in tests/hostile/fixtures/ (`attacker.py` tries one attack per
method and returns what it saw; the others are whole submissions); the
fault-isolation fixtures of tests/fixtures/submissions (hangs, memory hogs,
forged frames, forks...) are reused, not copied. An attack that only a missing
isolation layer would stop is skipped with the layer's name, and the terminal
summary lists the layers in force (conftest.py).
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mmcheck.checker.sandbox import ConstructorFailed, LoadError, Status, Submission

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
OLD_FIXTURES = HERE.parent / "fixtures" / "submissions"
ROOT = HERE.parents[1]


_RECORD: dict = {"layers": None, "skipped": []}


@pytest.fixture(autouse=True)
def _record(isolation: dict) -> None:  # share the conftest's record with the helpers
    global _RECORD
    _RECORD = isolation


def _open(name: str, folder: Path = FIXTURES, **kw: object) -> Submission:
    kw.setdefault("timeout_per_call", 5.0)
    sub = Submission.open(folder / name, **kw)  # type: ignore[arg-type]
    if _RECORD["layers"] is None:
        _RECORD["layers"] = sub.layers
    return sub


def _need(sub: Submission, *layers: str) -> None:
    missing = [x for x in layers if x not in sub.layers]
    if missing:
        import inspect

        who = inspect.stack()[1].function
        _RECORD["skipped"].append(f"{who}: needs {', '.join(missing)}")
        pytest.skip(f"ISOLATION LAYER NOT IN FORCE: {', '.join(missing)}")


@pytest.fixture
def attacker() -> Iterator[tuple[Submission, object]]:
    sub = _open("attacker.py")
    try:
        yield sub, sub.new("Kernel", 16)
    finally:
        sub.close()


def _members(ns: str) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            if os.readlink(entry / "ns" / "pid") == ns and state != "Z":
                found.add(int(entry.name))
        except OSError:
            continue
    return found


def _namespace(sub: Submission) -> str:
    waiter = sub.pid
    init = Path(f"/proc/{waiter}/task/{waiter}/children").read_text().split()[0]
    return os.readlink(f"/proc/{init}/ns/pid")


def _gone(ns: str, within: float = 3.0) -> bool:
    deadline = time.monotonic() + within
    while _members(ns) and time.monotonic() < deadline:
        time.sleep(0.02)
    return not _members(ns)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- what it can see and reach ------------------------------------------------------


def test_it_cannot_see_or_signal_the_checker(attacker) -> None:  # noqa: ANN001
    sub, k = attacker
    _need(sub, "pid-ns")
    received: list[int] = []
    old = {s: signal.signal(s, lambda n, f: received.append(n))
           for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        out = sub.call(k, "signal_parent")
        visible = sub.call(k, "processes").value if sub.alive else []
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    assert received == []
    assert out.status in (Status.RETURNED, Status.RAISED, Status.CRASHED)
    if out.returned:
        assert out.value[0] == 0  # its parent is outside its world
    assert os.getpid() not in visible and len(visible) <= 3


def test_it_cannot_read_files_outside_its_folder(attacker) -> None:  # noqa: ANN001
    sub, k = attacker
    _need(sub, "mount-ns")
    secrets = [ROOT / "spec" / "lib" / "buddy.mm", Path(__file__), FIXTURES / "bigint.py",
               ROOT / "checker" / "cli.py", Path("/etc/hostname"), Path("/root/.bashrc")]
    for path in secrets:
        assert sub.call(k, "read", str(path)).value[0] == "refused", path
    assert sub.call(k, "read", str(FIXTURES / "attacker.py")).value[0] == "ok"  # its own file
    assert sub.call(k, "read", "/proc/1/mem").value[0] == "refused"


def test_it_cannot_write_the_checker_or_its_output(attacker, tmp_path: Path) -> None:  # noqa: ANN001
    sub, k = attacker
    out_dir = tmp_path / ".mmcheck"
    out_dir.mkdir()
    target = ROOT / "checker" / "report.py"
    before = _digest(target)
    for path in (target, FIXTURES / "attacker.py", out_dir / "result.json"):
        assert sub.call(k, "write", str(path)).value[0] == "refused", path
    link = sub.call(k, "symlink", str(target), str(out_dir / "counterexample.json")).value
    assert link[0] == "refused"
    assert _digest(target) == before and list(out_dir.iterdir()) == []
    assert sub.call(k, "write_bytes", "own.txt", 10).value == ["ok", 10]  # its scratch works


def test_scratch_and_file_size_are_bounded(attacker) -> None:  # noqa: ANN001
    sub, k = attacker
    out = sub.call(k, "scratch", 64 << 20)
    assert out.value[0] == "refused"  # EFBIG (RLIMIT_FSIZE) or ENOSPC (the tmpfs)


def test_it_has_no_network(attacker) -> None:  # noqa: ANN001
    sub, k = attacker
    _need(sub, "net-ns")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.2)
    try:
        port = server.getsockname()[1]
        assert sub.call(k, "connect", "127.0.0.1", port).value[0] == "refused"
        with pytest.raises(TimeoutError):
            server.accept()
    finally:
        server.close()


def test_seccomp_refuses_what_namespaces_leave_open(attacker) -> None:  # noqa: ANN001
    sub, k = attacker
    _need(sub, "seccomp")
    assert sub.call(k, "listen").value[0] == "refused"
    assert sub.call(k, "unshare").value == [-1, 1]  # EPERM


def test_environment_is_minimal_and_user_is_not_the_checker(attacker) -> None:  # noqa: ANN001
    sub, k = attacker
    env = sub.call(k, "environment").value
    assert set(env) <= {"PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "PYTHONHASHSEED",
                        "PYTHONIOENCODING", "LC_CTYPE"}
    uid, euid, cwd = sub.call(k, "whoami").value
    if os.geteuid() == 0:
        assert "user nobody" in sub.layers and uid == euid == 65534
    assert not cwd.startswith(str(ROOT))


# -- processes ------------------------------------------------------------------------


def test_daemons_and_fork_bombs_die_with_the_worker(attacker) -> None:  # noqa: ANN001
    sub, k = attacker
    _need(sub, "pid-ns")
    ns = _namespace(sub)
    assert sub.call(k, "daemon").value == 1
    got, err = sub.call(k, "fork_bomb", 200).value
    assert got < 200 and err != 0  # RLIMIT_NPROC stopped it
    assert len(_members(ns)) > got  # the daemon and the bomb are alive...
    sub.close()
    assert _gone(ns)  # ...and went with the worker


def test_patched_builtins_only_break_the_submission(attacker) -> None:  # noqa: ANN001
    sub, k = attacker
    first = sub.call(k, "patch_builtins")
    second = sub.call(k, "whoami") if sub.alive else first
    assert first.status in (Status.RETURNED, Status.CRASHED)
    assert second.status in (Status.RETURNED, Status.RAISED, Status.CRASHED, Status.VIOLATION)


# -- verdicts of whole hostile submissions -----------------------------------------------


def test_huge_integers_are_violations_not_checker_crashes() -> None:
    with _open("bigint.py") as sub:
        b = sub.new("BuddyAllocator", 64)
        out = sub.call(b, "alloc", 0)
        assert out.status is Status.VIOLATION and "bits" in out.detail
        raised = sub.call(b, "free", 0, 0)
        assert raised.raised and len(raised.exc.message) <= 2100


def test_escapes_and_huge_messages_are_cleaned_and_bounded() -> None:
    with _open("escapes.py") as sub:
        b = sub.new("BuddyAllocator", 64)
        out = sub.call(b, "alloc", 0)
        freed = sub.call(b, "free", 0, 0)
        texts = [out.exc.message, out.exc.type, freed.exc.message, sub.stdout, out.describe()]
    for text in texts:
        assert "\x1b" not in text and "\x07" not in text and "\r" not in text
    assert len(out.exc.message) < 2100 and len(texts[3]) <= 4096


def test_constructor_that_raises_or_hangs() -> None:
    with _open("ctor_raises.py") as sub, pytest.raises(ConstructorFailed) as failed:
        sub.new("BuddyAllocator", 64)
    assert "\x1b" not in str(failed.value)
    with _open("ctor_hangs.py", timeout_per_call=0.5) as sub, \
            pytest.raises(ConstructorFailed) as hung:
        sub.new("BuddyAllocator", 64)
    assert hung.value.outcome.status is Status.TIMEOUT


def test_exits_are_crashes_not_passes() -> None:
    with pytest.raises(LoadError) as at_import:
        _open("exit_at_import.py")
    assert at_import.value.kind == "exit"
    with _open("os_exit_in_call.py") as sub:
        out = sub.call(sub.new("BuddyAllocator", 64), "alloc", 0)
    assert out.status is Status.CRASHED


HOSTILE_CHECKS = [  # submission, where, exit code mmcheck check must give
    ("interrupts_checker.py", FIXTURES, 1),
    ("bigint.py", FIXTURES, 1),
    ("escapes.py", FIXTURES, 1),
    ("os_exit_in_call.py", FIXTURES, 1),
    ("ctor_raises.py", FIXTURES, 2),  # a submission error: nothing could be checked
    ("exit_at_import.py", FIXTURES, 2),
    ("hang.py", OLD_FIXTURES, 1),
    ("memory_hog.py", OLD_FIXTURES, 1),
    ("forger.py", OLD_FIXTURES, 1),
]


@pytest.mark.parametrize(("name", "folder", "code"), HOSTILE_CHECKS,
                         ids=lambda v: v if isinstance(v, str) else "")
def test_mmcheck_check_convicts_hostile_submissions(mmcheck, tmp_path: Path, name: str,  # noqa: ANN001
                                                    folder: Path, code: int) -> None:
    if name == "interrupts_checker.py":  # without a PID namespace it signals everything
        with _open("bigint.py") as probe:
            _need(probe, "pid-ns")
    received: list[int] = []
    old = {s: signal.signal(s, lambda n, f: received.append(n))
           for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        result = mmcheck("check", "--impl", str(folder / name), "--traces", "25",
                         "--timeout", "0.5", "--save", str(tmp_path / "out"), cwd=tmp_path)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    assert result.code == code, result.out + result.err
    assert received == [] or "pid-ns" not in (_RECORD["layers"] or ())
    assert "\x1b" not in result.out + result.err
    assert len(result.out) < 200_000
