"""Runs one measurement in this (fresh) process: `python -m bench.worker NAME ARGS_JSON OUT`.

A fresh process per measurement keeps figures apart: no warm caches or
leftover garbage from an earlier run, and `ru_maxrss` is this measurement's
own peak memory. The result, with the load average before and after and the
peak memory, is written as JSON to OUT.
"""

from __future__ import annotations

import json
import os
import resource
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    name, args_json, out = argv
    from bench.figures import FIGURES

    load_before = os.getloadavg()
    result = FIGURES[name](**json.loads(args_json))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["maxrss_mib"] = usage.ru_maxrss / 1024  # Linux reports KiB
    result["cpu_s"] = usage.ru_utime + usage.ru_stime
    result["loadavg_before"] = list(load_before)
    result["loadavg_after"] = list(os.getloadavg())
    Path(out).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
