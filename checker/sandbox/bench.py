"""Round-trip times through the sandbox: `python -m mmcheck.checker.sandbox.bench`.

Measures, on a throwaway submission, the per-call cost the Hypothesis engine
pays: an unbatched call returning an int, one returning a `vmas()`-sized list
of tuples, one that raises, a batched call, a call that makes one page
allocator callback, and the time to start (load) and close a worker.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from mmcheck.checker.sandbox.client import Submission

SUBMISSION = '''
class BuddyAllocator:
    def __init__(self, npages, max_order=11):
        self.next = 0

    def alloc(self, order):
        self.next += 1
        return self.next

    def vmas(self):
        return [(i << 12, (i + 1) << 12, 3, 2) for i in range(8)]

    def free(self, pfn, order):
        raise ValueError(f"free({pfn}, {order}): not allocated")


class KmemCache:
    def __init__(self, name, size, align, pages):
        self.pages = pages

    def alloc(self):
        return self.pages.alloc_pages(0) * 4096
'''


class _Pages:
    def __init__(self) -> None:
        self.next = 0

    def alloc_pages(self, order: int) -> int:
        self.next += 1
        return self.next

    def free_pages(self, pfn: int, order: int) -> None:
        return None


def _per_call(n: int, fn: Callable[[], object]) -> tuple[float, float]:
    """Microseconds per call of fn, wall clock and this process's CPU time, from
    the fastest of three runs of n calls. The CPU time is what the checker itself
    spends; the rest of the wall time is the worker and the kernel waking it."""
    best = (float("inf"), float("inf"))
    for _ in range(3):
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(n):
            fn()
        run = ((time.perf_counter() - wall) / n, (time.process_time() - cpu) / n)
        best = min(best, run)
    return best[0] * 1e6, best[1] * 1e6


def run(n: int = 5000, batch: int = 1000) -> dict[str, tuple[float, float]]:
    """(wall, checker CPU) in microseconds per call (start: per open + close)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench_submission.py"
        path.write_text(SUBMISSION)
        results = {"start + close a worker": _per_call(
            5, lambda: Submission.open(path).close()) }
        with Submission.open(path) as sub:
            buddy = sub.new("BuddyAllocator", 1024)
            cache = sub.new("KmemCache", "bench", 64, 8, sub.export(_Pages()))
            results["call -> int"] = _per_call(n, lambda: sub.call(buddy, "alloc", 0))
            results["call -> 8 vma tuples"] = _per_call(n, lambda: sub.call(buddy, "vmas"))
            results["call -> raises ValueError"] = _per_call(
                n, lambda: sub.call(buddy, "free", 1, 0))
            results["call with 1 page callback"] = _per_call(
                n // 2, lambda: sub.call(cache, "alloc"))
            items = [(buddy, "alloc", (0,))] * batch
            wall, cpu = _per_call(max(1, n // batch), lambda: sub.call_many(items))
            results[f"batched call -> int ({batch}/batch)"] = (wall / batch, cpu / batch)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5000, help="calls per measurement")
    args = parser.parse_args()
    print(f"{'':<36} {'wall':>10} {'checker CPU':>14}")
    for name, (wall, cpu) in run(args.n).items():
        print(f"{name:<36} {wall:8.1f} us {cpu:11.1f} us")


if __name__ == "__main__":
    main()
