# The two commands: `make run` (serve on :8000) and `make test` (the whole suite).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: run test demo bench fuzz lint format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

run: $(VENV)/.runtime ## serve the API on $$HOST:$$PORT (default 0.0.0.0:8000)
	$(BIN)/gunicorn -c gunicorn.conf.py

test: $(VENV)/.dev ## lint, then run the whole test suite
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

demo: $(VENV)/.runtime ## offline: the simulator on :8001 and the API on :8000 pointed at it
	$(BIN)/python -m simulator --host 127.0.0.1 --port 8001 --task-seconds 5 & \
	  SIM=$$!; trap "kill $$SIM" EXIT INT TERM; \
	  JIMENG_BASE_URL=http://127.0.0.1:8001 IMAGE_FETCH_ALLOWED_HOSTS=127.0.0.1 \
	  $(BIN)/gunicorn -c gunicorn.conf.py

bench: $(VENV)/.dev ## benchmark against the simulator; writes bench/results.json
	$(BIN)/python bench/bench.py

fuzz: $(VENV)/.dev ## long property-based fuzzing of every endpoint
	HYPOTHESIS_PROFILE=long $(BIN)/python -m pytest -q tests/test_fuzz.py

lint: $(VENV)/.dev
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(VENV)/.dev
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache
