VMM_SRCS := $(filter-out src/vmm/main.c,$(wildcard src/vmm/*.c))
VMM_OBJS := $(VMM_SRCS:%.c=$(BUILD)/obj/%.o)
$(BUILD)/libvmm.a: $(VMM_OBJS)
	$(AR) rcs $@ $^

$(BUILD)/tern-vmm: $(BUILD)/obj/src/vmm/main.o $(BUILD)/libmigrate.a $(BUILD)/libvmm.a \
		$(BUILD)/libdevices.a $(BUILD)/libcommon.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

all: $(BUILD)/tern-vmm
