MIGRATE_SRCS := $(wildcard src/migrate/*.c)
MIGRATE_OBJS := $(MIGRATE_SRCS:%.c=$(BUILD)/obj/%.o)
$(BUILD)/libmigrate.a: $(MIGRATE_OBJS)
	$(AR) rcs $@ $^
