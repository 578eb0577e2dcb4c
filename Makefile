# Broadsheet. `make run` starts it on embedded defaults; `make test` runs
# every test. SAM's build-<LogicalId> targets join as the functions land.
GO ?= go
DATA ?= ./.broadsheet

.PHONY: run test vet build clean aws-deps

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

## aws-deps: what the AWS integration tests need: Java 17, the npm stand-ins, aws-lambda-rie
RIE_VERSION = v0.0.0-20261030222936-bef5c4ba774d
aws-deps:
	@command -v java >/dev/null || { apt-get update && apt-get install -y openjdk-17-jre-headless; }
	npm ci --no-audit --no-fund
	$(GO) install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@$(RIE_VERSION)
