# relops.release: the two commands a newcomer runs are `make demo` and `make test`.
# Both set everything up first (idempotently), so a fresh clone needs nothing else.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
VERSION := $(shell sed -n 's/^version: *//p' galaxy.yml)
TARBALL := build/relops-release-$(VERSION).tar.gz
COLLECTIONS := build/collections
INSTALLED := $(COLLECTIONS)/ansible_collections/relops/release/MANIFEST.json
# requirements.yml's collections, taken from the pinned ansible wheel (Galaxy is not reachable from CI).
BUNDLED := $(COLLECTIONS)/ansible_collections/community/hashi_vault/MANIFEST.json
SOURCES := $(shell git ls-files -co --exclude-standard -- galaxy.yml meta plugins roles playbooks README.md 2>/dev/null)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(BIN):$(PATH)

SOURCE_LINK := build/src/ansible_collections/relops/release

.PHONY: help setup system-packages python-packages collections install source-link demo demo-stop demo-check test unit lint sanity integration bench clean

help:
	@echo "make demo    set up, then run a governed release of the demo app on this machine"
	@echo "make test    set up, then run unit, lint, sanity and integration tests"
	@echo "make setup   system packages, .venv, Python packages, collection built and installed"
	@echo "make unit | lint | sanity | integration | bench | install | clean"

setup: system-packages python-packages collections install source-link

# demo needs fewer system packages than test; each goal sets which it needs.
PACKAGE_SET ?= test
demo: PACKAGE_SET := demo
test: PACKAGE_SET := test

system-packages:
	@bash tests/setup/system_packages.sh $(PACKAGE_SET) $(PYTHON)

python-packages: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

collections: $(BUNDLED)

$(BUNDLED): requirements.yml tests/setup/collections.txt | python-packages
	$(BIN)/python tests/setup/bundled_collections.py requirements.yml tests/setup/collections.txt build/wheels $(COLLECTIONS)
	@touch $@

install: $(INSTALLED)

$(INSTALLED): $(SOURCES) | python-packages
	@mkdir -p build
	$(BIN)/ansible-galaxy collection build --force --output-path build . >/dev/null
	@rm -rf $(COLLECTIONS)/ansible_collections/relops/release
	$(BIN)/ansible-galaxy collection install --force --offline -p $(COLLECTIONS) $(TARBALL) >/dev/null
	@echo "installed relops.release $(VERSION) into $(COLLECTIONS)"

# Unit tests and mypy import the checkout itself as ansible_collections.relops.release.
source-link:
	@mkdir -p $(dir $(SOURCE_LINK))
	@ln -sfn $(CURDIR) $(SOURCE_LINK)

# Three governed releases of examples/demo_app on this machine (README "What the demo does").
demo: setup
	@bash scripts/demo.sh

demo-stop:
	@bash scripts/demo_stop.sh

test: setup unit lint sanity integration demo-check

# The README promises that `make demo` works, and works again: run it twice as part of the
# suite, from a clean state, with its ledger in build/ so the tester's own ledger is left alone.
demo-check:
	-XDG_STATE_HOME=$(CURDIR)/build/demo-state $(MAKE) --no-print-directory demo-stop
	rm -rf $(CURDIR)/build/demo-state
	XDG_STATE_HOME=$(CURDIR)/build/demo-state $(MAKE) --no-print-directory demo
	XDG_STATE_HOME=$(CURDIR)/build/demo-state $(MAKE) --no-print-directory demo
	XDG_STATE_HOME=$(CURDIR)/build/demo-state $(MAKE) --no-print-directory demo-stop

# Two workers: the unit tests are CPU-bound and otherwise use one of the machine's two cores.
unit: source-link
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 2 tests/unit

lint: source-link
	$(BIN)/ruff check plugins tests benchmarks
	$(BIN)/mypy
	$(BIN)/ansible-lint --profile production --offline

sanity:
	bash tests/sanity/run_sanity.sh

integration: install collections
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 2 --dist loadgroup --durations=50 tests/integration

bench: setup
	@for script in benchmarks/*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
