/* Unit tests for src/storage/replica.c: a replica's side file (a sparse
 * copy, or fresh), its commit by rename and its abort, which leaves the
 * replica as it was (docs/replication.md). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/replica.h"

#define MIB (1ULL << 20)

static char dir[] = "/tmp/tern-replica.XXXXXX";
static char rep[128], side[160];

static int setup(void **state)
{
    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(rep, sizeof(rep), "%s/vm-100-disk0.raw", dir);
    snprintf(side, sizeof(side), "%s%s", rep, REPLICA_SIDE_SUFFIX);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(rep);
    unlink(side);
    rmdir(dir);
    return 0;
}

static void put(const char *path, uint64_t off, char c, size_t len)
{
    char buf[4096];
    memset(buf, c, sizeof(buf));
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    for (size_t n = 0; n < len; n += sizeof(buf))
        assert_int_equal(pwrite(fd, buf, sizeof(buf), (off_t)(off + n)), sizeof(buf));
    close(fd);
}

static char at(const char *path, uint64_t off)
{
    char c = 0;
    int fd = open(path, O_RDONLY);
    assert_int_equal(pread(fd, &c, 1, (off_t)off), 1);
    close(fd);
    return c;
}

static uint64_t allocated(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (uint64_t)st.st_blocks * 512;
}

/* The first sync: no replica, a fresh side file, the rename. */
static void fresh_then_commit(void **state)
{
    (void)state;
    uint64_t size = 0, copied;
    int fd = -1;
    struct err e = {""};
    assert_int_equal(replica_prepare(rep, false, &size, &fd, &copied, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "its size is needed"));
    size = 64 * MIB;
    assert_int_equal(replica_prepare(rep, false, &size, &fd, &copied, &e), 0);
    assert_int_equal(copied, 0);
    put(side, 8 * MIB, 'a', 1 << 20);
    assert_int_equal(replica_commit(rep, fd, &e), 0);
    close(fd);
    assert_int_equal(access(side, F_OK), -1);
    assert_int_equal(at(rep, 8 * MIB), 'a');
}

/* A delta: the side file starts as the replica (holes stay holes); an
 * abort leaves the replica as it was; a commit replaces it. */
static void delta_abort_commit(void **state)
{
    (void)state;
    uint64_t size = 0, copied;
    int fd = -1;
    struct err e = {""};
    assert_int_equal(replica_prepare(rep, false, &size, &fd, &copied, &e), 0);
    assert_int_equal(size, 64 * MIB);
    assert_int_equal(copied, 1 << 20);
    assert_true(allocated(side) <= 2 * MIB);
    assert_int_equal(at(side, 8 * MIB), 'a');
    put(side, 8 * MIB, 'b', 4096);
    close(fd);
    replica_abort(rep);
    assert_int_equal(access(side, F_OK), -1);
    assert_int_equal(at(rep, 8 * MIB), 'a');
    /* a stale side file of a sync that died is replaced */
    close(open(side, O_WRONLY | O_CREAT, 0600));
    assert_int_equal(replica_prepare(rep, false, &size, &fd, &copied, &e), 0);
    put(side, 8 * MIB, 'b', 4096);
    assert_int_equal(replica_commit(rep, fd, &e), 0);
    close(fd);
    assert_int_equal(at(rep, 8 * MIB), 'b');
    assert_int_equal(at(rep, 8 * MIB + 4096), 'a');
}

/* --fresh ignores the replica's content; another size is refused. */
static void fresh_and_size(void **state)
{
    (void)state;
    uint64_t size = 32 * MIB, copied;
    int fd = -1;
    struct err e = {""};
    assert_int_equal(replica_prepare(rep, false, &size, &fd, &copied, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "has 67108864 bytes, the disk 33554432"));
    size = 64 * MIB;
    assert_int_equal(replica_prepare(rep, true, &size, &fd, &copied, &e), 0);
    assert_int_equal(copied, 0);
    assert_int_equal(at(side, 8 * MIB), 0);
    close(fd);
    replica_abort(rep);
    assert_int_equal(at(rep, 8 * MIB), 'b');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fresh_then_commit),
        cmocka_unit_test(delta_abort_commit),
        cmocka_unit_test(fresh_and_size),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
