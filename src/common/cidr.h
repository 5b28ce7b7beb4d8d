/* CIDR networks ("10.0.1.0/24", "fd00::/64"): the migration network of the
 * cluster options, checked alike by ternd and the CLI, and which of a
 * node's addresses lies in it. */
#ifndef TERN_COMMON_CIDR_H
#define TERN_COMMON_CIDR_H

#include <stdbool.h>

#include "common/err.h"

/* The prefix length in range for its family and no host bits set. */
int cidr_check(const char *cidr, struct err *e);
/* *inside: addr (IPv4 or IPv6, "[v6]" too) lies in cidr. An address of the
 * other family is simply outside; a bad cidr or addr is -EINVAL. */
int cidr_contains(const char *cidr, const char *addr, bool *inside, struct err *e);

#endif
