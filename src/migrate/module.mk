MIGRATE_SRCS := $(wildcard src/migrate/*.c)
MIGRATE_OBJS := $(MIGRATE_SRCS:%.c=$(BUILD)/obj/%.o)
MIGRATE_LDLIBS = $(SSL_LIBS) $(STORAGE_LDLIBS) $(COMMON_LDLIBS)
$(BUILD)/libmigrate.a: $(MIGRATE_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^
