#!/usr/bin/env bash
# Gradescope autograder image set-up: Python and mmcheck (with libseccomp for
# the sandbox's seccomp layer). Zip this folder with assignment.toml, course.mm
# and hidden/ at the top level of the autograder zip (see ../README.md).
set -euo pipefail
apt-get update -q
apt-get install -y -q python3 python3-pip python3-venv libseccomp2
python3 -m venv /opt/mmcheck
/opt/mmcheck/bin/pip install -q mmcheck
