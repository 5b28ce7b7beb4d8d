/* The names of tern's things (nodes, VMs, storages, clusters, volumes):
 * one rule for ternd and the CLI. Names go into etcd keys and file paths,
 * so the rule keeps "a/b" or ".." from ever addressing something else. */
#ifndef TERN_COMMON_NAME_H
#define TERN_COMMON_NAME_H

#include "common/err.h"

#define TERN_NAME_MAX 63

/* 1..TERN_NAME_MAX characters of [A-Za-z0-9._-], not starting with '.' or
 * '-'. what names the kind in the message ("node name", "vm id"); e may be
 * NULL for a yes or no. */
int name_check(const char *name, const char *what, struct err *e);

#endif
