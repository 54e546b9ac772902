# One task runner. Needs only Python 3.11+ and make: everything else is installed into .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install dev test lint fix bench bench-login bench-tickets bench-bulk bench-worker bench-inbound bench-imap bench-load bench-erase clean

## uv (from PyPI, into the venv) installs the project and its tools: the same versions pip
## resolves, in about a third of pip's time on a fresh machine (26 s against 67 s), which
## `make test` counts. The .pyc files are written at install, not by four test processes
## at once. Where uv cannot be had, pip does the install.
$(STAMP): setup.cfg pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	$(PYTHON) -m venv $(VENV)
	( $(BIN)/python -m pip install --quiet uv \
	  && $(BIN)/python -m uv pip install --quiet --python $(BIN)/python --compile-bytecode -e '.[dev]' ) \
	  || $(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## Run the whole system on http://127.0.0.1:8000 (embedded PostgreSQL and Redis unless
## DATABASE_URL / REDIS_URL are set in the environment or .env).
dev: $(STAMP)
	$(BIN)/supportdesk dev

## Run the tests (embedded PostgreSQL and Redis unless TEST_DATABASE_URL / TEST_REDIS_URL),
## in PYTEST_WORKERS processes (pytest-xdist; 0 runs them in this one). Four on two cores:
## many tests wait on servers, sockets and processes they started more than they compute.
## worksteal: each process starts on a contiguous share and takes half of the busiest one's
## rest when it runs out, so a module's tests stay together and no process idles at the end.
## PYTHONDONTWRITEBYTECODE is cleared: where the environment sets it, every process (each
## test process, each `supportdesk` a test starts) compiled and rewrote every module anew.
PYTEST_WORKERS ?= 4
test: $(STAMP)
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

fix: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Benchmarks: real servers, ratios against a baseline measured in the same run.
bench: bench-login bench-tickets bench-bulk bench-worker bench-inbound bench-imap bench-load bench-erase

bench-login: $(STAMP)
	$(BIN)/python -m bench.login_timing

## Ticket creations/s over HTTP vs. raw, list latency with 1M seeded tickets, worker memory.
## A quicker run: make bench-tickets BENCH_ARGS="--tickets 100000"
bench-tickets: $(STAMP)
	$(BIN)/python -m bench.tickets $(BENCH_ARGS)

## Bulk-closing 100 tickets over HTTP (target <= 300 ms) vs. one raw UPDATE + INSERT of events,
## on 10,000 seeded tickets. More rounds: make bench-bulk BENCH_ARGS="--rounds 30"
bench-bulk: $(STAMP)
	$(BIN)/python -m bench.bulk $(BENCH_ARGS)

## Emails/s of one worker vs. a plain smtplib loop to the same sink (replies with a 200 KiB
## file and two Cc), CPU per email, commit-to-250 latency, RSS.
bench-worker: $(STAMP)
	$(BIN)/python -m bench.worker $(BENCH_ARGS)

## A quicker run: make bench-inbound BENCH_ARGS="--messages 300"
bench-inbound: $(STAMP)
	$(BIN)/python -m bench.inbound $(BENCH_ARGS)

## A company mailbox: backfill messages/s vs. bare imaplib, APPEND-to-API latency with IDLE,
## worker RSS with two mailboxes (needs Dovecot). Quicker: BENCH_ARGS="--messages 2000"
bench-imap: $(STAMP)
	$(BIN)/python -m bench.imap $(BENCH_ARGS)

## 50 users for 60 s on the whole desk (web, worker, SMTP sink) with two IMAP mailboxes at
## 5 messages/s and two webhooks (needs Dovecot); then checks nothing was lost or doubled.
bench-load: $(STAMP)
	$(BIN)/python -m bench.load $(BENCH_ARGS)

## Erasing a customer with 1,000 tickets (target <= 10 s) vs. the same changes as plain SQL.
## More rounds: make bench-erase BENCH_ARGS="--rounds 5"
bench-erase: $(STAMP)
	$(BIN)/python -m bench.erase $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
