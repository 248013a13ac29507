# One task runner. `make demo` runs the pipeline here; `make test` runs every test ring.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: venv prereqs prereqs-test services services-stop test unit wheel-check lint bench demo demo-proxy clean

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

# Java 17, Maven and cargo (and, for the tests, sshd and shellcheck): installed from
# Debian's packages when run as root, otherwise the one command that does it.
prereqs:
	scripts/dev/prereqs.sh

prereqs-test:
	scripts/dev/prereqs.sh --test

services: prereqs venv
	scripts/dev/services.sh start

services-stop:
	scripts/dev/services.sh stop

unit: venv
	$(PY) -m pytest -m unit -q

# The unit ring once in a random order (the seed is printed; rerun a failure with
# `-p randomly --randomly-seed=N`), the other rings in their fixed order, then
# the wheel as a new user gets it.
test: prereqs-test venv services
	$(PY) -m pytest -m unit -p randomly
	$(PY) -m pytest -q -m "not unit"
	scripts/dev/wheel-check.sh

wheel-check: venv
	scripts/dev/wheel-check.sh

lint: venv
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy

bench: venv services
	$(PY) benchmarks/pipeline.py --events 100000
	$(PY) benchmarks/producer_rate.py --bootstrap 127.0.0.1:9092 --pacing

demo: prereqs venv
	scripts/dev/demo.sh

# Real chat requests through gpucost-proxy to llama-server, then cost per token by tenant.
demo-proxy: prereqs venv
	scripts/dev/demo-proxy.sh

clean: services-stop
	rm -rf .services
