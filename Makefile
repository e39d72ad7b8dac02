# Two commands do everything from a fresh clone:
#   make demo   - create .venv, install, run the demo on embedded defaults
#   make test   - create .venv, install, run every test suite
# KONORKESTRA_REQUIRE_ALL=1 (CI) turns a missing tool into a failure instead of a skip: go and
# java/mvn here; PostgreSQL, Debian's chromium and systemd-analyze in the pytest suites.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# setuptools announces every editable install of a flat layout with a boxed
# "Editable installation." note (its meta path finder maps konorkestra/, which is the
# package itself) and pip shows it even under -q; that one message is filtered.
INSTALL_QUIET := PYTHONWARNINGS="ignore:Editable installation"

.PHONY: all venv demo test lint typecheck pytest test-java test-go clean

all: test

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(INSTALL_QUIET) $(BIN)/pip install -q --no-warn-script-location -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/konorkestra demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy --strict konorkestra

pytest: $(STAMP)
	$(BIN)/pytest -q

M2  := $(CURDIR)/.cache/m2
# Readable in a log: no colour (jansi.noreset: Debian's Maven 3.8 still wrote bare reset
# codes), no download progress, warnings and errors only, except Surefire's per-class and
# summary lines ("Tests run: N, Failures: 0, ...").
MVN := MAVEN_OPTS="-Djansi.noreset=true $$MAVEN_OPTS" mvn -B -ntp -Dstyle.color=never \
       -Dmaven.repo.local=$(M2) -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
       -Dorg.slf4j.simpleLogger.log.org.apache.maven.plugin.surefire=info

# A missing toolchain is a skip locally and a failure under KONORKESTRA_REQUIRE_ALL=1.
test-java: $(STAMP)
	@if command -v java >/dev/null 2>&1 && command -v mvn >/dev/null 2>&1; then \
	  cd sdks/java && KONORKESTRA_PYTHON=$(CURDIR)/$(BIN)/python $(MVN) test; \
	elif [ "$$KONORKESTRA_REQUIRE_ALL" = 1 ]; then echo "java/mvn not found" >&2; exit 1; \
	else echo "skipping Java SDK tests: java/mvn not found"; fi

GO    ?= $(shell command -v go || echo /usr/local/go/bin/go)
GOENV := GOCACHE=$(CURDIR)/.cache/go-build GOMODCACHE=$(CURDIR)/.cache/go-mod GOTOOLCHAIN=local GOFLAGS=-mod=readonly

test-go: $(STAMP)
	@if [ -x "$(GO)" ]; then \
	  cd sdks/go && $(GOENV) $(GO) vet ./... && $(GOENV) $(GO) build ./... && \
	  $(GOENV) KONORKESTRA_PYTHON=$(CURDIR)/$(BIN)/python $(GO) test -count=1 ./...; \
	elif [ "$$KONORKESTRA_REQUIRE_ALL" = 1 ]; then echo "go: not found (Go >= 1.22 needed for sdks/go)" >&2; exit 1; \
	else echo "skipping sdks/go: go not found"; fi

test: lint typecheck pytest test-go test-java

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
