# The two commands of the README: `make run` and `make test`.
# uv is bootstrapped with pip when it is missing; everything else comes from uv.lock.

SHELL := /bin/bash
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")

.PHONY: run test lint vllm-test lock model seal uv clean-runs help chromium bench bench-quick bench-vllm

help:
	@echo "make run    install (uv sync) and run the default package on the embedded model"
	@echo "make test   install and run the test suite"
	@echo "make lint   ruff, mypy (harness/) and the import layering contract (import-linter)"
	@echo "make vllm-test  end to end on the CPU build of vLLM (installs it once into ~/.cache/harness)"
	@echo "make lock   regenerate uv.lock and lockfiles/harness.txt, then reseal packages"
	@echo "make model  rebuild the embedded tiny-chat model (deterministic, a few minutes on CPU)"
	@echo "make chromium  fetch headless Chromium from Debian packages into ~/.cache/harness (the report render test)"
	@echo "make bench  every performance figure of BENCHMARKS.md (about 3 minutes; bench-quick: about 1)"
	@echo "make bench-vllm  the harness against vLLM's own benchmark client on the CPU vLLM server"

uv:
	@$(UV) --version >/dev/null 2>&1 || { echo "uv not found: installing it with pip"; $(PYTHON) -m pip install --quiet --user uv || $(PYTHON) -m pip install --quiet uv; }

# Bytecode is compiled at install, as pip does by default (uv does not): every command
# then starts without compiling its imports, also where writing bytecode is disabled
# (PYTHONDONTWRITEBYTECODE, read-only installs). Once, about 45 s on 2 cores.
.venv/.synced: uv.lock pyproject.toml | uv
	$(UV) sync --frozen --compile-bytecode
	$(UV) run --frozen --no-sync python -m compileall -q harness benchmarks tools > /dev/null
	@touch $@

run: .venv/.synced
	$(UV) run --frozen --no-sync harness run

test: .venv/.synced
	$(UV) run --frozen --no-sync pytest -q

# The layering contract (docs/architecture.md) lives in pyproject.toml [tool.importlinter].
lint: .venv/.synced
	$(UV) run --frozen --no-sync ruff check harness tests tools noxfile.py benchmarks
	$(UV) run --frozen --no-sync mypy
	$(UV) run --frozen --no-sync lint-imports

lock: | uv
	$(UV) lock
	$(UV) export --frozen --no-dev --no-emit-project --format requirements-txt -o lockfiles/harness.txt --quiet
	$(MAKE) seal

seal: .venv/.synced
	for p in packages/*/; do $(UV) run --frozen --no-sync harness package seal $$p; done

vllm-test: .venv/.synced
	$(UV) run --frozen --no-sync nox -s vllm

model: .venv/.synced
	$(UV) run --frozen --no-sync python tools/build_tiny_chat.py

# The claim report's render test needs headless Chromium; the test fetches it itself when
# missing, this target does the same ahead of time (no root needed; see docs/claims.md).
chromium:
	bash tools/get_chromium.sh

bench: .venv/.synced
	$(UV) run --frozen --no-sync python benchmarks/run_all.py

bench-quick: .venv/.synced
	$(UV) run --frozen --no-sync python benchmarks/run_all.py --quick

bench-vllm: .venv/.synced
	$(UV) run --frozen --no-sync python benchmarks/vllm_compare.py
