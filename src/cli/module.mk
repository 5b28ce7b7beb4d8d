# tern, the CLI: talks to the local ternd over its REST API only (libcurl,
# jansson); it links neither the cluster layer nor etcd code.
CLI_SRCS := $(wildcard src/cli/*.c)
CLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/obj/%.o)
$(BUILD)/tern: $(CLI_OBJS) $(BUILD)/libcommon.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)
all: $(BUILD)/tern
