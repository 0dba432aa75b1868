# The two set-up commands on a fresh machine are `make demo` and `make test`; each builds the
# virtual environment it needs. CI runs `.ci/run`, which calls `make lint` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo serve test browser lint typecheck format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)  ## the bridge on its embedded demo database
	$(BIN)/talkdesk-bridge demo $(ARGS)

serve: $(STAMP)
	$(BIN)/talkdesk-bridge serve $(ARGS)

# The console's browser tests drive Debian's chromium, never a browser build Playwright would
# download: install it when it is missing and we may (root, with apt-get); otherwise those
# tests skip and say why.
browser:
	@if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "installing chromium (Debian) for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	    || echo "chromium could not be installed: the browser tests will skip"; \
	fi

test: $(STAMP) browser  ## the whole test suite (needs PostgreSQL and MariaDB on 127.0.0.1)
	$(BIN)/python -m pytest -q $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: $(STAMP)  ## performance figures (see bench/README.md)
	$(BIN)/python -m bench $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache talkdesk-bridge-demo.db*
