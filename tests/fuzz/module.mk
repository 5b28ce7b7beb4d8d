# libFuzzer targets (clang -fsanitize=fuzzer,address,undefined), no KVM:
#   fuzz_stream    whole migration streams through mig_stream_verify
#   fuzz_devstate  saved state into serial and virtio-blk load()
#   fuzz_control   bytes on tern-vmm's control socket (vmm/control.c)
#   fuzz_api       REST requests: route, path arguments, query, JSON bodies
#   fuzz_replbitmap  the replication bitmap file (storage/replbitmap.c)
# `make fuzz` builds them and runs each for FUZZ_SECONDS (default 1800: the
# 30 minutes without a crash a change to what faces the network needs;
# `make fuzz FUZZ_SECONDS=20` for a quick look) with seeds from
# tests/golden and the targets' own; `make check` runs each for a few
# seconds through tests/integration/test_fuzz.sh. libFuzzer comes with clang on Debian 12
# in libclang-rt-14-dev.
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 1800
FUZZ_TARGETS := fuzz_stream fuzz_devstate fuzz_control fuzz_api fuzz_replbitmap
FUZZ_BINS := $(FUZZ_TARGETS:%=$(BUILD)/fuzz/%)
FUZZ_FLAGS := -O1 -g -fsanitize=fuzzer-no-link,address,undefined \
	-fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS = $(filter-out -O% -Werror,$(CFLAGS)) $(FUZZ_FLAGS)
FUZZ_LIB_SRCS := $(MIGRATE_SRCS) $(STORAGE_SRCS) $(VMM_SRCS) $(DEVICES_SRCS) $(COMMON_SRCS)
FUZZ_LIB_OBJS := $(FUZZ_LIB_SRCS:%.c=$(BUILD)/fuzz/obj/%.o)
# fuzz_api: ternd's side (node, cluster, common)
FUZZ_NODE_SRCS := $(NODE_SRCS) $(NODE_GEN_SRCS) $(CLUSTER_SRCS) $(COMMON_SRCS)
FUZZ_NODE_OBJS := $(FUZZ_NODE_SRCS:%.c=$(BUILD)/fuzz/obj/%.o)
FUZZ_AVAILABLE := $(shell printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n)\
	{ return d && n; }\n' | $(FUZZ_CC) -fsanitize=fuzzer -x c - -o /dev/null \
	2>/dev/null && echo yes)

.PHONY: fuzz fuzz-bins
fuzz-bins: $(FUZZ_BINS)

$(BUILD)/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(BUILD)/fuzz/obj/src/node/%.o: CFLAGS += $(MHD_CFLAGS)
$(BUILD)/fuzz/obj/$(BUILD)/gen/%.o: CFLAGS += $(MHD_CFLAGS)

$(BUILD)/fuzz/libtern.a: $(FUZZ_LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/fuzz/libternd.a: $(FUZZ_NODE_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/fuzz/fuzz_api: tests/fuzz/fuzz_api.c $(BUILD)/fuzz/libternd.a
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(MHD_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(NODE_LDLIBS) \
		$(LDLIBS)

$(BUILD)/fuzz/%: tests/fuzz/%.c $(BUILD)/fuzz/libtern.a
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(MIGRATE_LDLIBS) $(LDLIBS)

fuzz:
	@scripts/install-deps libclang-rt-14-dev
	@$(MAKE) --no-print-directory fuzz-bins
	@FUZZ_SECONDS=$(FUZZ_SECONDS) BUILD=$(BUILD) bash tests/integration/test_fuzz.sh

ifeq ($(FUZZ_AVAILABLE),yes)
test-bins: fuzz-bins
endif

-include $(FUZZ_LIB_OBJS:.o=.d) $(FUZZ_NODE_OBJS:.o=.d)
