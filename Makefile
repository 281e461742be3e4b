# The two README commands: `make demo` and `make test`. Both create .venv when missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install quick clean bench

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

clean:
	rm -rf runs build *.egg-info .pytest_cache
