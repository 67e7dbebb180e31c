# Everything a fresh machine with only Python and make needs: `make demo`, `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test lint bench conform clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@# setuptools announces every editable install of a package-dir layout with an
	@# "Editable installation" notice: information, not a problem with the metadata.
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The main job: the standard spec library against the reference model, then one
# buggy student allocator and the counterexample that convicts it (exit 1 expected).
demo: $(STAMP)
	$(BIN)/mmcheck check
	@echo
	@echo '--- a buggy allocator (examples/buddy/buggy/no_coalesce.py) ---'
	$(BIN)/mmcheck check --impl examples/buddy/buggy/no_coalesce.py; test $$? -eq 1
	@echo
	@echo '--- grading a course assignment (examples/assignment) ---'
	$(BIN)/mmcheck grade examples/assignment/assignment.toml examples/assignment/submissions \
		--out .mmcheck/demo-grade

# The HTML report's browser test needs chromium: installed here when missing (as root,
# with apt); where it cannot be, that test fails saying why (docs/outputs.md).
# The suite runs on one process per core, at most 4 (pytest-xdist; JOBS=1 for one
# process): tests that share a slow module/session fixture stay in one process
# (--dist loadgroup, groups set by tests/conftest.py).
JOBS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); [ $$n -gt 4 ] && n=4; echo $$n)
test: $(STAMP)
	-@command -v chromium >/dev/null || scripts/install-chromium
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(JOBS) --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python -m bench

conform: $(STAMP)
	$(BIN)/mmcheck conform --ops 20000

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .hypothesis
