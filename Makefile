# OpenTracy: `make run` and `make test` work on a fresh Debian 12 machine (as root, or with sudo).
# Every target installs what it needs first (see `deps`); `make help` lists them.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build
MAKEFLAGS += --no-builtin-rules

GO       ?= go
NPM      ?= npm
# A release tag vX.Y.Z gives X.Y.Z; otherwise 0.1.0-dev+<commit>.
VERSION  ?= $(shell v=$$(git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null) && echo "$${v\#v}" \
	|| echo "0.1.0-dev+$$(git rev-parse --short HEAD 2>/dev/null || echo unknown)")
LDFLAGS  := -X opentracy/backend/buildinfo.version=$(VERSION)
ARGS     ?=
# SQLite's full-text search (FTS5) for the trace store; every Go build and test uses the same tags.
GO_TAGS  := sqlite_fts5
BENCH_ARGS ?=

BIN          := build/bin/opentracy
SERVER_BIN   := build/bin/opentracy-server
SELFTEST_BIN := build/bin/opentracy-selftest
WAILS        := bin/wails
NFPM         := bin/nfpm
NFPM_VERSION := v2.45.2
WAILS_LOG    := build/wails-build.log

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Build tools: GTK/WebKit for the window; Xvfb, ImageMagick and xdotool for the desktop smoke test;
# Chromium for the browser end-to-end test.
APT_PACKAGES := build-essential pkg-config libgtk-3-dev libwebkit2gtk-4.0-dev \
	xvfb xauth imagemagick xdotool chromium python3

GO_SOURCES := $(shell find . -name '*.go' -not -path './frontend/*' -not -path './tools/*') go.mod go.sum
UI_SOURCES := $(shell find frontend/src frontend/public -type f 2>/dev/null) frontend/index.html \
	frontend/vite.config.ts $(wildcard frontend/tsconfig*.json) frontend/package-lock.json

.PHONY: help deps deps-apt deps-toolchain deps-go deps-npm build server ui run serve test vet go-test ui-test bench-script-test clickhouse \
	generate generate-check e2e e2e-browser e2e-desktop bench package clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

## ---- dependencies -------------------------------------------------------------------------------

deps: deps-toolchain deps-apt deps-go deps-npm $(WAILS) ## install what is missing (idempotent)

deps-toolchain:
	@command -v $(GO) >/dev/null || { echo "Go 1.26 or newer is required (https://go.dev/doc/install)"; exit 1; }
	@command -v node >/dev/null || { echo "Node.js 20.19 or newer is required"; exit 1; }
	@node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' \
		|| { echo "Node.js 20.19 or newer is required (found $$(node --version))"; exit 1; }

deps-apt:
	@missing=""; for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "apt: installing$$missing"; \
		$(SUDO) apt-get update -qq; \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

deps-go:
	@$(GO) mod download
	@$(GO) -C tools mod download

# REF_NPM holds the reference JS tokenizers and Jinja the gpu/engine golden tests compare with.
REF_NPM := gpu/engine/tokenizer/testdata/ref

deps-npm: frontend/node_modules/.installed $(REF_NPM)/node_modules/.installed

frontend/node_modules/.installed: frontend/package.json frontend/package-lock.json
	cd frontend && $(NPM) ci --no-audit --no-fund --loglevel=error
	@touch $@

$(REF_NPM)/node_modules/.installed: $(REF_NPM)/package.json $(REF_NPM)/package-lock.json
	cd $(REF_NPM) && $(NPM) ci --no-audit --no-fund --loglevel=error
	@touch $@

# The Wails CLI comes from its own module (tools/go.mod): its pinned x/tools does not build on Go 1.25+.
$(WAILS): tools/go.mod tools/go.sum
	$(GO) -C tools build -o ../$(WAILS) github.com/wailsapp/wails/v2/cmd/wails

$(NFPM):
	GOBIN=$(CURDIR)/bin $(GO) install github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)

## ---- build ---------------------------------------------------------------------------------------

ui: frontend/dist/index.html ## build the frontend into frontend/dist

frontend/dist/index.html: $(UI_SOURCES) | deps-npm
	cd frontend && $(NPM) run --silent build

build: deps $(BIN) ## build the desktop app (build/bin/opentracy)

$(BIN): $(GO_SOURCES) frontend/dist/index.html build/appicon.png wails.json | $(WAILS)
	$(WAILS) build -s -m -skipbindings -tags "$(GO_TAGS)" -ldflags "$(LDFLAGS)" -o opentracy >$(WAILS_LOG) 2>&1 \
		|| { cat $(WAILS_LOG); exit 1; }
	@echo "built $@ ($(VERSION))"

# Same binary plus the self-test hook the desktop smoke test drives (never in release builds).
$(SELFTEST_BIN): $(GO_SOURCES) frontend/dist/index.html build/appicon.png wails.json | $(WAILS)
	$(WAILS) build -s -m -skipbindings -tags "$(GO_TAGS) selftest" -ldflags "$(LDFLAGS)" -o opentracy-selftest >$(WAILS_LOG) 2>&1 \
		|| { cat $(WAILS_LOG); exit 1; }

# The same program without Wails: a headless server that needs no GTK/WebKit (about 12 MB idle
# RSS instead of 55 MB, most of that the GUI libraries' pages).
server: deps $(SERVER_BIN) ## build the headless-only server binary (build/bin/opentracy-server)

$(SERVER_BIN): $(GO_SOURCES) frontend/dist/index.html
	$(GO) build -tags $(GO_TAGS) -ldflags "$(LDFLAGS)" -o $@ .

run: build ## build and start the app (window; headless server without a display). ARGS="--addr ..." passes flags
	$(BIN) $(ARGS)

serve: build ## build and start headless: gateway, API and UI on 127.0.0.1:8787
	$(BIN) serve $(ARGS)

## ---- generated code ------------------------------------------------------------------------------

generate: deps-npm ## regenerate frontend/src/api/types.gen.ts from the Go API types
	$(GO) run ./backend/api/internal/schemagen > frontend/src/api/schema.json
	cd frontend && $(NPM) run --silent generate:types

generate-check: generate
	@git diff --exit-code -- frontend/src/api/schema.json frontend/src/api/types.gen.ts \
		|| { echo "frontend/src/api is stale: run 'make generate' and commit the result"; exit 1; }

## ---- tests ---------------------------------------------------------------------------------------

test: deps generate-check vet go-test ui-test bench-script-test e2e ## everything: vet, Go tests (race), Vitest, the GPU benchmark script's dry run, browser and desktop end-to-end

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
		[ -z "$$unformatted" ] || { echo "gofmt needed: $$unformatted"; exit 1; }
	$(GO) vet -tags $(GO_TAGS) ./...
	$(GO) vet -tags desktop,production,selftest ./app

# The ClickHouse trace store's tests run against a real server, private to this checkout: its
# config and data live in CLICKHOUSE_DIR and it listens on 127.0.0.1 only, on ports unlikely to be
# taken. go-test stops it afterwards unless it was already running when make started.
CLICKHOUSE_DIR       := build/clickhouse
CLICKHOUSE_PORT      ?= 19000
CLICKHOUSE_HTTP_PORT ?= 18123
CLICKHOUSE_ENV       := CLICKHOUSE_PORT=$(CLICKHOUSE_PORT) CLICKHOUSE_HTTP_PORT=$(CLICKHOUSE_HTTP_PORT)
CLICKHOUSE_WAS_UP    := $(shell $(CLICKHOUSE_ENV) scripts/clickhouse.sh status $(CLICKHOUSE_DIR) >/dev/null 2>&1 && echo yes)

clickhouse: ## install and start the ClickHouse server the tests use (127.0.0.1:19000, data in build/clickhouse)
	scripts/clickhouse.sh install
	$(CLICKHOUSE_ENV) scripts/clickhouse.sh start $(CLICKHOUSE_DIR)

# GoMLX's pure-Go backend converts pointers in ways the race detector's pointer checks reject;
# the checks stay on for every other package.
RACE_GCFLAGS := -gcflags='github.com/gomlx/...=-d=checkptr=0'

go-test: clickhouse
	status=0; OPENTRACY_TEST_CLICKHOUSE=127.0.0.1:$(CLICKHOUSE_PORT) $(GO) test -tags $(GO_TAGS) -race $(RACE_GCFLAGS) -count=1 ./... || status=$$?; \
	$(if $(CLICKHOUSE_WAS_UP),,$(CLICKHOUSE_ENV) scripts/clickhouse.sh stop $(CLICKHOUSE_DIR);) exit $$status

# The GPU benchmark script runs on a machine this one never is: its dry run (CPU, tiny model,
# torch stages skipped) keeps it from failing there on a typo.
bench-script-test: $(SERVER_BIN) ## dry-run gpu/bench/bench.py on the CPU with a tiny model
	@out=$$(mktemp -d) && trap 'rm -rf "$$out"' EXIT && \
	python3 gpu/bench/bench.py --dry-run --tiny --bin $(SERVER_BIN) --out "$$out" >"$$out/run.log" 2>&1 && \
	python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); \
		ok = r["logits"]["ours"]["shape"] and r["train"]["ours"]["tokens_per_s"] > 0 and r["decode"]["ours"]["tokens_per_s"] > 0; \
		sys.exit(0 if ok else 1)' "$$out/results.json" && cat "$$out/summary.txt" \
	|| { cat "$$out/run.log"; exit 1; }

ui-test: deps-npm
	cd frontend && $(NPM) run --silent typecheck && $(NPM) test

e2e: e2e-browser e2e-desktop ## browser test against `opentracy serve` and desktop smoke test under Xvfb

e2e-browser: build
	cd frontend && OPENTRACY_BIN=$(CURDIR)/$(BIN) $(NPM) run --silent e2e

e2e-desktop: deps $(SELFTEST_BIN)
	scripts/desktop-smoke.sh $(SELFTEST_BIN)

bench: deps $(SERVER_BIN) ## Go benchmarks (the trace store's over 1M traces: the first run builds a cached fixture, minutes), then the gateway harness (direct vs through the gateway); BENCH_ARGS passes flags
	$(GO) test -tags $(GO_TAGS) -run='^$$' -bench=. -benchmem ./...
	OPENTRACY_BENCH_1M=1 $(GO) test -tags $(GO_TAGS) -run='^$$' -bench='^Benchmark1M(List|Aggregate)$$' -benchtime=20x -timeout=30m ./backend/traces/sqlite/
	OPENTRACY_BENCH_1M=1 $(GO) test -tags $(GO_TAGS) -run='^$$' -bench='^Benchmark1M(Write|Ingest)$$' -benchtime=50000x -timeout=30m ./backend/traces/sqlite/
	$(SERVER_BIN) bench $(BENCH_ARGS)

## ---- packaging -----------------------------------------------------------------------------------

package: build $(NFPM) ## build a .deb into build/package/
	@mkdir -p build/package
	VERSION=$(VERSION) $(NFPM) package --config build/nfpm.yaml --packager deb --target build/package/

clean: ## remove build outputs
	rm -rf bin build/bin build/shots build/package $(WAILS_LOG) frontend/node_modules $(REF_NPM)/node_modules
	find frontend/dist -mindepth 1 -not -name .gitkeep -delete
