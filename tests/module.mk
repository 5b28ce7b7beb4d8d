# Tests: cmocka unit tests (no KVM), a control-socket client for the
# integration scripts, and tiny kernels for crash tests.
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/unit/%)
TEST_LIBS := $(VMM_PROGRAM_LIBS)
TEST_KERNELS := $(BUILD)/tests/kernels/triple.elf
TEST_BINS := $(UNIT_BINS) $(BUILD)/tests/ctl $(TEST_KERNELS)

$(BUILD)/tests/unit/%: tests/unit/%.c $(TEST_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CMOCKA_CFLAGS) -o $@ $< $(TEST_LIBS) \
		$(MIGRATE_LDLIBS) $(LDLIBS) $(CMOCKA_LIBS)

# test_events (the event ring) and test_progress test ternd's code: they
# link ternd's libraries
$(BUILD)/tests/unit/test_events $(BUILD)/tests/unit/test_progress: \
		$(BUILD)/tests/unit/%: tests/unit/%.c $(BUILD)/libnode.a \
		$(BUILD)/libcluster.a $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(MHD_CFLAGS) $(CMOCKA_CFLAGS) -o $@ $^ $(NODE_LDLIBS) $(LDLIBS) \
		$(CMOCKA_LIBS)

$(BUILD)/tests/ctl: tests/tools/ctl.c $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(COMMON_LDLIBS) $(LDLIBS)

$(BUILD)/tests/kernels/%.elf: tests/kernels/%.S
	@mkdir -p $(dir $@)
	$(CC) -c -o $@.o $<
	$(LD) -static -nostdlib -z noexecstack -Ttext=0x200000 -e _start -o $@ $@.o

.PHONY: test-bins check-build check-linux
test-bins: $(TEST_BINS)
check-build: all test-bins
	@# the whole tree must also build warning-free with clang
	$(MAKE) --no-print-directory CC=clang BUILD=$(BUILD)/clang all

# Installs what is missing, builds, runs every test; last line "N passed, N failed".
check:
	@scripts/install-deps
	@mkdir -p $(BUILD)
	@$(MAKE) --no-print-directory check-build >$(BUILD)/make.log 2>&1 || \
		{ cat $(BUILD)/make.log; echo "0 passed, 1 failed"; exit 1; }
	@tests/run

check-linux:
	@scripts/install-deps
	@$(MAKE) --no-print-directory all
	@tests/check-linux

# Migration stream tools: recording proxy, replayer, stream editor (test
# mutations) and checker (src/migrate/verify.c without KVM).
STREAM_TOOLS := $(BUILD)/tests/tee-proxy $(BUILD)/tests/replay \
	$(BUILD)/tests/streamedit $(BUILD)/tests/streamcheck $(BUILD)/tests/fake-dest
test-bins: $(STREAM_TOOLS)

$(BUILD)/tests/tee-proxy $(BUILD)/tests/fake-dest: \
		$(BUILD)/tests/%: tests/tools/%.c $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(COMMON_LDLIBS) $(LDLIBS)

# the stream tools name message types as the protocol does (libmigrate)
$(BUILD)/tests/replay $(BUILD)/tests/streamedit $(BUILD)/tests/streamcheck: \
		$(BUILD)/tests/%: tests/tools/%.c $(VMM_PROGRAM_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(MIGRATE_LDLIBS) $(LDLIBS)

# tern-vmm with AddressSanitizer and UBSan for the bad-stream test: every
# source compiled again into $(BUILD)/asan/obj, the libraries' objects in
# one archive so that it links what tern-vmm links.
ASAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=all
ASAN_LIB_SRCS := $(MIGRATE_SRCS) $(STORAGE_SRCS) $(VMM_SRCS) $(DEVICES_SRCS) $(COMMON_SRCS)
ASAN_LIB_OBJS := $(ASAN_LIB_SRCS:%.c=$(BUILD)/asan/obj/%.o)
ASAN_OBJS := $(BUILD)/asan/obj/src/bin/tern-vmm.o $(ASAN_LIB_OBJS)

$(BUILD)/asan/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -O%,$(CFLAGS)) $(ASAN_FLAGS) -c -o $@ $<

$(BUILD)/asan/libtern.a: $(ASAN_LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/asan/tern-vmm: $(BUILD)/asan/obj/src/bin/tern-vmm.o $(BUILD)/asan/libtern.a
	$(CC) $(filter-out -O%,$(CFLAGS)) $(ASAN_FLAGS) -o $@ $^ $(MIGRATE_LDLIBS) $(LDLIBS)

test-bins: $(BUILD)/asan/tern-vmm
-include $(ASAN_OBJS:.o=.d)

# HA soak: kills of whole nodes many more times than test_ha does in make
# check (HA_ROUNDS, default 12), outside tests/run's time limit.
.PHONY: soak-ha
soak-ha: all test-bins
	HA_ROUNDS=$${HA_ROUNDS:-12} bash tests/integration/test_ha.sh
