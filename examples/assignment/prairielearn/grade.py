"""PrairieLearn external grader for the buddy lab.

PrairieLearn mounts the student's files at /grade/student and the course's
grader files (this folder, with assignment.toml, course.mm and hidden/) at
/grade/tests and /grade/serverFilesCourse, and reads /grade/results/results.json.
In infoAssessment/question info.json:

    "externalGradingOptions": {
        "enabled": true, "image": "<an image with mmcheck>",
        "serverFilesCourse": ["buddy_lab/"],
        "entrypoint": "python3 /grade/serverFilesCourse/buddy_lab/prairielearn/grade.py"}
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from mmcheck.checker.grade.assignment import load
from mmcheck.checker.grade.feedback import prairielearn
from mmcheck.checker.grade.score import grade

HERE = Path(__file__).resolve().parent.parent
STUDENT = Path("/grade/student")
RESULTS = Path("/grade/results/results.json")


def main(student: Path = STUDENT, results: Path = RESULTS) -> int:
    files = sorted(student.glob("*.py"))
    if len(files) == 1:
        submission = files[0]
    else:
        submission = student  # a package (with __init__.py) or nothing loadable
    with tempfile.TemporaryDirectory() as out:
        data = prairielearn(grade(load(HERE / "assignment.toml"), submission, "student",
                                  Path(out)))
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(data, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(*(Path(a) for a in sys.argv[1:3])))
