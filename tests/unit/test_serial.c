/* Unit tests for src/devices/serial.c: the 16550A register file as the Linux
 * 8250 driver and tern-guest use it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "devices/serial.h"

enum { RBR_THR = 0, IER = 1, IIR_FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };
#define LCR_DLAB 0x80
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define IER_RDI 0x01
#define IER_THRI 0x02
#define IIR_NONE 0x01
#define IIR_THRI 0x02
#define IIR_RDI 0x04

struct fixture {
    struct serial uart;
    uint8_t out[4096];
    size_t out_len;
    unsigned out_calls;
    int level;
    unsigned raises;
    unsigned gsi;
};

static void output(void *ctx, const uint8_t *buf, size_t len)
{
    struct fixture *f = ctx;
    assert_true(f->out_len + len <= sizeof(f->out));
    memcpy(f->out + f->out_len, buf, len);
    f->out_len += len;
    f->out_calls++;
}

static void irq_set(void *ctx, unsigned gsi, int level)
{
    struct fixture *f = ctx;
    if (level && !f->level)
        f->raises++;
    f->level = level;
    f->gsi = gsi;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    struct irq_line line = {irq_set, f, SERIAL_COM1_IRQ, 0};
    serial_init(&f->uart, line, output, f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    serial_release(&f->uart);
    free(f);
    return 0;
}

static uint8_t rd(struct fixture *f, uint64_t reg)
{
    uint8_t v = 0xaa;
    serial_ops.read(&f->uart, reg, &v, 1);
    return v;
}

static void wr(struct fixture *f, uint64_t reg, uint8_t v)
{
    serial_ops.write(&f->uart, reg, &v, 1);
}

static void reset_state(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(rd(f, LSR), LSR_THRE | LSR_TEMT); /* 0x60 */
    assert_int_equal(rd(f, IER), 0);
    assert_int_equal(rd(f, IIR_FCR), IIR_NONE);
    assert_int_equal(rd(f, LCR), 0);
    assert_int_equal(rd(f, MSR) & 0xb0, 0xb0); /* DCD, DSR, CTS */
    assert_int_equal(rd(f, RBR_THR), 0);       /* empty FIFO */
    assert_int_equal(f->level, 0);
    assert_int_equal(f->out_len, 0);
}

static void output_bytes(void **state)
{
    struct fixture *f = *state;
    const char *msg = "hello, tern\r\n";
    for (const char *p = msg; *p; p++) {
        wr(f, RBR_THR, (uint8_t)*p);
        /* the byte left at once */
        assert_int_equal(rd(f, LSR) & (LSR_THRE | LSR_TEMT), LSR_THRE | LSR_TEMT);
    }
    assert_int_equal(f->out_len, strlen(msg));
    assert_memory_equal(f->out, msg, strlen(msg));
    assert_int_equal(f->out_calls, strlen(msg));
    /* all 256 byte values pass through unchanged */
    f->out_len = 0;
    for (unsigned i = 0; i < 256; i++)
        wr(f, RBR_THR, (uint8_t)i);
    assert_int_equal(f->out_len, 256);
    for (unsigned i = 0; i < 256; i++)
        assert_int_equal(f->out[i], i);
    /* no THRI interrupt without IER */
    assert_int_equal(f->level, 0);
}

static void no_output_callback(void **state)
{
    (void)state;
    struct serial uart;
    serial_init(&uart, (struct irq_line){0}, NULL, NULL);
    uint8_t v = 'x';
    serial_ops.write(&uart, RBR_THR, &v, 1); /* no crash */
    v = IER_THRI;
    serial_ops.write(&uart, IER, &v, 1); /* no irq callback: fine */
    serial_ops.read(&uart, IIR_FCR, &v, 1);
    assert_int_equal(v & 0x0f, IIR_THRI);
    serial_release(&uart);
}

static void dlab_divisor(void **state)
{
    struct fixture *f = *state;
    wr(f, IER, IER_RDI);
    wr(f, LCR, LCR_DLAB | 0x03);
    assert_int_equal(rd(f, RBR_THR), 12); /* 9600 baud default */
    assert_int_equal(rd(f, IER), 0);      /* DLM */
    wr(f, RBR_THR, 1);                    /* 115200 baud */
    wr(f, IER, 0x02);
    assert_int_equal(rd(f, RBR_THR), 1);
    assert_int_equal(rd(f, IER), 0x02);
    assert_int_equal(f->out_len, 0); /* DLL write is not output */
    assert_int_equal(rd(f, LCR), LCR_DLAB | 0x03);
    wr(f, LCR, 0x03);
    /* back to data and IER: IER kept its value, divisor kept too */
    assert_int_equal(rd(f, IER), IER_RDI);
    assert_int_equal(f->uart.regs.dll, 1);
    assert_int_equal(f->uart.regs.dlm, 2);
    wr(f, RBR_THR, 'A');
    assert_int_equal(f->out_len, 1);
    assert_int_equal(f->out[0], 'A');
    /* with DLAB set, input stays in the FIFO until DLAB is cleared */
    uint8_t b = 'z';
    assert_int_equal(serial_input(&f->uart, &b, 1), 1);
    wr(f, LCR, LCR_DLAB);
    assert_int_equal(rd(f, RBR_THR), 1); /* DLL, not 'z' */
    wr(f, LCR, 0);
    assert_int_equal(rd(f, RBR_THR), 'z');
}

static void thri_interrupt(void **state)
{
    struct fixture *f = *state;
    wr(f, IER, IER_THRI);
    assert_int_equal(f->level, 1); /* THR is empty */
    assert_int_equal(f->gsi, SERIAL_COM1_IRQ);
    assert_int_equal(rd(f, IIR_FCR) & 0x0f, IIR_THRI);
    assert_int_equal(f->level, 0); /* IIR read cleared it */
    assert_int_equal(rd(f, IIR_FCR) & 0x0f, IIR_NONE);
    /* sending a byte raises it again */
    wr(f, RBR_THR, 'x');
    assert_int_equal(f->level, 1);
    assert_int_equal(f->raises, 2);
    assert_int_equal(rd(f, IIR_FCR) & 0x0f, IIR_THRI);
    assert_int_equal(f->level, 0);
    /* disabling THRI lowers a pending one */
    wr(f, RBR_THR, 'y');
    assert_int_equal(f->level, 1);
    wr(f, IER, 0);
    assert_int_equal(f->level, 0);
    assert_int_equal(rd(f, IIR_FCR) & 0x0f, IIR_NONE);
}

static void fifo_bits_in_iir(void **state)
{
    struct fixture *f = *state;
    wr(f, IIR_FCR, 0x01); /* enable FIFOs */
    assert_int_equal(rd(f, IIR_FCR), 0xc0 | IIR_NONE);
    wr(f, IIR_FCR, 0x00);
    assert_int_equal(rd(f, IIR_FCR), IIR_NONE);
}

static void input_in_order(void **state)
{
    struct fixture *f = *state;
    const uint8_t in[] = "ls -l\n";
    assert_int_equal(serial_input(&f->uart, in, 6), 6);
    assert_true(rd(f, LSR) & LSR_DR);
    assert_int_equal(f->level, 0); /* RDI not enabled */
    for (unsigned i = 0; i < 6; i++) {
        assert_true(rd(f, LSR) & LSR_DR);
        assert_int_equal(rd(f, RBR_THR), in[i]);
    }
    assert_false(rd(f, LSR) & LSR_DR);
    assert_int_equal(rd(f, RBR_THR), 0);
    /* the ring wraps: many small batches */
    for (unsigned round = 0; round < 50; round++) {
        uint8_t b[3] = {(uint8_t)round, (uint8_t)(round + 100), (uint8_t)(round + 200)};
        assert_int_equal(serial_input(&f->uart, b, 3), 3);
        for (unsigned i = 0; i < 3; i++)
            assert_int_equal(rd(f, RBR_THR), b[i]);
        assert_false(rd(f, LSR) & LSR_DR);
    }
}

static void input_interrupt(void **state)
{
    struct fixture *f = *state;
    wr(f, IER, IER_RDI);
    assert_int_equal(f->level, 0);
    uint8_t b[2] = {'a', 'b'};
    assert_int_equal(serial_input(&f->uart, b, 2), 2);
    assert_int_equal(f->level, 1);
    assert_int_equal(rd(f, IIR_FCR) & 0x0f, IIR_RDI);
    assert_int_equal(f->level, 1); /* IIR read does not clear RDI */
    assert_int_equal(rd(f, RBR_THR), 'a');
    assert_int_equal(f->level, 1);
    assert_int_equal(rd(f, RBR_THR), 'b');
    assert_int_equal(f->level, 0); /* FIFO drained */
    assert_int_equal(rd(f, IIR_FCR) & 0x0f, IIR_NONE);
    /* RDI takes priority over THRI */
    wr(f, IER, IER_RDI | IER_THRI);
    assert_int_equal(serial_input(&f->uart, b, 1), 1);
    assert_int_equal(rd(f, IIR_FCR) & 0x0f, IIR_RDI);
    assert_int_equal(rd(f, RBR_THR), 'a');
    assert_int_equal(rd(f, IIR_FCR) & 0x0f, IIR_THRI);
    assert_int_equal(rd(f, IIR_FCR) & 0x0f, IIR_NONE);
    assert_int_equal(f->level, 0);
}

static void fifo_overflow(void **state)
{
    struct fixture *f = *state;
    uint8_t buf[SERIAL_RX_FIFO + 10];
    for (unsigned i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)(i + 1);
    assert_int_equal(serial_input(&f->uart, buf, sizeof(buf)), SERIAL_RX_FIFO);
    assert_int_equal(serial_input(&f->uart, buf, 5), 0); /* full */
    for (unsigned i = 0; i < SERIAL_RX_FIFO; i++)
        assert_int_equal(rd(f, RBR_THR), i + 1); /* extras dropped */
    assert_false(rd(f, LSR) & LSR_DR);
    /* partly full: only the room left is taken */
    assert_int_equal(serial_input(&f->uart, buf, SERIAL_RX_FIFO - 4), SERIAL_RX_FIFO - 4);
    assert_int_equal(serial_input(&f->uart, buf, 10), 4);
    for (unsigned i = 0; i < SERIAL_RX_FIFO - 4; i++)
        assert_int_equal(rd(f, RBR_THR), buf[i]);
    for (unsigned i = 0; i < 4; i++)
        assert_int_equal(rd(f, RBR_THR), buf[i]);
    assert_false(rd(f, LSR) & LSR_DR);
    assert_int_equal(serial_input(&f->uart, buf, 0), 0);
    assert_false(rd(f, LSR) & LSR_DR);
}

static void scratch_and_mcr(void **state)
{
    struct fixture *f = *state;
    wr(f, SCR, 0x5a);
    assert_int_equal(rd(f, SCR), 0x5a);
    wr(f, MCR, 0xff);
    assert_int_equal(rd(f, MCR), 0x1f);
    /* loopback: bytes do not reach the console */
    wr(f, RBR_THR, 'q');
    assert_int_equal(f->out_len, 0);
    wr(f, MCR, 0x0b);
    wr(f, RBR_THR, 'r');
    assert_int_equal(f->out_len, 1);
    /* LSR and MSR are read-only */
    wr(f, LSR, 0);
    assert_int_equal(rd(f, LSR), LSR_THRE | LSR_TEMT);
    uint8_t msr = rd(f, MSR);
    wr(f, MSR, 0);
    assert_int_equal(rd(f, MSR), msr);
}

/* Section "serial" version 1 as docs/protocol.md gives it: ier, lcr, mcr,
 * lsr, msr, scr, fcr, dll, dlm, thr_irq, rx_len, rx_head, the 64-byte FIFO;
 * a load of it saves the same bytes again, and a bad FIFO is refused. */
static void saved_state_layout(void **state)
{
    struct fixture *f = *state;
    struct serial_regs *r = &f->uart.regs;
    uint8_t *fields[] = {&r->ier, &r->lcr, &r->mcr, &r->lsr,     &r->msr,    &r->scr,
                         &r->fcr, &r->dll, &r->dlm, &r->thr_irq, &r->rx_len, &r->rx_head};
    for (unsigned i = 0; i < 12; i++)
        *fields[i] = (uint8_t)(i + 1);
    for (unsigned i = 0; i < SERIAL_RX_FIFO; i++)
        r->rx[i] = (uint8_t)(0x80 + i);
    struct buf b;
    buf_init(&b);
    struct err e = {""};
    assert_int_equal(serial_state_ops.save(&f->uart, &b, &e), 0);
    assert_int_equal(b.len, 12 + SERIAL_RX_FIFO);
    for (unsigned i = 0; i < 12; i++)
        assert_int_equal(b.data[i], i + 1);
    for (unsigned i = 0; i < SERIAL_RX_FIFO; i++)
        assert_int_equal(b.data[12 + i], 0x80 + i);

    struct fixture *g = calloc(1, sizeof(*g));
    assert_non_null(g);
    struct irq_line line = {irq_set, g, SERIAL_COM1_IRQ, 0};
    serial_init(&g->uart, line, output, g);
    struct reader rd_;
    reader_init(&rd_, b.data, b.len);
    assert_int_equal(serial_state_ops.load(&g->uart, &rd_, 1, &e), 0);
    assert_memory_equal(&g->uart.regs, r, sizeof(*r));
    b.data[10] = SERIAL_RX_FIFO + 1; /* rx_len */
    reader_init(&rd_, b.data, b.len);
    assert_int_not_equal(serial_state_ops.load(&g->uart, &rd_, 1, &e), 0);
    assert_non_null(strstr(e.msg, "fifo 65"));
    reader_init(&rd_, b.data, b.len - 1);
    assert_int_not_equal(serial_state_ops.load(&g->uart, &rd_, 1, &e), 0);
    assert_non_null(strstr(e.msg, "wrong size"));
    assert_memory_equal(&g->uart.regs, r, sizeof(*r)); /* untouched */
    serial_release(&g->uart);
    free(g);
    buf_release(&b);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(reset_state),     T(output_bytes),       cmocka_unit_test(no_output_callback),
        T(dlab_divisor),    T(thri_interrupt),     T(fifo_bits_in_iir),
        T(input_in_order),  T(input_interrupt),    T(fifo_overflow),
        T(scratch_and_mcr), T(saved_state_layout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
