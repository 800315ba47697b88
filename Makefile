# explaind — build, run, test. A plain Makefile: `make run` and `make test` install the
# Debian packages that are missing, then build. See README.md.

BUILD    ?= build
CC       ?= cc
# OpenBLAS: link the pthread variant by path (and rpath) so the serial variant, which
# gives wrong sgemm results under concurrent callers, can never be picked up.
BLAS_INC := /usr/include/x86_64-linux-gnu/openblas-pthread
BLAS_LIB := /usr/lib/x86_64-linux-gnu/openblas-pthread
PKGS     := libmicrohttpd-dev libjansson-dev libopenblas-dev libopenblas0-pthread libopenblas-pthread-dev \
            libuv1-dev pkg-config
OPT      ?= -O2
SAN      ?=
CFLAGS   += -std=gnu11 $(OPT) -g -Wall -Wextra -Wshadow -Wno-unused-parameter -I. -I$(BLAS_INC) \
            -D_GNU_SOURCE -pthread $(SAN)
LDFLAGS  += -pthread $(SAN)
LDLIBS   += -lmicrohttpd -ljansson -luv -L$(BLAS_LIB) -Wl,-rpath,$(BLAS_LIB) -lopenblas -lm

CORE_SRC   := $(wildcard core/*.c)
API_SRC    := $(wildcard api/*.c)
SERVER_SRC := $(filter-out server/main.c,$(wildcard server/*.c))
LIB_OBJ    := $(patsubst %.c,$(BUILD)/obj/%.o,$(CORE_SRC) $(API_SRC) $(SERVER_SRC))
TEST_SRC   := $(wildcard tests/test_*.c)
TEST_BIN   := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
TEST_HELPERS := $(patsubst %.c,$(BUILD)/obj/%.o,$(filter-out $(TEST_SRC),$(wildcard tests/*.c)))

.PHONY: all deps run test asan tsan valgrind bench clean fmt models
all: $(BUILD)/explaind $(TEST_BIN)

# ---- dependencies ------------------------------------------------------------------
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
deps:
	@missing=""; for p in $(PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; fi

# ---- build ---------------------------------------------------------------------------
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libxd.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/explaind: $(BUILD)/obj/server/main.o $(BUILD)/libxd.a
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(TEST_HELPERS) $(BUILD)/libxd.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# ---- run and test -------------------------------------------------------------------
LISTEN ?= 127.0.0.1:8080
run: deps $(BUILD)/explaind
	./$(BUILD)/explaind --listen $(LISTEN) --model-dir models

test: deps all
	@BUILD=$(BUILD) sh tests/run.sh

# Sanitizer builds live in their own folders so they never mix objects with the normal build.
asan: deps
	$(MAKE) BUILD=build-asan OPT=-O1 SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" test

tsan: deps
	$(MAKE) BUILD=build-tsan OPT=-O1 SAN="-fsanitize=thread" TSAN=1 test

valgrind: deps all
	@BUILD=$(BUILD) VALGRIND=1 sh tests/run.sh

bench: deps all
	@BUILD=$(BUILD) sh bench/run.sh

models:
	/usr/bin/python3 tools/make_models.py

fmt:
	clang-format -i core/*.[ch] api/*.[ch] server/*.[ch] tests/*.[ch]

clean:
	rm -rf build build-asan build-tsan
