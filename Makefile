# The two commands: `make run` (serve on :8000) and `make test` (the whole suite).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: run test demo bench fuzz lint lock format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The locks are hash-checked: pip refuses any file whose sha256 is not in them.
# requirements-dev.txt holds the runtime set too, at the same versions and hashes.
$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.txt
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

# pip-audit looks every pinned package up in PyPI's vulnerability data (its JSON
# API). --strict: a package it could not look up fails the lint, as a vulnerability
# does; offline (or behind a mirror without that API) run `make lint AUDIT=0`.
AUDIT ?= 1
PIP_AUDIT = $(BIN)/pip-audit --strict --disable-pip --require-hashes --progress-spinner off \
	-r requirements.txt -r requirements-dev.txt

lint: $(VENV)/.dev ## ruff, then pip-audit of the locks (needs PyPI; offline: make lint AUDIT=0)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .
ifeq ($(AUDIT),0)
	@echo "make lint: AUDIT=0, pip-audit skipped: the pinned packages were NOT checked for known vulnerabilities" >&2
else
	@$(PIP_AUDIT) || { echo "make lint: pip-audit failed: a known vulnerability (above), or a package it could not look up on PyPI (offline: make lint AUDIT=0)" >&2; exit 1; }
endif

# `make lock`: requirements.txt and requirements-dev.txt from requirements.in and
# requirements-dev.in (the hand-edited top-level pins): every dependency pinned,
# with the sha256 of every file of its version (any platform, Python 3.11+, the
# markers kept). uv runs from a throwaway venv; needs PyPI. Versions already in
# the locks stay: LOCK_ARGS=--upgrade-package=NAME moves one, --upgrade all.
UV_VERSION = 0.13.9
LOCK_ARGS ?=
LOCK = "$$tools/bin/uv" pip compile --quiet --no-config --universal --python-version 3.11 \
	--generate-hashes --custom-compile-command "make lock" $(LOCK_ARGS)

lock: ## regenerate the hashed locks requirements.txt and requirements-dev.txt (needs PyPI)
	@tools=$$(mktemp -d) && trap 'rm -rf "$$tools"' EXIT && \
	  $(PYTHON) -m venv "$$tools" && "$$tools/bin/pip" install --quiet uv==$(UV_VERSION) && \
	  $(LOCK) requirements.in -o requirements.txt && \
	  $(LOCK) requirements-dev.in -o requirements-dev.txt
	@echo "make lock: requirements.txt and requirements-dev.txt regenerated (review: git diff)"

format: $(VENV)/.dev
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache
