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

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# ruff + mypy at the pyproject.toml config (mypy: a ratchet, see [tool.mypy]); CI runs it before the tests.
lint: $(STAMP)
	$(BIN)/ruff check flowdet tests benchmarks
	$(BIN)/mypy

clean:
	rm -rf runs build *.egg-info .pytest_cache
