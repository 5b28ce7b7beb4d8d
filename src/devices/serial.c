#include "devices/serial.h"

#include <errno.h>
#include <string.h>

enum {
    REG_DATA = 0,
    REG_IER = 1,
    REG_IIR_FCR = 2,
    REG_LCR = 3,
    REG_MCR = 4,
    REG_LSR = 5,
    REG_MSR = 6,
    REG_SCR = 7,
};
#define LCR_DLAB 0x80
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define IER_RDI 0x01
#define IER_THRI 0x02
#define IIR_NONE 0x01
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_FIFO 0xc0
#define MCR_LOOP 0x10

void serial_init(struct serial *uart, struct irq_line irq,
                 void (*output)(void *, const uint8_t *, size_t), void *ctx)
{
    memset(uart, 0, sizeof(*uart));
    pthread_mutex_init(&uart->lock, NULL);
    uart->irq = irq;
    uart->output = output;
    uart->output_ctx = ctx;
    uart->regs.lsr = LSR_THRE | LSR_TEMT;
    uart->regs.msr = 0xb0; /* DCD, DSR, CTS: a cable is attached */
    uart->regs.dll = 12;   /* 9600 baud, what the BIOS would leave */
}

void serial_release(struct serial *uart)
{
    pthread_mutex_destroy(&uart->lock);
}

static uint8_t serial_iir(const struct serial_regs *r)
{
    uint8_t fifo = (r->fcr & 1) ? IIR_FIFO : 0;
    if ((r->ier & IER_RDI) && r->rx_len)
        return IIR_RDI | fifo;
    if ((r->ier & IER_THRI) && r->thr_irq)
        return IIR_THRI | fifo;
    return IIR_NONE | fifo;
}

/* Called with the lock held after every register change. */
static void serial_update_irq(struct serial *uart)
{
    irq_line_set(&uart->irq, !(serial_iir(&uart->regs) & IIR_NONE));
}

static uint8_t serial_rx_pop(struct serial_regs *r)
{
    if (!r->rx_len)
        return 0;
    uint8_t c = r->rx[r->rx_head];
    r->rx_head = (uint8_t)((r->rx_head + 1) % SERIAL_RX_FIFO);
    if (--r->rx_len == 0)
        r->lsr &= (uint8_t)~LSR_DR;
    return c;
}

static uint8_t serial_read_reg(struct serial_regs *r, uint64_t reg)
{
    bool dlab = r->lcr & LCR_DLAB;
    switch (reg) {
    case REG_DATA: return dlab ? r->dll : serial_rx_pop(r);
    case REG_IER: return dlab ? r->dlm : r->ier;
    case REG_IIR_FCR: {
        uint8_t iir = serial_iir(r);
        if ((iir & 0x0f) == IIR_THRI)
            r->thr_irq = 0;
        return iir;
    }
    case REG_LCR: return r->lcr;
    case REG_MCR: return r->mcr;
    case REG_LSR: return r->lsr;
    case REG_MSR: return r->msr;
    default: return r->scr;
    }
}

static void serial_read(void *opaque, uint64_t offset, void *data, unsigned size)
{
    struct serial *uart = opaque;
    memset(data, 0, size);
    pthread_mutex_lock(&uart->lock);
    *(uint8_t *)data = serial_read_reg(&uart->regs, offset);
    serial_update_irq(uart);
    pthread_mutex_unlock(&uart->lock);
}

static void serial_write_reg(struct serial *uart, uint64_t reg, uint8_t v)
{
    struct serial_regs *r = &uart->regs;
    bool dlab = r->lcr & LCR_DLAB;
    switch (reg) {
    case REG_DATA:
        if (dlab) {
            r->dll = v;
        } else {
            if (!(r->mcr & MCR_LOOP) && uart->output)
                uart->output(uart->output_ctx, &v, 1);
            r->thr_irq = 1; /* the byte left at once: THR is empty again */
        }
        break;
    case REG_IER:
        if (dlab) {
            r->dlm = v;
        } else {
            /* enabling THRI with an empty THR raises it, as on the chip */
            if ((v & IER_THRI) && !(r->ier & IER_THRI))
                r->thr_irq = 1;
            r->ier = v & 0x0f;
        }
        break;
    case REG_IIR_FCR: r->fcr = v; break;
    case REG_LCR: r->lcr = v; break;
    case REG_MCR: r->mcr = v & 0x1f; break;
    case REG_LSR: break;
    case REG_MSR: break;
    default: r->scr = v; break;
    }
}

static void serial_write(void *opaque, uint64_t offset, const void *data, unsigned size)
{
    struct serial *uart = opaque;
    (void)size;
    pthread_mutex_lock(&uart->lock);
    serial_write_reg(uart, offset, *(const uint8_t *)data);
    serial_update_irq(uart);
    pthread_mutex_unlock(&uart->lock);
}

size_t serial_input(struct serial *uart, const uint8_t *buf, size_t len)
{
    pthread_mutex_lock(&uart->lock);
    struct serial_regs *r = &uart->regs;
    size_t n = 0;
    for (; n < len && r->rx_len < SERIAL_RX_FIFO; n++) {
        r->rx[(r->rx_head + r->rx_len) % SERIAL_RX_FIFO] = buf[n];
        r->rx_len++;
    }
    if (r->rx_len)
        r->lsr |= LSR_DR;
    serial_update_irq(uart);
    pthread_mutex_unlock(&uart->lock);
    return n;
}

const struct bus_ops serial_ops = {serial_read, serial_write};

/* Section "serial" version 1 (docs/protocol.md): the registers, then the
 * receive FIFO. */
static const struct buf_field regs_fields[] = {
    BUF_FIELD(struct serial_regs, ier),    BUF_FIELD(struct serial_regs, lcr),
    BUF_FIELD(struct serial_regs, mcr),    BUF_FIELD(struct serial_regs, lsr),
    BUF_FIELD(struct serial_regs, msr),    BUF_FIELD(struct serial_regs, scr),
    BUF_FIELD(struct serial_regs, fcr),    BUF_FIELD(struct serial_regs, dll),
    BUF_FIELD(struct serial_regs, dlm),    BUF_FIELD(struct serial_regs, thr_irq),
    BUF_FIELD(struct serial_regs, rx_len), BUF_FIELD(struct serial_regs, rx_head),
    BUF_FIELD(struct serial_regs, rx),
};

static int serial_save(void *opaque, struct buf *out, struct err *e)
{
    struct serial *uart = opaque;
    (void)e;
    pthread_mutex_lock(&uart->lock);
    buf_put_fields(out, &uart->regs, BUF_FIELDS(regs_fields));
    pthread_mutex_unlock(&uart->lock);
    return 0;
}

static int serial_load(void *opaque, struct reader *in, uint32_t version, struct err *e)
{
    struct serial *uart = opaque;
    struct serial_regs r = {0};
    (void)version;
    reader_fields(in, &r, BUF_FIELDS(regs_fields));
    if (reader_finish(in))
        return err_set(e, EINVAL, "serial: state has the wrong size");
    if (r.rx_len > SERIAL_RX_FIFO || r.rx_head >= SERIAL_RX_FIFO || r.ier > 0x0f)
        return err_set(e, EINVAL, "serial: fifo %u at %u or ier 0x%x out of range",
                       r.rx_len, r.rx_head, r.ier);
    pthread_mutex_lock(&uart->lock);
    uart->regs = r;
    pthread_mutex_unlock(&uart->lock);
    return 0;
}

static int serial_post_load(void *opaque, struct err *e)
{
    struct serial *uart = opaque;
    (void)e;
    pthread_mutex_lock(&uart->lock);
    serial_update_irq(uart);
    pthread_mutex_unlock(&uart->lock);
    return 0;
}

const struct devstate_ops serial_state_ops = {
    "serial", 1, serial_save, serial_load, serial_post_load,
};
