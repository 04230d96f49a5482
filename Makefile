# tollgate — see README.md. `make run` and `make test` are the quick start.
GO      ?= go
GOBIN   := $(shell $(GO) env GOPATH)/bin
export PATH := $(GOBIN):$(PATH)

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
STRIPE_MOCK_VERSION := v0.203.0
GOLANGCI_LINT_VERSION := v2.15.0
IMAGE   ?= ghcr.io/tollgate-pdp/tollgate
# The packages of the Go modules tied by go.work: the root (what client users import), bench/ and
# deploy/, which keep their heavy dependencies (Prometheus, Kubernetes types) out of the root
# module's graph. From the root, ./... covers the root module only.
PKGS    := ./... ./bench/... ./deploy/...

.PHONY: run run-fleet build test test-clients test-python test-opa-sdk fleet-test tools lint lint-tools docs bench bench-compare bench-scale fmt image deploy-check chaos fuzz fuzz-short soak

## run: start the sidecar on its embedded defaults with the demo data set
run:
	$(GO) run -ldflags '$(LDFLAGS)' ./cmd/tollgate serve --demo --data-dir ./data/demo --admin-token demo-admin-token

## run-fleet: a local fleet: embedded NATS JetStream (dev tool only) and three sidecars on 8181, 8281, 8381 with the demo data
run-fleet: build
	$(GO) run ./cmd/tollgate-fleetdemo --tollgate bin/tollgate --data-dir ./data/fleet

## build: a static binary in bin/
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/tollgate ./cmd/tollgate

## tools: what the tests need beyond Go modules (stripe-mock serves the Stripe API on loopback)
tools:
	@command -v stripe-mock >/dev/null 2>&1 || $(GO) install github.com/stripe/stripe-mock@$(STRIPE_MOCK_VERSION)

## test: lint, the race-enabled test suite of every module, the Rego tests through the opa CLI,
## the Python client and OPA's TypeScript SDK against a real sidecar, and the short fuzz runs
# The database import tests need a PostgreSQL: TOLLGATE_TEST_POSTGRES_URL when set, else a
# throwaway cluster that scripts/pg-test-cluster.sh starts for the run (when initdb exists).
test: tools lint
	scripts/pg-test-cluster.sh run $(GO) test -race -count=1 -timeout 15m $(PKGS)
	$(GO) run github.com/open-policy-agent/opa test policy/rego
	$(MAKE) test-clients
	$(MAKE) fuzz-short

# The client tests start `tollgate serve --demo` from this binary on free loopback ports.
PYTHON          ?= python3
CLIENT_TEST_BIN := $(CURDIR)/bin/tollgate-client-test
OPA_SDK_DIR     := clients/opa-sdk-test

## test-clients: the Python client's tests and OPA's TypeScript SDK against a real sidecar
test-clients: test-python test-opa-sdk

$(CLIENT_TEST_BIN): FORCE
	$(GO) build -o $@ ./cmd/tollgate

## test-python: clients/python's unittest suite (python3 >= 3.9, standard library only)
test-python: $(CLIENT_TEST_BIN)
	cd clients/python && TOLLGATE_BIN=$(CLIENT_TEST_BIN) PYTHONPATH=src $(PYTHON) -m unittest discover -s tests -t .

## test-opa-sdk: OPA's TypeScript SDK (npm, node >= 20) asking with just the request
test-opa-sdk: $(CLIENT_TEST_BIN) $(OPA_SDK_DIR)/node_modules/.package-lock.json
	cd $(OPA_SDK_DIR) && TOLLGATE_BIN=$(CLIENT_TEST_BIN) node --test

# npm ci again only when the lock file changed since the last install.
$(OPA_SDK_DIR)/node_modules/.package-lock.json: $(OPA_SDK_DIR)/package-lock.json
	cd $(OPA_SDK_DIR) && npm ci --no-audit --no-fund

FORCE:

## fleet-test: only the fleet suites, with the race detector: embedded JetStream (one node and an R3 cluster), real sidecars, kill -9 of a fleet child
# make test runs all of these too; this target is for working on the fleet alone.
fleet-test:
	$(GO) test -race -count=1 -timeout 20m ./fleet/... ./cache/
	$(GO) test -race -count=1 -timeout 10m -run 'TestFleet' ./cmd/tollgate

# Fuzz targets, as "package:target:inputs": go test -fuzz takes one package and one target at a
# time. inputs is the short run's input count (seed corpus included), about 3 s of each target
# here.
FUZZ_TARGETS := ./api:FuzzFastCheckDecoder:3000 ./api:FuzzDataAPI:600 ./cmd/tollgate:FuzzCatalogYAML:400 \
	.:FuzzDecodeImportRow:30000 ./sync:FuzzWebhook:400
FUZZTIME ?= 2m

## fuzz-short: every fuzz target for a fixed number of inputs (part of make test)
# Counts, not durations: with -fuzztime as a duration, Go 1.26's fuzz coordinator can fail a
# target with "context deadline exceeded" when the time runs out (golang/go#75804, fixed in Go
# 1.27); a count never sets that deadline.
fuzz-short:
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; rest=$${t#*:}; fn=$${rest%%:*}; n=$${rest##*:}; \
		echo "fuzz $$fn ($$pkg) $${n} inputs"; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $${n}x -fuzzminimizetime 100x $$pkg || exit 1; done

## fuzz: every fuzz target for FUZZTIME (default 2m); new crashers land in <pkg>/testdata/fuzz/<target>/ — commit them with the fix
# A target that ends with "context deadline exceeded" and writes no crasher hit the Go bug above.
fuzz:
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; rest=$${t#*:}; fn=$${rest%%:*}; \
		echo "fuzz $$fn ($$pkg) $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 10s $$pkg || exit 1; done

## chaos: the long forms of the fault suites: 100 kill -9 trials, disk-full, policy reloads, hostile input, security
CHAOS_TRIALS ?= 100
chaos:
	TOLLGATE_CHAOS_TRIALS=$(CHAOS_TRIALS) TOLLGATE_POLICY_RELOADS=1000 $(GO) test -race -count=1 -timeout 60m -v \
		-run 'TestChaos|TestDiskFull|TestServeRefuses|TestPolicyReload|TestHostile|TestSecrets|TestBackup|TestDecisionListener' ./cmd/tollgate

## soak: SOAK_DURATION (default 10m) of mixed load on a child `tollgate serve`; table in bench/results/soak.md
SOAK_DURATION ?= 10m
soak:
	TOLLGATE_SOAK=$(SOAK_DURATION) TOLLGATE_SOAK_OUT=$(CURDIR)/bench/results/soak.md $(GO) test -count=1 -timeout 0 -v -run '^TestSoak$$' ./cmd/tollgate

## lint-tools: golangci-lint at the pinned version (go install; building it takes minutes once)
lint-tools:
	@golangci-lint version 2>/dev/null | grep -q 'version $(GOLANGCI_LINT_VERSION:v%=%) ' || \
		$(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

## lint: gofmt, go vet, golangci-lint (.golangci.yml) on every module, and the generated docs up to date
lint: lint-tools
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	golangci-lint run $(PKGS)
	$(GO) run ./cmd/tollgate docs --check docs/configuration.md

## docs: regenerate the flag tables of docs/configuration.md from the commands
docs:
	$(GO) run ./cmd/tollgate docs docs/configuration.md

## bench: in-process and loopback HTTP decision benchmarks (numbers go to BENCHMARKS.md)
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./policy/ ./api/ ./cache/

## bench-compare: tollgate vs opa run --server vs a constant fiber handler, same policy and data (bench/results/compare.md)
bench-compare:
	$(GO) run ./bench/cmd/compare

## bench-scale: cold start, memory, latency and durable writes at 10k/100k/1M vendors (bench/results/scale.md)
bench-scale:
	$(GO) run ./bench/cmd/scale

fmt:
	gofmt -w $$(git ls-files '*.go')

## image: the container image (needs a Docker engine; CI builds the same binary in deploy-check)
image:
	docker build -f deploy/Dockerfile --build-arg VERSION=$(VERSION) -t $(IMAGE):$(VERSION) .

## deploy-check: offline validation of deploy/ (binary + smoke, kustomize, helm, strict decoding, rules, dashboard)
deploy-check:
	VERSION=$(VERSION) bash deploy/check.sh
