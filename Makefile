# payramd — `make run` starts the daemon on the built-in example config;
# `make test` runs every test (what CI runs). See README.md.

GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
BIN       := bin/payramd
PREFIX    ?= /usr/local
# An execution count, not a duration: a duration races Go's fuzz coordinator
# at its deadline (golang/go#75804, fixed in Go 1.27) and fails with a bare
# "context deadline exceeded" and no crasher.
FUZZTIME  ?= 10000x
STATICCHECK_VERSION ?= v0.8.2

# Fuzz targets run briefly by `make test` (package:Target).
FUZZ_TARGETS := \
	./actions:FuzzCodeArgs \
	./config:FuzzLoad \
	./engine:FuzzCompileRule \
	./engine:FuzzTemplate \
	./engine:FuzzDecodeJSON \
	./engine:FuzzDecodeJSONDifferential \
	./engine:FuzzEncodeJSONDifferential \
	./engine:FuzzFastCondition \
	./engine:FuzzNumberValue \
	./webhook:FuzzPayramVerify \
	./webhook:FuzzHMACVerify \
	./webhook:FuzzStandardWebhooksVerify \
	./webhook:FuzzStripeVerify \
	./webhook:FuzzPayramNormalize

.PHONY: all build run test unit fuzz-short fuzz lint bench install clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/payramd

run: build
	./$(BIN) run

# Every test: vet, formatting, unit and end-to-end tests under the race
# detector, then a short run of every fuzz target.
test: lint-basic unit fuzz-short

unit:
	$(GO) test -race -count=1 -timeout 10m ./...

fuzz-short:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) $$pkg > /tmp/payramd-fuzz.log 2>&1 || { cat /tmp/payramd-fuzz.log; exit 1; }; \
	done

# Longer fuzzing by hand: make fuzz FUZZTIME=2000000x (or a duration such as
# 10m, accepting the rare spurious deadline failure above)
fuzz: fuzz-short

lint-basic:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# go.mod must be what `go mod tidy` writes: direct dependencies listed as
# direct, nothing missing or unused.
lint: lint-basic
	$(GO) mod tidy -diff
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

# Go benchmarks plus a load test of the real daemon against a bare net/http
# handler measured in the same run; see BENCHMARKS.md.
# The load test also drives the listener with wrk when it is installed;
# on Debian this installs it (as root, or with sudo).
bench:
	@command -v wrk >/dev/null 2>&1 || { if [ "$$(id -u)" = 0 ]; then apt-get install -y wrk; else sudo apt-get install -y wrk; fi; } >/dev/null 2>&1 || echo "wrk could not be installed: the wrk comparison is skipped"
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./engine/ ./webhook/ ./journal/
	$(GO) run ./bench/load -duration 20s -rounds 3

# The unit uses Type=notify-reload (systemd 253+); on an older systemd it is
# installed with Type=notify and an ExecReload that sends SIGHUP instead.
# rules.yaml is 0644: the service runs as a DynamicUser, which must read it
# (secrets go in payramd.env, 0600, which systemd reads as root).
install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/payramd
	install -D -m 0644 contrib/payramd.service $(DESTDIR)/etc/systemd/system/payramd.service
	@# The unit runs the binary where this install put it.
	@if [ "$(PREFIX)" != /usr/local ]; then \
		sed -i 's|^ExecStart=/usr/local/bin/payramd |ExecStart=$(PREFIX)/bin/payramd |' $(DESTDIR)/etc/systemd/system/payramd.service; fi
	@v=$$(systemctl --version 2>/dev/null | awk 'NR==1 {print $$2}'); \
	if [ -n "$$v" ] && [ "$$v" -lt 253 ] 2>/dev/null; then \
		sed -i 's|^Type=notify-reload$$|Type=notify\nExecReload=/bin/kill -HUP $$MAINPID|' $(DESTDIR)/etc/systemd/system/payramd.service; \
		echo "systemd $$v is older than 253: installed the unit with Type=notify and ExecReload"; fi
	@if [ ! -e $(DESTDIR)/etc/payramd/rules.yaml ]; then \
		install -D -m 0644 rules.example.yaml $(DESTDIR)/etc/payramd/rules.yaml; \
		echo "installed /etc/payramd/rules.yaml from the example: edit it"; fi
	@if [ ! -e $(DESTDIR)/etc/payramd/testdata ]; then \
		install -d -m 0755 $(DESTDIR)/etc/payramd/testdata/events; \
		install -m 0644 testdata/events/*.json $(DESTDIR)/etc/payramd/testdata/events/; \
		echo "installed sample events in /etc/payramd/testdata/events (rules.yaml's tests: use them)"; fi
	@if [ ! -e $(DESTDIR)/etc/payramd/payramd.env ]; then \
		install -D -m 0600 contrib/payramd.env $(DESTDIR)/etc/payramd/payramd.env; \
		echo "installed /etc/payramd/payramd.env: put your secrets there"; fi
	@echo "next: systemctl daemon-reload && systemctl enable --now payramd"

clean:
	rm -rf bin data
