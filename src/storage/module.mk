# Local disks: the NBD server of a destination and the mirror jobs of a
# source (libnbd is the client); between migrate/ and devices/.
STORAGE_SRCS := $(wildcard src/storage/*.c)
STORAGE_OBJS := $(STORAGE_SRCS:%.c=$(BUILD)/obj/%.o)
NBD_LIBS = $(shell pkg-config --libs libnbd)
STORAGE_LDLIBS = $(NBD_LIBS) $(SSL_LIBS)
$(BUILD)/libstorage.a: $(STORAGE_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^
