# Cluster layer: etcd client (HTTP/JSON gateway via libcurl), membership,
# quorum, VM ownership, and the etcd member supervisor.
CLUSTER_SRCS := $(wildcard src/cluster/*.c)
CLUSTER_OBJS := $(CLUSTER_SRCS:%.c=$(BUILD)/obj/%.o)
CLUSTER_LDLIBS = $(CURL_LIBS) $(COMMON_LDLIBS)
$(BUILD)/libcluster.a: $(CLUSTER_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^
all: $(BUILD)/libcluster.a

# Tests against a real three-member etcd (tests/integration/test_cluster_etcd.sh
# runs it) and the unit tests of this layer, which need libcluster.a and
# libcurl and so get their own link rule (the generic one in tests/module.mk
# has neither).
CLUSTER_TEST_LIBS := $(BUILD)/libcluster.a $(BUILD)/libcommon.a
$(BUILD)/tests/cluster-etcd-test: src/cluster/test/cluster_etcd_test.c src/cluster/test/cluster_etcd_quorum.c \
		src/cluster/test/cluster_etcd_ha.c src/cluster/test/harness.c src/cluster/test/harness.h \
		$(CLUSTER_TEST_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $(filter %.c,$^) $(CLUSTER_TEST_LIBS) $(CLUSTER_LDLIBS) $(LDLIBS)
test-bins: $(BUILD)/tests/cluster-etcd-test
$(BUILD)/tests/unit/test_cluster_codec $(BUILD)/tests/unit/test_vmconf $(BUILD)/tests/unit/test_ha_conf: \
		$(BUILD)/tests/unit/%: tests/unit/%.c $(CLUSTER_TEST_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CMOCKA_CFLAGS) -o $@ $< $(CLUSTER_TEST_LIBS) \
		$(CLUSTER_LDLIBS) $(LDLIBS) $(CMOCKA_LIBS)
