"""`python -m bench`: see bench/harness.py; `python -m bench fuzz`: see bench/fuzz.py;
`python -m bench z3buddy`: see bench/z3buddy.py."""

import sys

if sys.argv[1:2] == ["z3buddy"]:
    from bench.z3buddy import main as z3buddy_main

    raise SystemExit(z3buddy_main(sys.argv[2:]))

if sys.argv[1:2] == ["fuzz"]:
    from bench.fuzz import main as fuzz_main

    raise SystemExit(fuzz_main(sys.argv[2:]))

from bench.harness import main  # noqa: E402 - only when not fuzzing

raise SystemExit(main())
