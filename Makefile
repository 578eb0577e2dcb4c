# Broadsheet. `make run` starts it on embedded defaults; `make test` runs
# every test; `sam build` calls the build-<LogicalId> targets below.
GO ?= go
# Every target builds with go1.27.3: go1.26.8's standard library has known
# vulnerabilities reachable from `serve` (net/http, html/template, crypto/tls;
# see `make vulncheck`). The go command fetches that toolchain once through the
# module proxy. A machine ignores go.mod's toolchain line unless asked, so it
# is set here; `GOTOOLCHAIN=local make ...` keeps your own Go.
export GOTOOLCHAIN ?= go1.27.3
DATA ?= ./.broadsheet
ARTIFACTS_DIR ?= .aws-sam/manual
LAMBDA_BUILD = GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -tags lambda.norpc -trimpath -ldflags "-s -w"

.PHONY: run test vet vulncheck chaos bench build clean aws-deps lambdas local-aws \
	build-ApiFunction build-DigestFunction build-SenderFunction build-FeedbackFunction build-IngestFunction

## run: start Broadsheet on http://127.0.0.1:8080 with data in ./.broadsheet
run:
	$(GO) run ./cmd/broadsheet serve --data $(DATA)

## test: vet, then every test with the race detector
test: vet
	$(GO) test -race -count=1 ./...

vet:
	$(GO) vet ./...

## vulncheck: govulncheck on ./... against the Go vulnerability database as
## of VULNDB_VERSION, built here without the internet from the
## golang.org/x/vulndb module's OSV files (internal/tools/vulndb) and kept in
## .cache/vulndb/; exits non-zero if the code reaches a known vulnerability.
## `GOTOOLCHAIN=local make vulncheck` checks your own Go's standard library.
GOVULNCHECK_VERSION = v1.10.0
# The database as of 2026-11-05 (newest entry GO-2026-6917); to move it on,
# set the version `go list -m golang.org/x/vulndb@latest` prints.
VULNDB_VERSION = v0.0.0-20261105234957-e22db6528018
VULNDB = .cache/vulndb/$(VULNDB_VERSION)
# govulncheck asks the go command on PATH for its version with GO111MODULE=off,
# where GOTOOLCHAIN is not obeyed: a go1.26 on PATH would make it type-check
# go1.27.3's standard library as Go 1.26 and fail. So the selected toolchain's
# own go comes first on PATH.
vulncheck: $(VULNDB)/index/modules.json
	PATH="$$($(GO) env GOROOT)/bin:$$PATH" $(GO) run golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION) -db file://$(CURDIR)/$(VULNDB) ./...

$(VULNDB)/index/modules.json: $(filter-out %_test.go,$(wildcard internal/tools/vulndb/*.go))
	$(GO) mod download golang.org/x/vulndb@$(VULNDB_VERSION)
	rm -rf .cache/vulndb
	$(GO) run ./internal/tools/vulndb -out $(VULNDB).tmp \
		-vulns "$$($(GO) env GOMODCACHE)/golang.org/x/vulndb@$(VULNDB_VERSION)/data/osv"
	mv $(VULNDB).tmp $(VULNDB)

## chaos: the fault scenarios (crashes, triggers, throttling, feedback,
## unsubscribes, malformed input); one FAULTS line each, non-zero exit if a
## figure is off. CHAOS_SIZE=small is CI's size; needs `make aws-deps`.
CHAOS_SIZE ?= full
chaos:
	$(GO) run ./cmd/chaos -size $(CHAOS_SIZE)

## bench: one digest to BENCH_N readers through the real pipeline per mode
## (discard, smtp, ses at 10000 and BENCH_N; aws at 10000), and each
## function's bootstrap size and start-to-ready time; one BENCH line each.
## Numbers are printed, never asserted. Needs `make aws-deps`.
BENCH_N ?= 100000
bench:
	$(GO) run ./cmd/bench -n $(BENCH_N)

## build: the laptop binary in ./bin, and every Lambda bootstrap
build: lambdas
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/broadsheet ./cmd/broadsheet

clean:
	rm -rf bin .aws-sam

## SAM (BuildMethod: makefile) runs these with ARTIFACTS_DIR set; each
## writes one arm64 bootstrap for provided.al2023.
build-ApiFunction:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/api
build-DigestFunction:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/digest
build-SenderFunction:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/sender
build-FeedbackFunction:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/feedback
build-IngestFunction:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/ingest

## lambdas: every function's bootstrap under .aws-sam/manual/<LogicalId>/
lambdas:
	@for f in ApiFunction DigestFunction SenderFunction FeedbackFunction IngestFunction; do \
		$(MAKE) --no-print-directory build-$$f ARTIFACTS_DIR=.aws-sam/manual/$$f || exit 1; \
		ls -l .aws-sam/manual/$$f/bootstrap; \
	done

## local-aws: AWS on this machine for `sam local` (see README): DynamoDB
## Local, the SQS and SES stand-ins on ports 8000, 9324 and 8005 where the
## functions' containers reach them, the table and the send queue, and
## env.json for every function; Ctrl-C stops them. Needs `make aws-deps`.
## LOCAL_AWS_FLAGS passes flags (go run ./cmd/localaws -h lists them).
local-aws:
	$(GO) run ./cmd/localaws $(LOCAL_AWS_FLAGS)

## aws-deps: what the AWS integration tests need: Java 17, the npm stand-ins, aws-lambda-rie
RIE_VERSION = v0.0.0-20261030222936-bef5c4ba774d
aws-deps:
	@command -v java >/dev/null || { apt-get update && apt-get install -y openjdk-17-jre-headless; }
	npm ci --no-audit --no-fund
	$(GO) install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@$(RIE_VERSION)
