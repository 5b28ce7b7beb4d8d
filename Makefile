# tern: one GNU Makefile plus per-directory fragments (*/module.mk)
BUILD    ?= build
CC       ?= cc
PKGS     := jansson openssl libcurl
CFLAGS   ?= -O2 -g
CFLAGS   += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -pthread -MMD -MP \
            -Isrc $(shell pkg-config --cflags $(PKGS))
LDLIBS   += $(shell pkg-config --libs $(PKGS)) -pthread

.PHONY: all check demo bench clean deps
all:

include src/common/module.mk
include src/devices/module.mk
include src/vmm/module.mk
include src/migrate/module.mk
include src/cluster/module.mk
include src/node/module.mk
include src/cli/module.mk
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
	@scripts/demo

bench:
	@scripts/install-deps qemu-system-x86 gnuplot-nox
	@$(MAKE) --no-print-directory all test-bins >/dev/null
	@python3 bench/run.py $(if $(QUICK),--quick)
