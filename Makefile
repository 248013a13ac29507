# One task runner. `make demo` runs the pipeline here; `make test` runs every test ring.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: venv services services-stop test unit lint bench demo demo-proxy clean

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

services: venv
	scripts/dev/services.sh start

services-stop:
	scripts/dev/services.sh stop

unit: venv
	$(PY) -m pytest -m unit -q

test: venv services
	$(PY) -m pytest -q

lint: venv
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy

bench: venv services
	$(PY) benchmarks/pipeline.py --events 100000
	$(PY) benchmarks/producer_rate.py --bootstrap 127.0.0.1:9092 --pacing

demo: venv
	scripts/dev/demo.sh

# Real chat requests through gpucost-proxy to llama-server, then cost per token by tenant.
demo-proxy: venv
	scripts/dev/demo-proxy.sh

clean: services-stop
	rm -rf .services
