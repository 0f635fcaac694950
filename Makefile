# Two commands a newcomer needs: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.requirements-installed

.PHONY: run test fuzz lint format bench chaos clean-data

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

run: $(STAMP)  ## the whole stack on embedded Postgres/Redis (or DATABASE_URL/REDIS_URL)
	$(BIN)/python scripts/stack.py run

test: $(STAMP)  ## the whole suite against real Postgres, Redis and Celery workers
	$(BIN)/python scripts/stack.py test $(PYTEST_ARGS)

fuzz: $(STAMP)  ## schemathesis --checks all as every role, >= 2,000 cases each (make test runs >= 200)
	FUZZ_MAX_EXAMPLES=$${FUZZ_MAX_EXAMPLES:-60} FUZZ_MIN_CASES=2000 FUZZ_PHASES=examples,coverage,fuzzing,stateful \
		$(BIN)/python scripts/stack.py test tests/integration/api/test_schemathesis.py -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)  ## benchmarks: figures and ratios against baselines measured in the same run
	$(BIN)/python -m bench $(BENCH_ARGS)

chaos: $(STAMP)  ## the fault suite: outages and kills under load on its own servers (CHAOS_ARGS=--ci: the short run)
	$(BIN)/python -m tests.chaos $(CHAOS_ARGS)

clean-data:  ## forget the embedded databases and development keys
	rm -rf .data
