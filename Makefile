# changeflow — `make run` serves the demo hospital, `make test` runs the suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 5000

.PHONY: run test lint check clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## run: create .venv, install, migrate, load the demo hospital and serve it on $(HOST):$(PORT)
run: $(STAMP)
	$(BIN)/changeflow demo --host $(HOST) --port $(PORT)

## test: create .venv, install with test extras and run pytest (TEST_DATABASE_URL picks the DB)
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

check: $(STAMP)
	$(BIN)/changeflow definitions check

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache .hypothesis
