"""The confined side of compiling a C submission (`python -m` this module).

cloader.compile_library starts it with a JSON job on stdin: the confinement plan
(confine.plan_for: the staged sources and contract headers bound read-only in a
private root, a writable /tmp), the rlimits, and the compiler's command line. It
confines itself exactly as a sandbox worker does (confine.enter: namespaces, no
network, seccomp, user nobody or no capabilities) and lowers its rlimits
(worker.apply_limits), runs the compiler inside, and answers with one JSON object
on stdout: the compiler's exit status and messages, the layers in force, and the
built library (base64), which the parent writes into its cache. The compiler
sees the sources, the headers and the system's toolchain, nothing of the checker.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

from mmcheck.checker.sandbox import confine
from mmcheck.checker.sandbox.worker import apply_limits

OUTPUT = "submission.so"
MAX_OUTPUT_BYTES = 64 << 20


def build(job: dict) -> dict:
    """Confine this process, run the compiler on the staged sources; what it said."""
    plan = job["plan"]
    try:
        layers = confine.enter(plan, ())
    except (confine.Unavailable, OSError) as e:  # never compile half-confined
        return {"error": f"cannot confine the C compiler: {e}"}
    limits = dict(job["limits"])
    if not ("pid-ns" in layers or "user nobody" in layers):
        limits["nproc"] = None  # it would count every process of the checker's user
    apply_limits(limits)
    layers.append("rlimits")
    src = plan.get("placed", {}).get(plan["binds"][0][1]) or plan["staged"]
    cmd = [arg.replace("{src}", src) for arg in job["cmd"]] + ["-o", OUTPUT]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=job["timeout"], check=False, errors="replace")
    except subprocess.TimeoutExpired:
        return {"timeout": True, "layers": layers}
    except OSError as e:
        return {"error": f"the C compiler could not run: {e}", "layers": layers}
    answer = {"rc": proc.returncode, "messages": (proc.stderr or proc.stdout),
              "src": src, "layers": layers}
    if proc.returncode == 0:
        size = os.path.getsize(OUTPUT)
        if size > MAX_OUTPUT_BYTES:
            return {"error": f"the library is larger than {MAX_OUTPUT_BYTES >> 20} MiB"}
        with open(OUTPUT, "rb") as f:
            answer["library"] = base64.b64encode(f.read()).decode()
    return answer


def main() -> None:
    job = json.loads(sys.stdin.read())
    answer = build(job)
    sys.stdout.write(json.dumps(answer))
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
