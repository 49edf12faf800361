# Two commands matter: `make demo` (the main job) and `make test` (the whole suite). Both install what they need.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
STACK ?= dev
PYTEST_ARGS ?=

.PHONY: demo test test-fast test-cluster lint render config-check prepare system-deps venv clean

$(STAMP): pyproject.toml requirements.lock
	@echo "==> creating $(VENV) and installing the project (pinned by requirements.lock)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --upgrade pip==25.3
	$(BIN)/pip install -q --disable-pip-version-check -c requirements.lock -e '.[dev]'
	touch $@

venv: $(STAMP)

system-deps:
	@bash .ci/install-system-packages
	@bash tests/harness/podman_setup.sh

## Fetch and build every cached artifact the suite uses (jars, distributions, host image), with progress.
prepare: system-deps venv
	$(BIN)/python -m auxip_testing.prepare

## The whole suite: static checks, unit, render/validate, integration against real servers, podman hosts.
test: prepare
	@$(BIN)/pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; rc=0; fi; exit $$rc

## The cluster tier alone: the real Pulumi engine applies the example stacks to a real kube-apiserver.
test-cluster: prepare
	$(BIN)/pytest -m cluster $(PYTEST_ARGS)

## Unit, config and render tests only: seconds, no servers, no hosts.
test-fast: venv
	$(BIN)/pytest -m "not integration and not hosts and not cluster and not slow" $(PYTEST_ARGS)

lint: venv
	$(BIN)/pytest tests/static $(PYTEST_ARGS)

## Write every Kubernetes object of STACK to build/render/STACK/ and validate them (strict schemas).
render: venv
	$(BIN)/python -m auxip_testing.render $(STACK)

## Validate every Pulumi.<stack>.yaml offline.
config-check: venv
	$(BIN)/python -c 'import sys, pathlib; from auxip_platform.infra.stack_config import load_stack_file; \
	[print(p.name, "ok:", load_stack_file(p).environment) for p in sorted(pathlib.Path(".").glob("Pulumi.*.yaml"))]'

## The main job: the whole AUXIP on its embedded defaults with a live Sentinel-1 sample feed (installs clamd as root).
demo: venv
	$(BIN)/python -m auxip_testing.demo

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
