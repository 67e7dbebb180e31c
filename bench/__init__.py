"""mmcheck's benchmark harness (not tests: nothing here asserts a timing).

`python -m bench` (or `make bench`) measures the figures of docs/benchmarks.md
and records them in bench/results.json; see bench/harness.py for the options.
"""
