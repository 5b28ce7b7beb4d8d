/* Just enough of the i8042 keyboard controller for the reset line that
 * ACPI-less guests (tern-guest, Linux with reboot=k) use to power off. */
#ifndef TERN_DEVICES_I8042_H
#define TERN_DEVICES_I8042_H

#include "devices/bus.h"

#define I8042_DATA_PORT 0x60
#define I8042_CMD_PORT 0x64
#define I8042_CMD_RESET 0xfe

struct i8042 {
    void (*power_off)(void *ctx);
    void *ctx;
};

void i8042_init(struct i8042 *kbd, void (*power_off)(void *), void *ctx);
extern const struct bus_ops i8042_ops;

#endif
