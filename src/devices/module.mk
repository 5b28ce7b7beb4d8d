DEVICES_SRCS := $(wildcard src/devices/*.c)
DEVICES_OBJS := $(DEVICES_SRCS:%.c=$(BUILD)/obj/%.o)
$(BUILD)/libdevices.a: $(DEVICES_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^
