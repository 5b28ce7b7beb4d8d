# The programs: one main each, linked with the libraries of its layers and
# the system libraries those use (tern-vmm: no libcurl, no libmicrohttpd).
VMM_PROGRAM_LIBS := $(BUILD)/libmigrate.a $(BUILD)/libstorage.a $(BUILD)/libvmm.a \
	$(BUILD)/libdevices.a \
	$(BUILD)/libcommon.a
$(BUILD)/tern-vmm: $(BUILD)/obj/src/bin/tern-vmm.o $(VMM_PROGRAM_LIBS)
	$(CC) $(CFLAGS) -o $@ $^ $(MIGRATE_LDLIBS) $(LDLIBS)

# the receiving end of a replication sync (docs/replication.md)
$(BUILD)/tern-replica: $(BUILD)/obj/src/bin/tern-replica.o $(VMM_PROGRAM_LIBS)
	$(CC) $(CFLAGS) -o $@ $^ $(MIGRATE_LDLIBS) $(LDLIBS)

$(BUILD)/obj/src/bin/ternd.o: CFLAGS += $(MHD_CFLAGS)
$(BUILD)/ternd: $(BUILD)/obj/src/bin/ternd.o $(BUILD)/libnode.a $(BUILD)/libcluster.a \
		$(BUILD)/libcommon.a
	$(CC) $(CFLAGS) -o $@ $^ $(NODE_LDLIBS) $(LDLIBS)

$(BUILD)/tern: $(BUILD)/obj/src/bin/tern.o $(BUILD)/libcli.a $(BUILD)/libcommon.a
	$(CC) $(CFLAGS) -o $@ $^ $(CLI_LDLIBS) $(LDLIBS)

all: $(BUILD)/tern-vmm $(BUILD)/ternd $(BUILD)/tern $(BUILD)/tern-replica
