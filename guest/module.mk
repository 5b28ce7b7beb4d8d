# tern-guest: the project's freestanding x86-64 test kernel.
# Own flags (GUEST_CFLAGS); never the host CFLAGS.
GUEST_DIR    := guest
GUEST_OBJDIR := $(BUILD)/guest/obj
GUEST_ELF    := $(BUILD)/guest/tern-guest
GUEST_SRCS   := $(wildcard $(GUEST_DIR)/*.c)
GUEST_ASMS   := $(wildcard $(GUEST_DIR)/*.S)
GUEST_OBJS   := $(patsubst $(GUEST_DIR)/%.c,$(GUEST_OBJDIR)/%.o,$(GUEST_SRCS)) \
                $(patsubst $(GUEST_DIR)/%.S,$(GUEST_OBJDIR)/%.S.o,$(GUEST_ASMS))

GUEST_CFLAGS := -std=c11 -O2 -g -Wall -Wextra -Werror -MMD -MP \
                -ffreestanding -fno-pic -fno-pie -mno-red-zone \
                -mno-sse -mno-mmx -mno-sse2 -mno-avx -mgeneral-regs-only \
                -fno-stack-protector -fno-asynchronous-unwind-tables \
                -fno-unwind-tables -fno-builtin -nostdlib -static \
                -mcmodel=small -I$(GUEST_DIR)
GUEST_LDFLAGS := -nostdlib -static -Wl,-T,$(GUEST_DIR)/link.ld \
                 -Wl,-z,max-page-size=4096 -Wl,--build-id=none \
                 -Wl,-z,noexecstack

all: $(GUEST_ELF)

$(GUEST_ELF): $(GUEST_OBJS) $(GUEST_DIR)/link.ld
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) $(GUEST_LDFLAGS) -o $@ $(GUEST_OBJS)

$(GUEST_OBJDIR)/%.o: $(GUEST_DIR)/%.c
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) -c -o $@ $<

$(GUEST_OBJDIR)/%.S.o: $(GUEST_DIR)/%.S
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) -c -o $@ $<

-include $(GUEST_OBJS:.o=.d)
