# ternd, the node daemon: config, secrets (token, TLS), REST API
# (libmicrohttpd), etcd member supervision and node membership.
# libmicrohttpd only here (target-specific), so the other programs do not
# link it.
MHD_CFLAGS := $(shell pkg-config --cflags libmicrohttpd)
MHD_LIBS   := $(shell pkg-config --libs libmicrohttpd)
NODE_SRCS := $(wildcard src/node/*.c)
NODE_OBJS := $(NODE_SRCS:%.c=$(BUILD)/obj/%.o)
$(NODE_OBJS): CFLAGS += $(MHD_CFLAGS)
$(BUILD)/ternd: $(NODE_OBJS) $(BUILD)/libcluster.a $(BUILD)/libcommon.a
	$(CC) $(CFLAGS) -o $@ $^ $(MHD_LIBS) $(LDLIBS)
all: $(BUILD)/ternd
