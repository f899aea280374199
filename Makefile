# On a fresh machine: `make demo` (the main job), `make test` (the fast lane: every test not marked
# slow or slurm, a few minutes) and `make test-full` (the whole suite, what CI runs through .ci/run).
# Each creates .venv and installs the project into it when it is missing, at the tested releases of
# constraints.txt (pyproject.toml admits a wider range).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-full install clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) scripts/demo.py

test: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not slurm" --durations=10 $(PYTEST_ARGS)

test-full: $(STAMP)
	$(PY) -m pytest -q --durations=25 $(PYTEST_ARGS)

clean:
	rm -rf outputs .pytest_cache
