# raftkv: the two commands a newcomer needs are `make run` and `make test`.
GO ?= go
PKGS ?= ./...

.PHONY: run demo test bench bench-compare bench-life bench-memory fuzz-http sim nemesis lint fmt build

## run: start a local 3-member cluster on 127.0.0.1 and print how to talk to it (Ctrl-C stops it)
run:
	$(GO) run ./cmd/raftkv cluster --size 3

## demo: a short simulated 3-member cluster under faults, told as a story
demo:
	$(GO) run ./cmd/raftkv sim --seed 1 --members 3 --duration 10s --verbose

## test: vet, then every test with a bounded simulation campaign (CI runs this)
## The campaigns run on a fresh range of seeds each time (SIM_FIRST=N replays one).
## (The nine digits are read after a leading 1 and the 1 taken off again: read alone, digits
## starting with 0 are octal to the shell, and 08 or 09 would leave SIM_FIRST empty.)
SIM_FIRST ?= $(shell echo $$(( 1$$(date +%s%N | cut -c8-16) - 900000000 )))
SIM_FIRST := $(SIM_FIRST)
test:
	@echo "simulation campaigns start at seed $(SIM_FIRST) (replay: SIM_FIRST=$(SIM_FIRST) make test)"
	$(GO) vet $(PKGS)
	$(GO) vet -tags lifetrace ./internal/... ./server ./rpc ./cmd/raftkv
	RAFTKV_SIM_FIRST=$(SIM_FIRST) $(GO) test -count=1 -timeout 20m $(PKGS)

## bench: every benchmark once, with allocations
bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

## bench-compare: raftkv and etcd (v2 API) side by side, 3 members each on 127.0.0.1, writes and
## linearizable reads at 1/16/64/256 clients, and the ratio table (DURATION per run, ROUNDS per pair;
## ETCD=path picks an etcd binary, else etcd on PATH, else Debian's etcd-server is installed)
DURATION ?= 5s
ROUNDS ?= 1
COMPARE_CLIENTS ?= 1,16,64,256
bench-compare:
	$(GO) run ./benchmarks/compare -duration $(DURATION) -rounds $(ROUNDS) -clients $(COMPARE_CLIENTS) $(COMPARE_FLAGS)

## bench-life: one client writing to a local raftkv cluster built with the lifetrace tag, every write
## followed through the three processes: the offset of each stage (request read, append sent, received,
## fsynced, acknowledged, applied, answered) from the request's read, on the leader and on a follower
bench-life:
	$(GO) run ./benchmarks/compare -life -duration $(DURATION) -rounds $(ROUNDS) $(COMPARE_FLAGS)

## bench-memory: raftkv and etcd (v2 API) in turn, 3 members each, filled with KEYS keys (16-byte paths,
## 64-byte values) through the API; every member's RSS once settled and after MEMORY_IDLE, and the ratios
KEYS ?= 1000000
MEMORY_IDLE ?= 30s
bench-memory:
	$(GO) run ./benchmarks/compare -memory $(KEYS) -memory-idle $(MEMORY_IDLE) $(COMPARE_FLAGS)

## fuzz-http: fuzz the client API's fast-path request parser against net/http's for FUZZTIME inputs,
## then its form decoder against ParseForm for FORM_FUZZTIME (about 5 minutes each on a 2-core
## machine); their seeds and saved failures run in `make test`, and CI (.ci/run) fuzzes them for
## about a minute and 30 s after it. Counts, not durations: go1.26's fuzzer can fail a run that ends
## on a -fuzztime deadline with "context deadline exceeded" and no input (go.dev/issue/75804, fixed
## in go1.27). FUZZ_MINIMIZE bounds the shrinking of each new input (go's default, 60 s, spent most
## of a 30 s run shrinking one long form body: the fuzzer ran nothing else meanwhile)
FUZZTIME ?= 3000000x
FORM_FUZZTIME ?= 2400000x
FUZZ_MINIMIZE ?= 2s
fuzz-http:
	$(GO) test ./rpc/ -run '^$$' -fuzz '^FuzzFastPathParse$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZ_MINIMIZE)
	$(GO) test ./rpc/ -run '^$$' -fuzz '^FuzzKeyForm$$' -fuzztime $(FORM_FUZZTIME) -fuzzminimizetime $(FUZZ_MINIMIZE)

## sim: a longer simulation campaign (SEEDS=N to change its size), with a progress bar and a summary
SEEDS ?= 2000
sim:
	$(GO) run ./cmd/raftkv sim --seed 1 --seeds $(SEEDS)

## nemesis: real members, one per network namespace, under partitions, cuts, loss, SIGKILL, SIGSTOP,
## member remove/add, wiped data and a full disk, the clients' history checked (root only): DURATION of
## faults (default 60s), MEMBERS (3 or 5), SEED=N replays a schedule; progress lines and a final table
MEMBERS ?= 3
nemesis: NEMESIS_DURATION = $(if $(filter command line environment,$(origin DURATION)),$(DURATION),60s)
nemesis:
	$(GO) build -o bin/raftkv ./cmd/raftkv
	bin/raftkv nemesis --duration $(NEMESIS_DURATION) --members $(MEMBERS) $(if $(SEED),--seed $(SEED)) $(NEMESIS_FLAGS)

## soak-recipes: the coordination recipes' fault tests, each scenario for a minute (SOAK=5m to change)
SOAK ?= 1m
soak-recipes:
	RAFTKV_RECIPE_SOAK=$(SOAK) $(GO) test -count=1 -v -timeout 60m -run 'Faults' ./client/recipe/

## lint: formatting and vet (staticcheck too when it is installed)
lint:
	@test -z "$$(gofmt -l .)" || (echo "gofmt would change:"; gofmt -l .; exit 1)
	$(GO) vet $(PKGS)
	@if command -v staticcheck >/dev/null; then staticcheck $(PKGS); fi

build:
	$(GO) build -o bin/raftkv ./cmd/raftkv
