# The CLI's library: commands, REST client, printing; its main is
# src/bin/tern.c. It talks to the local ternd over its REST API only
# (libcurl, jansson) and links neither the cluster layer nor etcd code.
CLI_SRCS := $(wildcard src/cli/*.c)
CLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/obj/%.o)
CLI_LDLIBS = $(CURL_LIBS) $(COMMON_LDLIBS)
$(BUILD)/libcli.a: $(CLI_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^
