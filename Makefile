# The two commands of the README (run, test), plus the lint gate and the fast lane.
# All set up (idempotently) first.
.PHONY: run test test-fast lint setup bench
PY := .venv/bin/python
# The fast lane: no slow tests (model loading, packaging), no DLC serving stack, no Qt widgets.
FAST_MARKERS := not slow and not dlc and not gui

setup:
	bash scripts/setup.sh

run: setup
	$(PY) main.py

# The full lane, with the 15 slowest tests listed at the end.
test: setup
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest --durations=15 $(PYTEST_ARGS)

# A couple of minutes: what to run before every push.
test-fast: setup
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -m "$(FAST_MARKERS)" $(PYTEST_ARGS)

# The lint and type gate; configured in pyproject.toml ([tool.ruff], [tool.mypy]).
lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

bench: setup
	$(PY) -m bench
