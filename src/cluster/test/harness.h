/* Shared by the files of the cluster-etcd-test program: TAP output, time,
 * and the three etcd members it runs. */
#ifndef TERN_CLUSTER_TEST_HARNESS_H
#define TERN_CLUSTER_TEST_HARNESS_H

#include "cluster/etcd.h"
#include "cluster/node.h"
#include "cluster/server.h"

#define MEMBERS 3
/* the client's whole-call deadline plus room for a loaded 2-core host */
#define FAST_MS 6500

extern struct etcd_server servers[MEMBERS];
extern char endpoints[512];

/* "ok - ..." or "not ok - ..." (counted). */
void check(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int checks_failed(void);
long long now_ms(void);
void sleep_ms(long ms);
/* Linearizable reads until one succeeds: ms it took, -1 after limit_ms. */
long long wait_quorate(struct etcd_client *c, long long limit_ms);
/* 1 online, 0 offline, -1 not listed or error */
int node_state(struct etcd_client *c, const char *name);

/* cluster_etcd_ha.c: membership, ownership and the handover, locks */
void run_cluster_tests(struct etcd_client *c, struct etcd_client *other);
/* cluster_etcd_quorum.c: two members frozen, then stopped, then back */
void test_quorum_frozen(struct etcd_client *c, struct node *n1);
void test_quorum_stopped(struct etcd_client *c, struct node *n1);

#endif
