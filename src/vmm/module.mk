# tern-vmm's library: vm, vcpu, boot, dirty log, vm state, control socket;
# its main is src/bin/tern-vmm.c.
VMM_SRCS := $(wildcard src/vmm/*.c)
VMM_OBJS := $(VMM_SRCS:%.c=$(BUILD)/obj/%.o)
$(BUILD)/libvmm.a: $(VMM_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^
