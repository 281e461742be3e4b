# The two README commands: `make demo` and `make test`. Both create .venv when missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint install quick clean bench

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
	$(BIN)/python -m pip install -q -e ".[train,dev,monitor]"
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/flowdet demo --out runs/demo $(DEMO_ARGS)

quick: $(STAMP)
	$(BIN)/flowdet demo --out runs/demo-quick --quick --force

# Two pytest-xdist workers, one test file at a time each (a file's module fixtures are built once),
# files in collection order (tests/conftest.py puts the ones with slow tests first, so no worker is left
# alone with a long file at the end). `make test XDIST=` runs everything in one process.
XDIST ?= -n 2 --dist loadfile --no-loadscope-reorder
test: $(STAMP)
	$(BIN)/python -m pytest -q $(XDIST) $(PYTEST_ARGS)

# ruff + mypy at the pyproject.toml config (mypy: a ratchet, see [tool.mypy]); CI runs it before the tests.
lint: $(STAMP)
	$(BIN)/ruff check flowdet tests benchmarks
	$(BIN)/mypy

clean:
	rm -rf runs build *.egg-info .pytest_cache
