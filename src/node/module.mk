# ternd's library: config, secrets (token, TLS), REST API (libmicrohttpd),
# etcd member supervision and node membership; its main is src/bin/ternd.c.
# libmicrohttpd only here (target-specific), so the other programs do not
# build against it nor link it.
MHD_CFLAGS = $(shell pkg-config --cflags libmicrohttpd)
MHD_LIBS   = $(shell pkg-config --libs libmicrohttpd)
NODE_SRCS := $(wildcard src/node/*.c)
NODE_OBJS := $(NODE_SRCS:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/ui_files.o
# The web UI (ui/) goes into ternd as C arrays (scripts/ui-embed): one
# binary to install, and no file beside it that can be out of step.
UI_FILES := $(sort $(patsubst ui/%,%,$(shell find ui -type f \( -name '*.html' \
	-o -name '*.js' -o -name '*.css' -o -name '*.svg' \) 2>/dev/null)))
$(BUILD)/gen/ui_files.c: scripts/ui-embed $(addprefix ui/,$(UI_FILES))
	@mkdir -p $(dir $@)
	scripts/ui-embed $@ ui $(UI_FILES)
$(BUILD)/obj/gen/ui_files.o: $(BUILD)/gen/ui_files.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<
NODE_LDLIBS = $(MHD_LIBS) $(CRYPTO_LIBS) $(CLUSTER_LDLIBS)
$(NODE_OBJS): CFLAGS += $(MHD_CFLAGS)
$(BUILD)/libnode.a: $(NODE_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^
