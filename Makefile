# On a fresh machine: `make demo` (the main job), `make test` (the fast lane: every test not marked
# slow or slurm, a few minutes) and `make test-full` (the whole suite, what CI runs through .ci/run).
# `make gpu-check` (where a CUDA GPU is visible, about 8 minutes on an H100): the tests marked gpu, then the GPU
# benchmark, which writes results/bench/<gpu name>.md, and the decode workers ResNet-50 / DeiT-S need per GPU
# at those rates (results/bench/decode_<host>.md); commit them.
# Each creates .venv and installs the project into it when it is missing, at the tested releases of
# constraints.txt (pyproject.toml admits a wider range).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-full gpu-check install clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) scripts/demo.py

test: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not slurm and not gpu" --durations=10 $(PYTEST_ARGS)

test-full: $(STAMP)
	$(PY) -m pytest -q --durations=25 $(PYTEST_ARGS)

gpu-check: $(STAMP)
	$(PY) -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 'make gpu-check: no CUDA device is visible to torch')"
	$(PY) -m pytest -q -m gpu -p no:cacheprovider --durations=10 $(PYTEST_ARGS)
	$(PY) scripts/bench.py --device cuda
	$(PY) scripts/bench_decode.py --from-gpu-bench results/bench --repeats 2

clean:
	rm -rf outputs .pytest_cache
