# otelcol-modeldata: every set-up step lives here, so a fresh clone needs only `make run` or `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

GO            ?= go
OCB_VERSION   := v0.165.0
STATICCHECK   := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# mdatagen v0.159.0 (the newest whose output builds with core v0.165), pinned by tools/mdatagen/go.mod.
MDATAGEN      := $(CURDIR)/.tools/bin/mdatagen
TOOLS_BIN     := $(CURDIR)/.tools/bin
OCB           := $(TOOLS_BIN)/builder
BINARY        := $(CURDIR)/_build/otelcol-modeldata
AZURITE       := tools/azurite/node_modules/.bin/azurite-blob
AIDIFF        := tools/aidiff/node_modules/@azure/monitor-opentelemetry-exporter/package.json
DUCKDB        := tools/duckdb/node_modules/@duckdb/node-api/package.json
CONFIG        ?= examples/otel-config.yaml
IMAGE         ?= otelcol-modeldata:dev
# inputs per fuzz target: a count, not a duration (Go 1.26's fuzz coordinator can fail a
# duration-bounded run with "context deadline exceeded" at its deadline, go.dev/issue/75804)
FUZZTIME      ?= 20000x
BENCHTIME     ?= 2s
PKGS          := ./...
# End-to-end load/fault harness (test/e2e/harness_*_test.go, docs/benchmarks.md "End to end", docs/reliability.md).
STOCK_OCB_VERSION := v0.161.0
STOCK_OCB     := $(TOOLS_BIN)/stock/builder
STOCK_BINARY  := $(CURDIR)/_build/stock/otelcol-stock
HARNESS_TIMEOUT ?= 40m
HARNESS_RUN   ?= .
FAULTS_TIMEOUT ?= 120m

# Static binary, so the image can run from a minimal base.
export CGO_ENABLED := 0

.PHONY: all build run test cgo fuzz lint generate bench bench-e2e bench-formats bench-stats stats-reference bench-scale faults docker azurite aidiff duckdb tools clean

all: build

$(OCB):
	GOBIN=$(TOOLS_BIN) $(GO) install go.opentelemetry.io/collector/cmd/builder@$(OCB_VERSION)

$(MDATAGEN): tools/mdatagen/go.mod tools/mdatagen/go.sum
	cd tools/mdatagen && $(GO) build -o $(MDATAGEN) go.opentelemetry.io/collector/cmd/mdatagen

tools: $(OCB) $(MDATAGEN)

# Every component's metadata.yaml, and the files mdatagen makes from them.
METADATA      = $(shell git ls-files --cached --others --exclude-standard '*/metadata.yaml' | grep -v '^tools/')
GENERATED     = find $(dir $(METADATA)) \( -name 'generated_*.go' -o -name documentation.md \) -type f | sort | xargs sha256sum

## generate: regenerate each component's status, telemetry, tests and documentation.md from its metadata.yaml
generate: $(MDATAGEN)
	@for m in $(METADATA); do (cd $$(dirname $$m) && $(MDATAGEN) metadata.yaml); done

## build: assemble the collector with ocb into _build/otelcol-modeldata
build: $(OCB)
	$(OCB) --config builder-config.yaml

## run: build, then run the collector on examples/otel-config.yaml (writes ./data/modeldata/...)
run: build
	mkdir -p data
	$(BINARY) --config $(CONFIG)

## azurite: install the pinned Azurite blob emulator (npm) for the blob tests
azurite: $(AZURITE)
$(AZURITE): tools/azurite/package.json tools/azurite/package-lock.json
	npm ci --prefix tools/azurite --no-audit --no-fund --loglevel=error
	touch $@

## aidiff: install the pinned Node tool of the appinsights differential test (Microsoft's exporter)
aidiff: $(AIDIFF)
$(AIDIFF): tools/aidiff/package.json tools/aidiff/package-lock.json
	npm ci --prefix tools/aidiff --no-audit --no-fund --loglevel=error
	touch $@

## duckdb: install the pinned DuckDB (npm, engine included) that reads the exporter's files back in the tests
duckdb: $(DUCKDB)
$(DUCKDB): tools/duckdb/package.json tools/duckdb/package-lock.json
	npm ci --prefix tools/duckdb --no-audit --no-fund --loglevel=error
	touch $@

## test: everything CI runs: lint, the ocb build, unit + Azurite + end-to-end tests with -race, short fuzzing
test: lint build azurite aidiff duckdb cgo
	OTELCOL_MODELDATA_BIN=$(BINARY) CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 20m $(PKGS)
	python3 -m unittest discover -s clients/python
	$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZTIME)

# -race needs cgo, so a C compiler (Debian's gcc when none is installed and apt-get can install it).
cgo:
	@command -v gcc >/dev/null || command -v cc >/dev/null || \
	  { command -v apt-get >/dev/null && apt-get update -qq && apt-get install -y -qq gcc libc6-dev >/dev/null; } || \
	  { echo "go test -race needs a C compiler (gcc): install it"; exit 1; }

## fuzz: run every fuzz target for FUZZTIME inputs each
fuzz:
	@git grep --untracked -l '^func Fuzz' -- '*_test.go' | while read -r file; do \
	  for target in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$$file"); do \
	    echo "fuzz ./$$(dirname $$file) $$target ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) ./$$(dirname $$file); \
	  done; \
	done

## lint: generated files current, gofmt check, go vet, staticcheck
lint: $(MDATAGEN)
	@before=$$($(GENERATED)); $(MAKE) --no-print-directory generate; \
	if [ "$$before" != "$$($(GENERATED))" ]; then echo "mdatagen output was stale (now regenerated): commit it"; exit 1; fi
	@unformatted=$$(gofmt -l $$(git ls-files '*.go'; git ls-files --others --exclude-standard '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)

## bench: component benchmarks (go test -bench), longer fuzzing, then the end-to-end throughput run
bench: build azurite
	OTELCOL_MODELDATA_BIN=$(BINARY) $(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) $(PKGS)
	$(MAKE) --no-print-directory fuzz FUZZTIME=120000x
	$(MAKE) --no-print-directory bench-e2e

# The stock comparison collector (otlp -> batch -> file, upstream only): its own ocb, core/contrib v0.161.0.
$(STOCK_OCB):
	GOBIN=$(TOOLS_BIN)/stock $(GO) install go.opentelemetry.io/collector/cmd/builder@$(STOCK_OCB_VERSION)
$(STOCK_BINARY): tools/stock/builder-config.yaml | $(STOCK_OCB)
	GOFLAGS=-mod=mod $(STOCK_OCB) --config tools/stock/builder-config.yaml

## bench-e2e: end-to-end throughput of the built binary into Azurite, beside the stock otlp->batch->file route
bench-e2e: build azurite $(STOCK_BINARY)
	MODELDATA_HARNESS_FULL=1 OTELCOL_MODELDATA_BIN=$(BINARY) OTELCOL_STOCK_BIN=$(STOCK_BINARY) \
	  $(GO) test -count=1 -timeout $(HARNESS_TIMEOUT) -run 'TestHarnessThroughput/$(HARNESS_RUN)' -v ./test/e2e/

## bench-formats: the collect route into Azurite per exporter format (csv, mdc_jsonl, parquet), 3 rounds, ratios to csv (docs/benchmarks.md)
bench-formats: build azurite
	MODELDATA_HARNESS_FULL=1 OTELCOL_MODELDATA_BIN=$(BINARY) \
	  $(GO) test -count=1 -timeout $(HARNESS_TIMEOUT) -run 'TestHarnessFormatsThroughput' -v ./test/e2e/

## bench-stats: the collect route with and without the modeldatastats connector, alternating (docs/benchmarks.md)
bench-stats: build azurite
	MODELDATA_HARNESS_FULL=1 OTELCOL_MODELDATA_BIN=$(BINARY) \
	  $(GO) test -count=1 -timeout $(HARNESS_TIMEOUT) -run 'TestHarnessStatsOverhead' -v ./test/e2e/

## stats-reference: recompute the modeldatastats reference figures (wine data, numpy/scipy; Debian packages)
STATS_REFERENCE := connector/modeldatastats/testdata/wine/make_reference.py
stats-reference:
	/usr/bin/python3 -c 'import scipy, sklearn' 2>/dev/null || apt-get install -y python3-scipy python3-sklearn
	/usr/bin/python3 $(STATS_REFERENCE)
	git diff --exit-code --stat -- $(dir $(STATS_REFERENCE)) || echo "reference figures changed: review and commit"

## bench-scale: 1, 4, 8, 16 writers on one blob against Azurite: shared blob, per-writer files, Kafka layout on kfake (docs/benchmarks.md "Scale")
bench-scale: azurite
	MODELDATA_BENCH_SCALE=1 $(GO) test -count=1 -timeout $(HARNESS_TIMEOUT) -run 'TestScaleFigures' -v ./exporter/modeldatablobexporter/

## faults: full fault runs (20 random kill -9s, an aimed one, Azurite down 15 minutes, 503s, lost answers) and the hostile-input corpus, CSV and the other formats (over an hour: each outage lasts 15 minutes)
faults: build azurite
	MODELDATA_HARNESS_FULL=1 OTELCOL_MODELDATA_BIN=$(BINARY) \
	  $(GO) test -count=1 -timeout $(FAULTS_TIMEOUT) -run 'TestHarness(Fault|BadInput|Auth)' -v ./test/e2e/

## docker: build the container image (needs a Docker engine)
docker:
	docker build -t $(IMAGE) .

clean:
	rm -rf _build data
