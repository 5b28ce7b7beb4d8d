COMMON_SRCS := $(wildcard src/common/*.c)
COMMON_OBJS := $(COMMON_SRCS:%.c=$(BUILD)/obj/%.o)
$(BUILD)/libcommon.a: $(COMMON_OBJS)
	$(AR) rcs $@ $^
