"""Grading a course's submissions: `mmcheck grade ASSIGNMENT.toml SUBMISSION...`.

    assignment.py   the assignment file (TOML): specs, rubric, effort (work), limits
    score.py        one submission: an independent search per rubric item -> Grade
    feedback.py     Gradescope / PrairieLearn results, CSV and JSON tables, feedback pages
    batch.py        many submissions: discovery, process pool or Dask, resuming, progress
    store.py        atomic writes that never follow a symlink

The worked example is examples/assignment/ (`make demo` grades it).
"""
