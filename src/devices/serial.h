/* 8250/16550A UART as COM1, the guest console. */
#ifndef TERN_DEVICES_SERIAL_H
#define TERN_DEVICES_SERIAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "common/devstate.h"
#include "devices/bus.h"

#define SERIAL_COM1_PORT 0x3f8
#define SERIAL_COM1_IRQ 4
#define SERIAL_RX_FIFO 64

/* Everything a migration must carry: the register file and the receive FIFO. */
struct serial_regs {
    uint8_t ier, lcr, mcr, lsr, msr, scr, fcr;
    uint8_t dll, dlm;
    uint8_t thr_irq; /* THR-empty interrupt latched, cleared by IIR read */
    uint8_t rx_len, rx_head;
    uint8_t rx[SERIAL_RX_FIFO];
};

struct serial {
    pthread_mutex_t lock;
    struct serial_regs regs;
    struct irq_line irq;
    void (*output)(void *ctx, const uint8_t *buf, size_t len);
    void *output_ctx;
};

void serial_init(struct serial *uart, struct irq_line irq,
                 void (*output)(void *, const uint8_t *, size_t), void *ctx);
void serial_release(struct serial *uart);
/* Bytes typed on the console; returns how many fit in the FIFO. */
size_t serial_input(struct serial *uart, const uint8_t *buf, size_t len);
extern const struct bus_ops serial_ops;
/* Section "serial" version 1: the register file and the receive FIFO. */
extern const struct devstate_ops serial_state_ops;

#endif
