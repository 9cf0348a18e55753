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

bench: build
	bash bench/compare.sh

run:
	go run ./cmd/mustserv serve $(DIRS)
