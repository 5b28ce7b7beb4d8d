/* The one version of tern's three programs (tern, ternd, tern-vmm): each
 * prints it for --version, and nodes compare it before a migration. */
#ifndef TERN_COMMON_VERSION_H
#define TERN_COMMON_VERSION_H

#define TERN_VERSION "0.1.0"

#endif
