# Course module: logistic regression with scikit-learn, authored with nbgrader.
# Every target builds .venv from requirements.txt on first use; a fresh machine
# needs only Python 3.11+ and make.

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
# nbgrader runs alembic as a subprocess: the venv's executables come first on PATH.
export PATH := $(BIN):$(PATH)

.PHONY: all lint test test-fast demo lab hub release data grade serve feedback report export benchmark clean postgres-server

all: test

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -r requirements.txt
	# The course's own package, editable (compat mode puts the repository on sys.path, so a folder
	# named course in the current folder cannot shadow it): `course ...` and `python -m course` work anywhere.
	PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e . \
		--config-settings editable_mode=compat
	# Build matplotlib's font cache now: its one-time notice on stderr would break nbval.
	$(BIN)/python -c "import matplotlib.pyplot"
	touch $@

# System packages, installed with apt when missing (CI runs as root on Debian):
# - nss_wrapper gives the sample students of the demo and the end-to-end test
#   their user names (nbgrader reads the student id from the OS user);
# - bubblewrap is the sandbox that student code runs in while it is graded;
# - Chromium is the browser the browser tests drive through Playwright (no download);
# - npm (with Node.js) installs axe-core, the accessibility engine the browser tests inject into
#   the pages they audit, pinned by tests/package-lock.json, into tests/node_modules;
# - PostgreSQL's server programs (initdb, pg_ctl): tests/test_postgres.py starts a throwaway server
#   of its own with them (Debian's package also sets up its default cluster, which the tests leave alone).
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
APT_INSTALL = $(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q
NSS_WRAPPER := /usr/lib/x86_64-linux-gnu/libnss_wrapper.so
BWRAP := /usr/bin/bwrap
CHROMIUM := /usr/bin/chromium
AXE := tests/node_modules/axe-core/axe.min.js
PROXY := hub/node_modules/.bin/configurable-http-proxy

$(NSS_WRAPPER):
	ls /usr/lib/*/libnss_wrapper.so >/dev/null 2>&1 || ($(APT_INSTALL) libnss-wrapper)

$(BWRAP):
	$(APT_INSTALL) bubblewrap

$(CHROMIUM):
	$(APT_INSTALL) chromium

postgres-server:
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ($(APT_INSTALL) postgresql)

$(AXE): tests/package.json tests/package-lock.json
	command -v npm >/dev/null || ($(APT_INSTALL) npm)
	cd tests && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# JupyterHub's proxy, pinned by hub/package-lock.json, into hub/node_modules (Node.js from Debian's npm).
$(PROXY): hub/package.json hub/package-lock.json
	command -v npm >/dev/null || ($(APT_INSTALL) npm)
	cd hub && npm ci --no-audit --no-fund --loglevel=error
	touch $@

## lint: ruff's lint and format checks (pyproject.toml); `ruff format .` and `ruff check --fix .` fix most
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## test: lint, then unit, autograder, end-to-end and real-browser tests, plus nbval over source/ and notebooks/
test: lint $(NSS_WRAPPER) $(BWRAP) $(CHROMIUM) $(AXE) $(PROXY) postgres-server
	$(BIN)/python -m pytest -n auto --dist loadfile --no-loadscope-reorder tests source notebooks \
		--nbval --nbval-sanitize-with tests/nbval_sanitize.cfg

## test-fast: the edit loop: unit tests and one real sandboxed grading round trip (under 2 minutes)
test-fast: $(STAMP) $(BWRAP)
	$(BIN)/python -m pytest tests -m "not slow"

## demo: the whole term on sample students, in a demo course of its own (DEMO=dir names its folder)
demo: $(STAMP) $(NSS_WRAPPER) $(BWRAP)
	$(BIN)/python -m course demo $(if $(DEMO),--to $(DEMO))

# The instructor's common steps, for every released assignment or ASSIGNMENT=name
# (python -m course COMMAND --help); assignments not released yet are named and skipped.
## grade: autograde submitted/ into the gradebook
## feedback: feedback HTML for every autograded student
## report: reports/<assignment>/index.html
grade feedback report: $(STAMP) $(BWRAP)
	assignments="$${ASSIGNMENT:-$$($(BIN)/python -m course released)}" || exit 1; \
	[ -n "$$assignments" ] || { echo "error: no assignment is released yet: python -m course release ASSIGNMENT" >&2; exit 1; }; \
	for assignment in $$assignments; do $(BIN)/python -m course $@ $$assignment || exit 1; done

## serve: keep warm grading workers for the released assignments (or ASSIGNMENT) until Ctrl-C; make grade uses them
serve: $(STAMP) $(BWRAP)
	$(BIN)/python -m course serve $${ASSIGNMENT:-$$($(BIN)/python -m course released)}

## export: the gradebook to grades.csv
export: $(STAMP)
	$(BIN)/python -m course export --to grades.csv

## benchmark: time course grade --jobs against stock nbgrader autograde (24 submissions, a few minutes)
benchmark: $(STAMP) $(BWRAP)
	$(BIN)/python -m benchmarks.autograde

## lab: open JupyterLab on the course (jupyter_server_config.py: Formgrader's Content-Security-Policy)
lab: $(STAMP)
	$(BIN)/jupyter lab --config=jupyter_server_config.py $(if $(filter 0,$(shell id -u)),--allow-root)

## hub: a real JupyterHub for the course on 127.0.0.1:8000 (as root: it makes the accounts; docs/hub.md); Ctrl-C stops it
hub: $(STAMP) $(BWRAP) $(PROXY)
	$(BIN)/python -m course hub $(if $(PORT),--port $(PORT)) $(if $(STUDENTS),--students $(STUDENTS))

## release: regenerate release/ from source/ (commit the result)
release: $(STAMP)
	for assignment in $$(ls source); do $(BIN)/python -m course generate $$assignment || exit 1; done

## data: regenerate the data sets and their copies in source/*/data
data: $(STAMP)
	$(BIN)/python data/make_data.py

## clean: remove the virtual environment, tests/ and hub/node_modules, the hub's state (.hub) and the course's grading state (gradebook, submissions, feedback, reports, grades.csv)
clean:
	rm -rf $(VENV) tests/node_modules hub/node_modules .hub gradebook.db gradebook.db.lock submitted autograded feedback reports grades.csv canvas_grades.csv .course-serve.json
