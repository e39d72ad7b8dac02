# Two commands do everything from a fresh clone:
#   make demo   - create .venv, install, run the demo on embedded defaults
#   make test   - create .venv, install, run every test suite
# KONORKESTRA_REQUIRE_ALL=1 turns a missing toolchain (go, java, chromium) into a failure.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: all venv demo test lint typecheck pytest test-java test-go clean

all: test

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q --no-warn-script-location -e '.[dev]'
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
MVN := mvn -B -q -Dstyle.color=never -Dmaven.repo.local=$(M2)

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
