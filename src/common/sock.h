/* Socket helpers. */
#ifndef TERN_COMMON_SOCK_H
#define TERN_COMMON_SOCK_H

#include <stddef.h>

/* Listening unix stream socket at path (an existing socket file is replaced,
 * any other file is not). fd or -errno. */
int sock_listen_unix(const char *path);
/* Connected unix stream socket. fd or -errno. */
int sock_connect_unix(const char *path);
/* Writes all of buf, retrying on EINTR/EAGAIN with poll. 0 or -errno. */
int sock_write_all(int fd, const void *buf, size_t len);
/* Reads exactly len bytes of a blocking fd, retrying on EINTR. 0, or
 * -ECONNRESET when the peer closed first, or -errno. */
int sock_read_all(int fd, void *buf, size_t len);

#endif
