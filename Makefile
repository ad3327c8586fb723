# changeflow — `make run` serves the demo hospital, `make test` runs the suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 5000

.PHONY: run test lint check clean translations browser bench

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
test: $(STAMP) browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

check: $(STAMP)
	$(BIN)/changeflow definitions check

## translations: collect the page texts, merge them into the Chinese catalogue and compile it
translations: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k lazy_gettext -k N_ --no-location --sort-output \
		-o web/translations/messages.pot .
	$(BIN)/pybabel update -i web/translations/messages.pot -d web/translations -l zh_Hans_CN \
		--no-fuzzy-matching --ignore-obsolete
	$(BIN)/pybabel compile -d web/translations --statistics

## browser: install Debian's Chromium (and CJK fonts) when missing, for tests/browser
browser:
	@command -v chromium >/dev/null 2>&1 && fc-list :lang=zh | grep -q . || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		  chromium fonts-noto-cjk >/dev/null; }
	@chromium --version

## bench: generate the benchmark databases that are missing and run every benchmark (docs/BENCHMARKS.md)
bench: $(STAMP)
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache .hypothesis
