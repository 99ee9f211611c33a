# The two commands of the README. Both set up (idempotently) first.
.PHONY: run test setup bench
PY := .venv/bin/python

setup:
	bash scripts/setup.sh

run: setup
	$(PY) main.py

test: setup
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest $(PYTEST_ARGS)

bench: setup
	$(PY) -m bench
