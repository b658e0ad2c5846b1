# ispgraph developer tasks. CI runs .ci/run, which ends with `make test`.

GO ?= go
NAME ?=

.PHONY: all generate build run test vet fmt-check lint bench soak migrate-diff playground-assets

all: build

generate:
	$(GO) generate ./...

build:
	$(GO) build -o bin/ispgraph ./cmd/ispgraph

run:
	$(GO) run ./cmd/ispgraph serve

# Tests use real Postgres and Redis (internal/testenv): TEST_DATABASE_URL,
# TEST_REDIS_URL; ISPGRAPH_SKIP_DB_TESTS=1 skips them when unreachable.
test:
	$(GO) test -count=1 -p 2 -timeout 30m ./...

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(git ls-files -z -- '*.go' | xargs -0 -r gofmt -l); \
	if [ -n "$$out" ]; then echo "not gofmt-formatted:"; echo "$$out"; exit 1; fi

lint: vet fmt-check

# Seeds (or reuses) 10 tenants x 10 000 subscribers x 12 months in BENCH_DATABASE_URL
# (default postgres://postgres@127.0.0.1:5432/ispgraph_bench), starts ispgraph serve and
# the baseline, writes bench/results/<date>.md and docs/benchmarks.md.
# make bench BENCH_FLAGS="-duration 30s -clients 8,16,32"
BENCH_FLAGS ?=
bench:
	$(GO) run ./bench/cmd/bench $(BENCH_FLAGS)

# The operations soak, "an ISP day in five minutes" (docs/operations.md): builds
# ispgraph, runs serve + worker on its own database (127.0.0.1:5432) and Redis
# database 12 (127.0.0.1:6379), plays a day through the API against fake
# routers, SMTP, SMS and Stripe, checks invariants and prints a table.
# make soak SOAK_FLAGS="-duration 3m -skip dead-jobs,payments-settled"
SOAK_FLAGS ?=
soak:
	$(GO) run ./bench/soak $(SOAK_FLAGS)

# make migrate-diff NAME=add_invoice_index
migrate-diff:
	@test -n "$(NAME)" || { echo "usage: make migrate-diff NAME=<migration_name>"; exit 2; }
	$(GO) run ./cmd/ispgraph migrate diff $(NAME)

# Refreshes the GraphiQL bundle embedded in the binary (internal/playground/
# assets/vendor) from npm at the versions pinned in the script; commit the result.
playground-assets:
	internal/playground/update-assets.sh
