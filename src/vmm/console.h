/* Where the guest console (COM1) goes: stdio, a file, or a unix socket that
 * clients attach to (output to all of them, input from any). */
#ifndef TERN_VMM_CONSOLE_H
#define TERN_VMM_CONSOLE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/evloop.h"
#include "devices/serial.h"

#define CONSOLE_MAX_CLIENTS 8

enum console_kind { CONSOLE_STDIO, CONSOLE_FILE, CONSOLE_UNIX };

struct console {
    enum console_kind kind;
    char path[256];
    int out_fd;
    int listen_fd;
    pthread_mutex_t lock;
    int client[CONSOLE_MAX_CLIENTS];
    struct serial *uart;
};

/* spec: "stdio", "file:PATH" or "unix:PATH". */
int console_open(struct console *con, const char *spec, struct err *e);
void console_release(struct console *con);
/* Serial output callback (vCPU threads). */
void console_output(void *ctx, const uint8_t *buf, size_t len);
/* Accepts clients and forwards their input to the UART. */
int console_attach(struct console *con, struct evloop *loop, struct serial *uart);

#endif
