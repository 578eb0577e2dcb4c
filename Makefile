# Broadsheet. `make run` starts it on embedded defaults; `make test` runs
# every test. SAM's build-<LogicalId> targets join as the functions land.
GO ?= go
DATA ?= ./.broadsheet

.PHONY: run test vet build clean

## run: start Broadsheet on http://127.0.0.1:8080 with data in ./.broadsheet
run:
	$(GO) run ./cmd/broadsheet serve --data $(DATA)

## test: vet, then every test with the race detector
test: vet
	$(GO) test -race -count=1 ./...

vet:
	$(GO) vet ./...

## build: the laptop binary in ./bin
build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/broadsheet ./cmd/broadsheet

clean:
	rm -rf bin
