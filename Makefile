# explaind — build, run, test. A plain Makefile: `make run` and `make test` install the
# Debian packages that are missing, then build. See README.md.

BUILD    ?= build
CC       ?= cc
# OpenBLAS: link the pthread variant by path (and rpath) so the serial variant, which
# gives wrong sgemm results under concurrent callers, can never be picked up.
BLAS_INC := /usr/include/x86_64-linux-gnu/openblas-pthread
BLAS_LIB := /usr/lib/x86_64-linux-gnu/openblas-pthread
PKGS     := libmicrohttpd-dev libjansson-dev libopenblas-dev libopenblas0-pthread libopenblas-pthread-dev \
            libuv1-dev pkg-config protobuf-c-compiler libprotobuf-c-dev libonnx-dev libgnutls28-dev
# Image inputs (core/image.c): PNG through libspng, JPEG through libjpeg-turbo's TurboJPEG.
PKGS     += libspng-dev libturbojpeg0-dev
OPT      ?= -O2
SAN      ?=
CFLAGS   += -std=gnu11 $(OPT) -g -Wall -Wextra -Wshadow -Wno-unused-parameter -I. -I$(BLAS_INC) \
            -D_GNU_SOURCE -pthread $(SAN)
LDFLAGS  += -pthread $(SAN)
LDLIBS   += -lmicrohttpd -lgnutls -ljansson -luv -L$(BLAS_LIB) -Wl,-rpath,$(BLAS_LIB) -lopenblas -lm
# ONNX import (core/onnx.c): protobuf-c code generated at build time from Debian's onnx.proto.
ONNX_PROTO := /usr/include/onnx/onnx.proto
CFLAGS   += -I$(BUILD)/gen
LDLIBS   += -lprotobuf-c
LDLIBS   += -lspng -lturbojpeg

CORE_SRC   := $(wildcard core/*.c)
API_SRC    := $(wildcard api/*.c)
SERVER_SRC := $(filter-out server/main.c,$(wildcard server/*.c))
LIB_OBJ    := $(patsubst %.c,$(BUILD)/obj/%.o,$(CORE_SRC) $(API_SRC) $(SERVER_SRC))
# web/ (the dashboard and openapi.json) is embedded in the binary: see api/static.h.
WEB_FILES  := $(wildcard web/*.html web/*.js web/*.css web/*.json web/*.svg)
LIB_OBJ    += $(BUILD)/gen/web_assets.o
GEN_OBJ    := $(BUILD)/gen/onnx.pb-c.o
LIB_OBJ    += $(GEN_OBJ)
TEST_SRC   := $(wildcard tests/test_*.c)
TEST_BIN   := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
TEST_HELPERS := $(patsubst %.c,$(BUILD)/obj/%.o,$(filter-out $(TEST_SRC),$(wildcard tests/*.c)))

# Fuzz targets (tests/fuzz/fuzz_*.c): `make test` replays their corpora through
# tests/fuzz/replay.c as ordinary test programs; `make fuzz` runs libFuzzer on them.
FUZZ_SRC    := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_NAMES  := $(patsubst tests/fuzz/fuzz_%.c,%,$(FUZZ_SRC))
FUZZ_REPLAY := $(patsubst %,$(BUILD)/tests/test_fuzz_%,$(FUZZ_NAMES))

.PHONY: all deps run test asan tsan valgrind bench bench-deps clean fmt models web-deps fuzz deploy-deps edge-deps
.PHONY: soak py-deps onnxrt-deps tokref-deps
all: $(BUILD)/explaind $(TEST_BIN) $(FUZZ_REPLAY)

# ---- dependencies ------------------------------------------------------------------
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
deps:
	@missing=""; for p in $(PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; fi

# Tools of the web tests (tests/test_web.c): Debian's chromium and node, and the npm
# packages pinned in tests/web/package-lock.json (npm ci, only when the lock changed).
# A failure here only warns: those tests then report themselves skipped.
WEB_NODE_MODULES := tests/web/node_modules/.package-lock.json
web-deps:
	@missing=""; dpkg -s chromium >/dev/null 2>&1 || missing=" chromium"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; } || \
	  echo "warning: could not install$$missing; the web tests will be skipped"; fi
	@$(MAKE) -s --no-print-directory $(WEB_NODE_MODULES) || echo "warning: npm ci failed; the web tests will be skipped"

$(WEB_NODE_MODULES): tests/web/package.json tests/web/package-lock.json
	cd tests/web && npm ci --no-audit --no-fund --loglevel=error

# ONNX Runtime for the graph engine's tests (tests/onnxrt/run.mjs runs a graph as a second
# opinion): npm's onnxruntime-node, pinned in tests/onnxrt/package-lock.json (npm ci, only
# when the lock changed). Its CPU runtime ships inside the npm package; the install script
# would also fetch CUDA libraries from NuGet, which ONNXRUNTIME_NODE_INSTALL=skip stops.
# A failure here only warns: those tests then skip, or fail under CI=true.
ONNXRT_NODE_MODULES := tests/onnxrt/node_modules/.package-lock.json
onnxrt-deps:
	@command -v npm >/dev/null 2>&1 || { echo "installing: nodejs npm"; \
	  { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends nodejs npm; } || \
	  echo "warning: could not install nodejs npm; the ONNX Runtime comparisons will skip"; }
	@$(MAKE) -s --no-print-directory $(ONNXRT_NODE_MODULES) || echo "warning: npm ci failed; the ONNX Runtime comparisons will skip"

$(ONNXRT_NODE_MODULES): tests/onnxrt/package.json tests/onnxrt/package-lock.json
	cd tests/onnxrt && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error

# The reference tokenizer of tests/test_tokenizer.c: Hugging Face's tokenizers library
# through its Node bindings (npm's tokenizers, which ships its compiled library for each
# platform), pinned in tests/tokref/package-lock.json (npm ci, only when the lock changed).
# A failure here only warns: the live comparison then skips, or fails under CI=true.
TOKREF_NODE_MODULES := tests/tokref/node_modules/.package-lock.json
tokref-deps:
	@command -v npm >/dev/null 2>&1 || { echo "installing: nodejs npm"; \
	  { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends nodejs npm; } || \
	  echo "warning: could not install nodejs npm; the live tokenizer comparison will skip"; }
	@$(MAKE) -s --no-print-directory $(TOKREF_NODE_MODULES) || echo "warning: npm ci failed; the live tokenizer comparison will skip"

$(TOKREF_NODE_MODULES): tests/tokref/package.json tests/tokref/package-lock.json
	cd tests/tokref && npm ci --no-audit --no-fund --loglevel=error

# Tools of the deployment tests (tests/test_deploy.c, tests/test_lb.c): Debian's nginx,
# kubernetes-client (`kubectl kustomize` renders deploy/k8s offline; any kubectl already on
# PATH will do) and
# docker-compose (no recommends: validating a compose file needs no Docker daemon), node,
# and the npm packages pinned in tests/deploy/package-lock.json (npm ci, only when the
# lock changed). A failure here only warns: those tests then skip, or fail under CI=true.
DEPLOY_PKGS := nginx docker-compose
DEPLOY_NODE_MODULES := tests/deploy/node_modules/.package-lock.json
deploy-deps:
	@missing=""; for p in $(DEPLOY_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v npm >/dev/null 2>&1 || missing="$$missing nodejs npm"; \
	command -v kubectl >/dev/null 2>&1 || missing="$$missing kubernetes-client"; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; } || \
	  echo "warning: could not install$$missing; the deployment tests will skip"; fi
	@$(MAKE) --no-print-directory $(DEPLOY_NODE_MODULES) || echo "warning: npm ci failed; the deployment tests will skip"

$(DEPLOY_NODE_MODULES): tests/deploy/package.json tests/deploy/package-lock.json
	cd tests/deploy && npm ci --no-audit --no-fund --loglevel=error

# Tools of the edge tests (tests/test_metrics.c, tests/test_security.c): openssl makes a
# self-signed certificate and curl talks HTTPS (TEST_PKGS); promtool (Debian's prometheus
# package) lints /metrics. Only promtool is wanted from that package, not the Prometheus
# server and its service, so its .deb is downloaded and unpacked into $(BUILD)/tools
# (a static Go binary: nothing else to install). A failure only warns: the tests then
# skip, or fail under CI=true.
TEST_PKGS := openssl curl
PROMTOOL  := $(BUILD)/tools/promtool
edge-deps:
	@missing=""; for p in $(TEST_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; } || \
	  echo "warning: could not install$$missing; the TLS tests will skip"; fi
	@$(MAKE) -s --no-print-directory $(PROMTOOL) || echo "warning: no promtool; the promtool check will skip"

$(PROMTOOL):
	@mkdir -p $(BUILD)/tools/deb
	@if command -v promtool >/dev/null 2>&1; then ln -sf "$$(command -v promtool)" $@; else \
	  cd $(BUILD)/tools/deb && rm -rf x prometheus_*.deb && \
	  { apt-cache show prometheus >/dev/null 2>&1 || $(SUDO) apt-get update -qq; } && \
	  apt-get download -qq prometheus >/dev/null 2>&1 && \
	  dpkg-deb -x prometheus_*.deb x && cp x/usr/bin/promtool ../promtool && rm -rf x prometheus_*.deb; fi
	@$@ --version >/dev/null 2>&1

# Python the tests drive (tests/test_exporters.c: the scikit-learn and PyTorch exporters;
# tests/test_pyclient.c: the Python client in clients/python with numpy, pandas and tqdm;
# tests/test_segment.c and tests/test_render.c: scikit-image and matplotlib for the live checks).
# Debian's /usr/bin/python3 and its packages only. A failure only warns: those tests then
# skip, or fail under CI=true.
PY_PKGS := python3 python3-pip python3-setuptools python3-numpy python3-pandas python3-tqdm python3-sklearn \
           python3-torch python3-onnx python3-skimage python3-matplotlib
py-deps:
	@missing=""; for p in $(PY_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; } || \
	  echo "warning: could not install$$missing; the Python tests will skip"; fi

# ---- build ---------------------------------------------------------------------------
# Keep test objects (make would delete them as intermediates and rebuild them each time).
.SECONDARY:

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libxd.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# No Python and no xxd at build time: tools/embed_web.sh uses od, sed and cksum.
$(BUILD)/gen/web_assets.c: $(WEB_FILES) tools/embed_web.sh
	@mkdir -p $(dir $@)
	sh tools/embed_web.sh $(WEB_FILES) > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/web_assets.o: $(BUILD)/gen/web_assets.c api/static.h
	$(CC) $(CFLAGS) -c $< -o $@

# protoc-c writes onnx.pb-c.c and onnx.pb-c.h in one run (a grouped target).
$(BUILD)/gen/onnx.pb-c.c $(BUILD)/gen/onnx.pb-c.h &: $(ONNX_PROTO)
	@mkdir -p $(BUILD)/gen
	protoc-c --proto_path=$(dir $(ONNX_PROTO)) --c_out=$(BUILD)/gen $(ONNX_PROTO)

$(GEN_OBJ): $(BUILD)/gen/onnx.pb-c.c $(BUILD)/gen/onnx.pb-c.h
	$(CC) $(CFLAGS) -c $< -o $@

# The ONNX importer includes the generated header: generate it before compiling.
$(BUILD)/obj/core/onnx.o $(BUILD)/obj/core/onnx_ops.o $(BUILD)/obj/core/onnx_graph.o: | $(BUILD)/gen/onnx.pb-c.h

$(BUILD)/explaind: $(BUILD)/obj/server/main.o $(BUILD)/libxd.a
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(TEST_HELPERS) $(BUILD)/libxd.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(FUZZ_REPLAY): $(BUILD)/tests/test_fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c tests/fuzz/fuzz.h tests/fuzz/fuzz_api.h $(BUILD)/libxd.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DXD_FUZZ_TARGET=\"$*\" tests/fuzz/fuzz_$*.c tests/fuzz/replay.c $(BUILD)/libxd.a -o $@ $(LDFLAGS) $(LDLIBS)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# ---- run and test -------------------------------------------------------------------
LISTEN ?= 127.0.0.1:8080
run: deps $(BUILD)/explaind
	./$(BUILD)/explaind --listen $(LISTEN) --model-dir models

test: deps web-deps deploy-deps edge-deps py-deps onnxrt-deps tokref-deps all
	@BUILD=$(BUILD) sh tests/run.sh

# Sanitizer builds live in their own folders so they never mix objects with the normal build.
asan: deps
	$(MAKE) BUILD=build-asan OPT=-O1 SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" test

# ThreadSanitizer runs the concurrent tests only (the rest is single-threaded and slow under
# it): the worker pool; the server end to end, concurrent requests included (the server
# binary is built with TSan too: a race makes it exit 66, which the harness reports);
# model replacement under load in process (test_concurrency: 4 threads through the router
# while the registry is replaced); the concurrent BLAS callers. test_load and test_admin
# ran without a report, but their timing and start-up bounds do not hold at TSan's 5-15x
# slowdown: add them with TSAN_TESTS="..." to look for races only. tests/tsan.supp
# silences third-party noise only (see there). 20 minutes per program by default.
TSAN_TESTS ?= test_pool test_server test_concurrency test_blas_threads
TSAN_BUILD ?= build-tsan
tsan: deps
	$(MAKE) BUILD=$(TSAN_BUILD) OPT=-O1 SAN="-fsanitize=thread" TSAN=1 $(TSAN_BUILD)/explaind \
	  $(patsubst %,$(TSAN_BUILD)/tests/%,$(TSAN_TESTS))
	@TSAN_OPTIONS="suppressions=$(CURDIR)/tests/tsan.supp exitcode=66 halt_on_error=0 second_deadlock_stack=1 $(TSAN_OPTIONS)" \
	  TEST_TIMEOUT=$${TEST_TIMEOUT:-1200} BUILD=$(TSAN_BUILD) sh tests/run.sh $(TSAN_TESTS)

valgrind: deps all
	@BUILD=$(BUILD) VALGRIND=1 sh tests/run.sh

# Benchmarks (bench/): in-process microbenchmarks (bench_core), the graph models beside
# PyTorch (bench_graph, bench/graph_torch.py), the report writer (bench_report) and HTTP
# load with wrk against the real server; bench/run.sh writes
# bench/RESULTS.md. BENCH_SCALE=0.2 shortens every measurement (development runs).
BENCH_PKGS := wrk curl
BENCH_BIN  := $(BUILD)/bench/bench_core $(BUILD)/bench/bench_report $(BUILD)/bench/bench_graph \
              $(BUILD)/bench/bench_segment
bench-deps:
	@missing=""; for p in $(BENCH_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; fi

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(BUILD)/libxd.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

bench: deps bench-deps $(BUILD)/explaind $(BENCH_BIN)
	@BUILD=$(BUILD) sh bench/run.sh

# Soak (not part of `make test`): tests/soak/soak.c runs the real server under a mixed
# load for SOAK_SECONDS (default 300) and checks for 5xx other than 503 and for RSS growth
# after warm-up; see docs/load.md. SOAK_SECONDS=60 make soak for a short run.
SOAK_SECONDS ?= 300
$(BUILD)/soak: $(BUILD)/obj/tests/soak/soak.o $(BUILD)/obj/tests/harness.o
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

soak: deps $(BUILD)/explaind $(BUILD)/soak
	@BUILD=$(BUILD) SOAK_SECONDS=$(SOAK_SECONDS) $(BUILD)/soak

models:
	/usr/bin/python3 tools/make_models.py
	/usr/bin/python3 tools/make_graph_models.py

# libFuzzer: the library is rebuilt with clang and coverage instrumentation in build-fuzz/;
# new inputs go to build-fuzz/corpus/<target>, crashes to build-fuzz/crashes/ (copy a
# crash into tests/fuzz/crashes/<target>/ to keep it as a regression replayed by make test).
FUZZ_SECONDS ?= 60
# FUZZ_BUILD: the build folder of the instrumented library and targets; FUZZ_TARGETS: a
# subset of $(FUZZ_NAMES). -timeout=60: on a busy machine a legitimate
# SHAP summary once took over 10 s, which libFuzzer then reported as a hang.
FUZZ_BUILD ?= build-fuzz
FUZZ_TARGETS ?= $(FUZZ_NAMES)
fuzz: deps
	$(MAKE) BUILD=$(FUZZ_BUILD) CC=clang OPT=-O1 SAN="-fsanitize=fuzzer-no-link,address,undefined" $(FUZZ_BUILD)/libxd.a
	@set -e; for t in $(FUZZ_TARGETS); do \
	  clang -std=gnu11 -O1 -g -I. -I$(FUZZ_BUILD)/gen -fsanitize=fuzzer,address,undefined tests/fuzz/fuzz_$$t.c \
	    $(FUZZ_BUILD)/libxd.a -o $(FUZZ_BUILD)/fuzz_$$t $(LDLIBS); \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$t $(FUZZ_BUILD)/crashes; \
	  echo "== fuzz_$$t for $(FUZZ_SECONDS) s"; \
	  $(FUZZ_BUILD)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=60 -rss_limit_mb=2048 \
	    -artifact_prefix=$(FUZZ_BUILD)/crashes/$$t- $(FUZZ_BUILD)/corpus/$$t tests/fuzz/corpus/$$t 2>&1 | tail -n 3; \
	done

fmt:
	clang-format -i core/*.[ch] api/*.[ch] server/*.[ch] tests/*.[ch]

clean:
	rm -rf build build-asan build-tsan build-fuzz
