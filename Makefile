# The two commands of README.md:
#   make run    set up and run the gateway on its embedded default configuration (config/default.toml)
#   make test   set up and run the whole test suite (lint, types, tests)
#   make fuzz   run every fuzz harness for FUZZ_SECONDS (default 60) each, 2 at a time (fuzz/README.md)
.PHONY: run test bench lint fuzz

run:
	scripts/setup.sh
	.venv/bin/ussd-gateway run

test:
	scripts/setup.sh --test
	.venv/bin/ruff check gateway tests bench fuzz
	.venv/bin/mypy
	.venv/bin/python -m pytest -q

bench:
	scripts/setup.sh --test
	.venv/bin/python -m bench

lint:
	.venv/bin/ruff check gateway tests bench fuzz
	.venv/bin/mypy

# Prints the executions per harness and in total; fails when a harness found a crash or a failed check (the input
# is in fuzz/artifacts/<harness>/: move it to fuzz/crashers/<harness>/ once fixed, see fuzz/README.md).
FUZZ_SECONDS ?= 60
FUZZ_JOBS ?= 2
fuzz:
	scripts/setup.sh --test
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_JOBS=$(FUZZ_JOBS) .venv/bin/python -m fuzz.run
