/* Encoding between tern's C values and the etcd gateway's JSON: keys and
 * values are base64, 64-bit numbers arrive as decimal strings. Internal to
 * src/cluster (no etcd, no network: unit-tested on its own). */
#ifndef TERN_CLUSTER_CODEC_H
#define TERN_CLUSTER_CODEC_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/etcd.h"

/* Standard base64 with padding; malloc'd NUL-terminated text or NULL. */
char *codec_b64_encode(const void *data, size_t len);
/* Decodes text (padding optional); malloc'd buffer with a NUL after the
 * *len bytes. -EINVAL on a character outside the alphabet, -ENOMEM. */
int codec_b64_decode(const char *text, void **out, size_t *len);

/* A JSON string holding base64 of text, NULL on allocation failure. */
json_t *codec_b64_json(const char *text);
/* The key just past every key that starts with prefix (etcd's range_end
 * for a prefix query), base64-encoded. NULL for an empty prefix. */
json_t *codec_prefix_end_json(const char *prefix);

/* Number field that may be a JSON integer or a decimal string; def when
 * missing or malformed. */
int64_t codec_int64(const json_t *obj, const char *name, int64_t def);
uint64_t codec_uint64(const json_t *obj, const char *name, uint64_t def);
/* 64-bit value as the decimal string the gateway expects. */
json_t *codec_int64_json(int64_t v);

/* One element of "kvs" into kv. -EPROTO when the key or value is not
 * base64 (names the key when it can). */
int codec_kv_parse(const json_t *obj, struct etcd_kv *kv, struct err *e);
/* The "kvs" array of a range answer (missing = no keys). */
int codec_kvs_parse(const json_t *range, struct etcd_kvs *out, struct err *e);

/* Maps a gateway error answer {"error","code","message"} to -errno:
 * *quorum set when it means "no majority/leader" (retry elsewhere). */
int codec_grpc_errno(int code, const char *message, int *quorum);

#endif
