# Two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.clvkit-installed
DEMO_OUT ?= demo-output

.PHONY: install demo test lint format bench clean browser kernels

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/clvkit demo --out $(DEMO_OUT)

lint: install
	$(BIN)/ruff check src tests benchmarks notebooks
	$(BIN)/ruff format --check src tests benchmarks notebooks

format: install
	$(BIN)/ruff format src tests benchmarks notebooks
	$(BIN)/ruff check --fix src tests benchmarks notebooks

# The report's browser test needs Chromium; install Debian's package when it is missing.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing chromium for the report's browser test"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
	    >/dev/null 2>&1 || echo "note: chromium could not be installed; the browser test will be skipped"; }

# numba checks only the source file of each cached kernel, not the files of the kernels it
# calls: after an edit, drop every cached kernel older than the newest source file.
kernels:
	@$(BIN)/python -c "import pathlib as p; s = list(p.Path('src').rglob('*.py')); \
	new = max(f.stat().st_mtime for f in s); \
	old = [f for g in ('*.nbi', '*.nbc') for f in p.Path('src').rglob(g) if f.stat().st_mtime < new]; \
	[f.unlink() for f in old]; print(f'dropped {len(old)} stale compiled kernels') if old else None"

test: install lint browser kernels
	$(BIN)/python -m pytest -n 2

bench: install
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
