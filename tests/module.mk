# Tests: cmocka unit tests (no KVM), a control-socket client for the
# integration scripts, and tiny kernels for crash tests.
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/unit/%)
TEST_LIBS := $(BUILD)/libvmm.a $(BUILD)/libdevices.a $(BUILD)/libcommon.a
TEST_KERNELS := $(BUILD)/tests/kernels/triple.elf
TEST_BINS := $(UNIT_BINS) $(BUILD)/tests/ctl $(TEST_KERNELS)

$(BUILD)/tests/unit/%: tests/unit/%.c $(TEST_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(shell pkg-config --cflags cmocka) -o $@ $< $(TEST_LIBS) \
		$(LDLIBS) $(shell pkg-config --libs cmocka)

$(BUILD)/tests/ctl: tests/tools/ctl.c $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/kernels/%.elf: tests/kernels/%.S
	@mkdir -p $(dir $@)
	$(CC) -c -o $@.o $<
	$(LD) -static -nostdlib -z noexecstack -Ttext=0x200000 -e _start -o $@ $@.o

.PHONY: test-bins check-build check-linux
test-bins: $(TEST_BINS)
check-build: all test-bins

# Installs what is missing, builds, runs every test; last line "N passed, N failed".
check:
	@scripts/install-deps
	@$(MAKE) --no-print-directory check-build >$(BUILD).make.log 2>&1 || \
		{ cat $(BUILD).make.log; echo "0 passed, 1 failed"; exit 1; }
	@tests/run

check-linux:
	@scripts/install-deps
	@$(MAKE) --no-print-directory all
	@tests/check-linux
