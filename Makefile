# The two commands of README.md:
#   make run    set up and run the gateway on its embedded default configuration (config/default.toml)
#   make test   set up and run the whole test suite (lint, types, tests)
.PHONY: run test bench lint

run:
	scripts/setup.sh
	.venv/bin/ussd-gateway run

test:
	scripts/setup.sh --test
	.venv/bin/ruff check gateway tests bench
	.venv/bin/mypy
	.venv/bin/python -m pytest -q

bench:
	scripts/setup.sh --test
	.venv/bin/python -m bench

lint:
	.venv/bin/ruff check gateway tests bench
	.venv/bin/mypy
