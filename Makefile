# precaution: set-up, demo, tests, benchmarks.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Debian packages the tests and benchmarks drive for real (installed only when missing and running as root).
DEB_PACKAGES := nmap openssh-server openssh-client lynis aide tcpdump iproute2 nftables iputils-ping sudo samba \
  prometheus systemd faketime chromium

.PHONY: all setup deps demo scan test lint bench clean schema install

all: test

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "note: missing Debian packages (not root, not installing):$$missing"; fi; \
	fi

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

setup: deps $(STAMP)

demo: setup
	@# The whole loop on loopback: a collector on SQLite, one enrolled agent, a self-inspection and a loopback
	@# network test pushed through the spool; Ctrl-C stops it. State in state/demo (a second run reuses it).
	$(BIN)/python deploy/demo.py $(DEMO_ARGS)

scan: setup
	$(BIN)/precaution scan

lint: setup
	$(BIN)/ruff check agent probes baselines collector tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

# Tests in parallel: most of them wait on processes, timers and the network rather than the CPU, so more workers
# than cores helps; tests sharing an expensive fixture stay on one worker (tests/conftest.py). TEST_WORKERS=0: serial.
TEST_WORKERS ?= 3
test: setup lint
	$(BIN)/pytest -q -ra $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadgroup)

schema: setup
	$(BIN)/python -m agent.wire.export

bench: setup
	$(BIN)/python -m bench.run

# Install for systemd: a virtualenv in $(OPT), commands in $(PREFIX)/bin, units, docs and an example
# agent.toml (never overwriting one that exists). DESTDIR stages the whole tree elsewhere.
PREFIX ?= /usr/local
OPT ?= /opt/precaution
SYSTEMD_DIR ?= /etc/systemd/system
install:
	$(PY) -m venv $(DESTDIR)$(OPT)
	$(DESTDIR)$(OPT)/bin/pip install -q --upgrade pip
	$(DESTDIR)$(OPT)/bin/pip install -q .
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/doc/precaution $(DESTDIR)$(SYSTEMD_DIR)
	ln -sf $(OPT)/bin/precaution $(DESTDIR)$(PREFIX)/bin/precaution
	ln -sf $(OPT)/bin/precaution-collector $(DESTDIR)$(PREFIX)/bin/precaution-collector
	install -m 0644 systemd/precaution-agent.service systemd/precaution-collector.service \
	  systemd/precaution-scan.service systemd/precaution-scan.timer $(DESTDIR)$(SYSTEMD_DIR)/
	install -m 0644 README.md docs/deploy.md docs/metrics.md $(DESTDIR)$(PREFIX)/share/doc/precaution/
	install -d -m 0755 $(DESTDIR)/etc/precaution
	[ -e $(DESTDIR)/etc/precaution/agent.toml ] || install -m 0644 deploy/agent.toml $(DESTDIR)/etc/precaution/agent.toml
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
	@echo "installed; enable with: systemctl enable --now precaution-agent.service"

clean:
	rm -rf $(VENV) state build *.egg-info
