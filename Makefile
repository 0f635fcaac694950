# Two commands a newcomer needs: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.requirements-installed

.PHONY: run test test-prerequisites fuzz lint format bench chaos clean-data

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

run: $(STAMP)  ## the whole stack on embedded Postgres/Redis (or DATABASE_URL/REDIS_URL)
	$(BIN)/python scripts/stack.py run

test: $(STAMP) test-prerequisites  ## the whole suite against real Postgres, Redis and Celery workers
	$(BIN)/python scripts/stack.py test $(PYTEST_ARGS)

# What the suite needs beyond Python: Debian's oathtool, the standard TOTP implementation the MFA
# tests check our codes against. Installed with apt-get when missing (as root, or with sudo -n).
test-prerequisites:
	@command -v oathtool >/dev/null || { \
	  echo "installing oathtool (Debian package; the MFA tests compare codes with it)"; \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo "sudo -n"); \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q oathtool >/dev/null 2>&1 || { \
	    $$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null && \
	    $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q oathtool >/dev/null; }; }
	@command -v oathtool >/dev/null || { echo "oathtool is missing: apt-get install oathtool" >&2; exit 1; }

fuzz: $(STAMP)  ## schemathesis --checks all as every role, >= 2,000 cases each (make test runs >= 200)
	FUZZ_MAX_EXAMPLES=$${FUZZ_MAX_EXAMPLES:-60} FUZZ_MIN_CASES=2000 FUZZ_PHASES=examples,coverage,fuzzing,stateful \
		$(BIN)/python scripts/stack.py test tests/integration/api/test_schemathesis.py -q $(PYTEST_ARGS)

lint: $(STAMP)  ## ruff, the layer contracts (.importlinter) and the unit-of-work rule (no commit/rollback outside it)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/python scripts/check_no_commit.py

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)  ## benchmarks: figures and ratios against baselines measured in the same run
	$(BIN)/python -m bench $(BENCH_ARGS)

chaos: $(STAMP)  ## the fault suite: outages and kills under load on its own servers (CHAOS_ARGS=--ci: the short run)
	$(BIN)/python -m tests.chaos $(CHAOS_ARGS)

clean-data:  ## forget the embedded databases and development keys
	rm -rf .data
