# Course module: logistic regression with scikit-learn, authored with nbgrader.
# Every target builds .venv from requirements.txt on first use; a fresh machine
# needs only Python 3.11+ and make.

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
# nbgrader runs alembic as a subprocess: the venv's executables come first on PATH.
export PATH := $(BIN):$(PATH)

.PHONY: all test demo lab release data grade feedback report export benchmark clean

all: test

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -r requirements.txt
	# Build matplotlib's font cache now: its one-time notice on stderr would break nbval.
	$(BIN)/python -c "import matplotlib.pyplot"
	touch $@

# System packages, installed with apt when missing (CI runs as root on Debian):
# - nss_wrapper gives the sample students of the demo and the end-to-end test
#   their user names (nbgrader reads the student id from the OS user);
# - bubblewrap is the sandbox that student code runs in while it is graded;
# - Chromium is the browser the browser tests drive through Playwright (no download).
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
APT_INSTALL = $(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q
NSS_WRAPPER := /usr/lib/x86_64-linux-gnu/libnss_wrapper.so
BWRAP := /usr/bin/bwrap
CHROMIUM := /usr/bin/chromium

$(NSS_WRAPPER):
	ls /usr/lib/*/libnss_wrapper.so >/dev/null 2>&1 || ($(APT_INSTALL) libnss-wrapper)

$(BWRAP):
	$(APT_INSTALL) bubblewrap

$(CHROMIUM):
	$(APT_INSTALL) chromium

## test: unit, autograder, end-to-end and real-browser tests, plus nbval over source/ and notebooks/
test: $(STAMP) $(NSS_WRAPPER) $(BWRAP) $(CHROMIUM)
	$(BIN)/python -m pytest -p no:cacheprovider tests source notebooks \
		--nbval --nbval-sanitize-with tests/nbval_sanitize.cfg

## demo: regenerate the release, grade the sample students, export grades.csv
demo: $(STAMP) $(NSS_WRAPPER) $(BWRAP)
	$(BIN)/python -m course demo

# The instructor's common steps, for every assignment or ASSIGNMENT=name (python -m course COMMAND --help).
## grade: autograde submitted/ into the gradebook
## feedback: feedback HTML for every autograded student
## report: reports/<assignment>/index.html
grade feedback report: $(STAMP) $(BWRAP)
	for assignment in $${ASSIGNMENT:-$$(ls source)}; do $(BIN)/python -m course $@ $$assignment || exit 1; done

## export: the gradebook to grades.csv
export: $(STAMP)
	$(BIN)/python -m course export --to grades.csv

## benchmark: time course grade --jobs against stock nbgrader autograde (24 submissions, a few minutes)
benchmark: $(STAMP) $(BWRAP)
	$(BIN)/python benchmarks/autograde.py

## lab: open JupyterLab on the course (jupyter_server_config.py: Formgrader's Content-Security-Policy)
lab: $(STAMP)
	$(BIN)/jupyter lab --config=jupyter_server_config.py

## release: regenerate release/ from source/ (commit the result)
release: $(STAMP)
	for assignment in $$(ls source); do $(BIN)/python -m course generate $$assignment || exit 1; done

## data: regenerate the data sets and their copies in source/*/data
data: $(STAMP)
	$(BIN)/python data/make_data.py

clean:
	rm -rf $(VENV) gradebook.db submitted autograded feedback grades.csv
