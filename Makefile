# The two front-door commands: `make demo` and `make test`. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# A CPU build of this release lies on the build machines' disk; GPU users install their own torch first.
TORCH_PIN ?= torch==2.13.0

.PHONY: venv install install-test demo test test-fast check bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

venv: $(PY)
	@$(PY) -c "import torch" 2>/dev/null || $(PIP) install -q "$(TORCH_PIN)"

install: $(VENV)/.installed-all

# the editable install follows src/ by itself: pip runs again only when pyproject.toml changes
$(VENV)/.installed-all: pyproject.toml | venv
	$(PIP) install -q -e ".[all]"
	@touch $@

install-test: venv
	$(PIP) install -q -e ".[dev]"

demo: install
	$(VENV)/bin/losstopo demo --out demo-output

test: install-test
	$(PY) -m pytest -q

test-fast: install-test
	$(PY) -m pytest -q -m "not slow and not paraview and not browser"

check: install-test
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy src

bench: install-test
	$(PIP) install -q -e ".[bench]"
	$(PY) benchmarks/bench_evaluate.py
	$(PY) benchmarks/bench_side_by_side.py --always
	$(PY) benchmarks/bench_topology.py
	$(PY) benchmarks/bench_projectors.py
	$(PIP) install -q --no-deps curvlinops-for-pytorch einops einconv linear_operator opt-einsum && $(PY) benchmarks/bench_hessian.py

clean:
	rm -rf $(VENV) demo-output .pytest_cache .mypy_cache .ruff_cache
