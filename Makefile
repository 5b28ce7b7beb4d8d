# tern: one GNU Makefile plus per-directory fragments (*/module.mk)
BUILD    ?= build
CC       ?= cc
PKGS     := jansson openssl libcurl
CFLAGS   ?= -O2 -g
CFLAGS   += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -pthread -MMD -MP \
            -Isrc $(shell pkg-config --cflags $(PKGS))
# Each program links only what its libraries use: every fragment names its
# library's system libraries (COMMON_LDLIBS, MIGRATE_LDLIBS, ...), so that
# tern-vmm links neither libcurl nor libmicrohttpd. LDLIBS stays for extras
# given on the command line. Expanded when used (=): a fresh machine gets
# its packages from `make check` before anything asks pkg-config.
JANSSON_LIBS  = $(shell pkg-config --libs jansson)
SSL_LIBS      = $(shell pkg-config --libs openssl)
CRYPTO_LIBS   = $(shell pkg-config --libs libcrypto)
CURL_LIBS     = $(shell pkg-config --libs libcurl)
CMOCKA_CFLAGS = $(shell pkg-config --cflags cmocka)
CMOCKA_LIBS   = $(shell pkg-config --libs cmocka)

.PHONY: all check demo bench bench-net clean deps
all:

include src/common/module.mk
include src/devices/module.mk
include src/vmm/module.mk
include src/migrate/module.mk
include src/cluster/module.mk
include src/node/module.mk
include src/cli/module.mk
include src/bin/module.mk
-include guest/module.mk
include tests/module.mk
include tests/fuzz/module.mk

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

deps:
	@scripts/install-deps

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

demo:
	@scripts/install-deps
	@$(MAKE) --no-print-directory all test-bins >/dev/null
	@KEEP=$(KEEP) scripts/demo

bench:
	@scripts/install-deps qemu-system-x86 gnuplot-nox
	@$(MAKE) --no-print-directory all test-bins >/dev/null
	@python3 bench/run.py $(if $(QUICK),--quick)
	@python3 bench/net.py $(if $(QUICK),--runs 1)

# virtio-net: ping gap and loss during a migration, UDP echo packet rate,
# tern vs QEMU (bench/net.py; in a network namespace of its own)
bench-net:
	@scripts/install-deps qemu-system-x86
	@$(MAKE) --no-print-directory all >/dev/null
	@python3 bench/net.py
