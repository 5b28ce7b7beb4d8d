#include "devices/i8042.h"

#include <string.h>

void i8042_init(struct i8042 *kbd, void (*power_off)(void *), void *ctx)
{
    kbd->power_off = power_off;
    kbd->ctx = ctx;
}

/* Registered at port 0x60 with length 5: offset 0 is data, 4 is command. */
static void i8042_read(void *opaque, uint64_t offset, void *data, unsigned size)
{
    (void)opaque;
    (void)offset;
    /* status 0: output buffer empty, input buffer empty, so the guest's
     * wait loops before the reset command end at once */
    memset(data, 0, size);
}

static void i8042_write(void *opaque, uint64_t offset, const void *data, unsigned size)
{
    struct i8042 *kbd = opaque;
    if (offset == I8042_CMD_PORT - I8042_DATA_PORT && size == 1 &&
        *(const uint8_t *)data == I8042_CMD_RESET && kbd->power_off)
        kbd->power_off(kbd->ctx);
}

const struct bus_ops i8042_ops = {i8042_read, i8042_write};
