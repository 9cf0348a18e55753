# The project's Go toolchain; this machine's own Go defaults to GOTOOLCHAIN=local.
export GOTOOLCHAIN := go1.27.3

.PHONY: build test check bench fuzz run

# CGO_ENABLED=0: one static binary (net would otherwise link glibc's resolver).
build:
	CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o bin/mustserv ./cmd/mustserv

# The README's test command: vet, format check, then every test with the race detector.
test: check
	go test -race -count=1 ./...

check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	go vet ./...

# Runs every fuzz target for FUZZTIME each (CI: 10s; a real session: 60s or more).
# New crashers land in the package's testdata/fuzz/ and then rerun in every go test.
FUZZTIME ?= 60s
fuzz:
	@for pkg in $$(go list ./...); do \
	  dir=$$(go list -f '{{.Dir}}' $$pkg); \
	  for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/^func //'); do \
	    echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
	    go test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=5s $$pkg || exit 1; \
	  done; \
	done

bench: build
	bash bench/compare.sh

run:
	go run ./cmd/mustserv serve $(DIRS)
