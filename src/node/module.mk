# ternd's library: config, secrets (token, TLS), REST API (libmicrohttpd),
# etcd member supervision and node membership; its main is src/bin/ternd.c.
# libmicrohttpd only here (target-specific), so the other programs do not
# build against it nor link it.
MHD_CFLAGS = $(shell pkg-config --cflags libmicrohttpd)
MHD_LIBS   = $(shell pkg-config --libs libmicrohttpd)
NODE_SRCS := $(wildcard src/node/*.c)
NODE_GEN_SRCS := $(BUILD)/gen/ui_files.c
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
# Unit tests of this layer that need libnode.a (and OpenSSL): their own link
# rule, as the generic one in tests/module.mk links tern-vmm's libraries.
# test_task: node/task.c without a cluster; test_pki: the cluster CA.
NODE_UNIT_TESTS := $(BUILD)/tests/unit/test_task $(BUILD)/tests/unit/test_pki
$(NODE_UNIT_TESTS): $(BUILD)/tests/unit/%: tests/unit/%.c $(BUILD)/libnode.a \
		$(BUILD)/libcluster.a $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CMOCKA_CFLAGS) -o $@ $< $(filter %.a,$^) $(NODE_LDLIBS) $(LDLIBS) \
		$(CMOCKA_LIBS)
