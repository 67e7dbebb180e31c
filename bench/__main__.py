"""`python -m bench`: see bench/harness.py; `python -m bench fuzz`: see bench/fuzz.py."""

import sys

if sys.argv[1:2] == ["fuzz"]:
    from bench.fuzz import main as fuzz_main

    raise SystemExit(fuzz_main(sys.argv[2:]))

from bench.harness import main  # noqa: E402 - only when not fuzzing

raise SystemExit(main())
