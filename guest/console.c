/* Serial input at CPL3: lines typed on the console come back as
 * `ECHO <line>`, and the modem's ring indicator is the power button
 * (tern-vmm's `powerdown` command raises it; there is no ACPI here).
 * Reading the UART takes the CPL0 gate, which kvm_pvm emulates slowly, so
 * the BSP polls it only every CONSOLE_POLL_MS. */
#include "guest.h"

#define CONSOLE_POLL_MS 50
#define CONSOLE_LINE_MAX 200
#define UART_MSR_RI 0x40

/* In guest RAM, so a half-typed line survives a live migration. */
static char line[CONSOLE_LINE_MAX + 1];
static uint32_t line_len;
static uint64_t next_poll_ns;

static void console_byte(uint8_t c)
{
    if (c == '\r' || c == '\n') {
        if (line_len) {
            line[line_len] = '\0';
            print("ECHO %s", line);
        }
        line_len = 0;
    } else if (c == 0x7f || c == 0x08) {
        if (line_len)
            line_len--;
    } else if (c >= 0x20 && line_len < CONSOLE_LINE_MAX) {
        line[line_len++] = (char)c;
    }
}

void console_step(uint64_t now)
{
    if (now < next_poll_ns)
        return;
    next_poll_ns = now + CONSOLE_POLL_MS * NSEC_PER_MSEC;
    uint8_t buf[64];
    uint64_t r = gate_call(GATE_CONSOLE_READ, (uint64_t)buf, sizeof(buf));
    uint32_t n = (uint32_t)r;
    for (uint32_t i = 0; i < n && i < sizeof(buf); i++)
        console_byte(buf[i]);
    if ((r >> 32) & UART_MSR_RI) {
        print("POWER BUTTON");
        power_off();
    }
}
