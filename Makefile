# Two commands do all set-up: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP_RUN  := $(VENV)/.installed-run
STAMP_TEST := $(VENV)/.installed-test

.PHONY: run client test lint types pytest check bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP_RUN): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[fast]'
	touch $@

$(STAMP_TEST): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[fast,test]'
	touch $@ $(STAMP_RUN)

run: $(STAMP_RUN)
	$(BIN)/chat-server $(ARGS)

client: $(STAMP_RUN)
	$(BIN)/chat-client $(ARGS)

lint: $(STAMP_TEST)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

types: $(STAMP_TEST)
	$(BIN)/mypy

pytest: $(STAMP_TEST)
	PYTHONASYNCIODEBUG=$(ASYNCIO_DEBUG) $(BIN)/pytest -q $(PYTEST_ARGS)

test: lint types pytest

check: test

bench: $(STAMP_TEST)
	$(BIN)/python -m bench.codec

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
