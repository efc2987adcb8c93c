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

# The Python that will run the service: the venv's once it exists.
RUN_PYTHON = $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON))

run: ## serve the API on $$HOST:$$PORT (default 0.0.0.0:8000)
	@$(RUN_PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "make run: jimeng-api needs Python 3.11 or newer, and $(RUN_PYTHON) is $$(command -v $(RUN_PYTHON) >/dev/null && $(RUN_PYTHON) -V 2>&1 || echo 'not installed')." >&2; \
	  echo "  Debian 12: sudo apt-get install python3 python3-venv; elsewhere: make run PYTHON=python3.11" >&2; \
	  echo "  (an old .venv? rm -rf $(VENV) first)" >&2; exit 1; }
	@$(RUN_PYTHON) -c 'import ensurepip, venv' 2>/dev/null || test -x $(BIN)/python || { \
	  echo "make run: $(PYTHON) cannot create a venv. Debian/Ubuntu: sudo apt-get install python3-venv" >&2; exit 1; }
	@$(MAKE) --no-print-directory $(VENV)/.runtime
	$(BIN)/gunicorn -c gunicorn.conf.py

test: $(VENV)/.dev ## lint, then run the whole test suite
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

demo: $(VENV)/.runtime ## offline: the simulator (realistic ~20 s tasks) on :8001, the API on :8000
	$(BIN)/python -m simulator --host 127.0.0.1 --port 8001 \
	  --duration-model lognormal --task-seconds 20 --queue-seconds 4 & \
	  SIM=$$!; trap "kill $$SIM" EXIT INT TERM; \
	  DEMO_MODE=true JIMENG_BASE_URL=http://127.0.0.1:8001 IMAGE_FETCH_ALLOWED_HOSTS=127.0.0.1 \
	  $(BIN)/gunicorn -c gunicorn.conf.py

bench: $(VENV)/.dev ## the four scenarios of bench/, short (~11 min); reports in bench/results/
	$(BIN)/python -m bench all

fuzz: $(VENV)/.dev ## long property-based fuzzing of every endpoint
	HYPOTHESIS_PROFILE=long $(BIN)/python -m pytest -q tests/test_fuzz.py

lint: $(VENV)/.dev
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(VENV)/.dev
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache
