/* The etcd gateway's encodings: base64 keys and values, JSON numbers as
 * strings. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/codec.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *codec_b64_encode(const void *data, size_t len)
{
    const unsigned char *in = data;
    char *out = malloc((len + 2) / 3 * 4 + 1);
    if (!out)
        return NULL;
    char *o = out;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        *o++ = b64_alphabet[(v >> 18) & 63];
        *o++ = b64_alphabet[(v >> 12) & 63];
        *o++ = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
        *o++ = i + 2 < len ? b64_alphabet[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

static int b64_value(char ch)
{
    const char *p = ch ? strchr(b64_alphabet, ch) : NULL;
    return p ? (int)(p - b64_alphabet) : -1;
}

int codec_b64_decode(const char *text, void **out, size_t *len)
{
    size_t n = strlen(text);
    while (n > 0 && text[n - 1] == '=')
        n--;
    if (n % 4 == 1)
        return -EINVAL; /* one leftover character cannot carry a byte */
    unsigned char *buf = malloc(n / 4 * 3 + 3);
    if (!buf)
        return -ENOMEM;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value(text[i]);
        if (v < 0) {
            free(buf);
            return -EINVAL;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (unsigned char)(acc >> bits);
        }
    }
    buf[o] = '\0';
    *out = buf;
    *len = o;
    return 0;
}

json_t *codec_b64_json(const char *text)
{
    char *enc = codec_b64_encode(text, strlen(text));
    if (!enc)
        return NULL;
    json_t *j = json_string(enc);
    free(enc);
    return j;
}

json_t *codec_prefix_end_json(const char *prefix)
{
    size_t n = strlen(prefix);
    if (n == 0)
        return NULL;
    unsigned char *end = malloc(n);
    if (!end)
        return NULL;
    memcpy(end, prefix, n);
    /* increment the last byte that is not 0xff, drop the ones after it */
    while (n > 0 && end[n - 1] == 0xff)
        n--;
    json_t *j = NULL;
    if (n > 0) {
        end[n - 1]++;
        char *enc = codec_b64_encode(end, n);
        j = enc ? json_string(enc) : NULL;
        free(enc);
    }
    free(end);
    return j;
}

int64_t codec_int64(const json_t *obj, const char *name, int64_t def)
{
    const json_t *v = json_object_get(obj, name);
    if (json_is_integer(v))
        return json_integer_value(v);
    if (!json_is_string(v))
        return def;
    char *end;
    errno = 0;
    long long n = strtoll(json_string_value(v), &end, 10);
    return errno || *end || end == json_string_value(v) ? def : n;
}

uint64_t codec_uint64(const json_t *obj, const char *name, uint64_t def)
{
    const json_t *v = json_object_get(obj, name);
    if (json_is_integer(v))
        return (uint64_t)json_integer_value(v);
    if (!json_is_string(v))
        return def;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(json_string_value(v), &end, 10);
    return errno || *end || end == json_string_value(v) ? def : n;
}

json_t *codec_int64_json(int64_t v)
{
    char text[24];
    snprintf(text, sizeof(text), "%" PRId64, v);
    return json_string(text);
}

int codec_kv_parse(const json_t *obj, struct etcd_kv *kv, struct err *e)
{
    const char *k = json_string_value(json_object_get(obj, "key"));
    const char *v = json_string_value(json_object_get(obj, "value"));
    void *key = NULL, *value = NULL;
    size_t key_len, value_len = 0;
    if (!k || codec_b64_decode(k, &key, &key_len) < 0)
        return err_set(e, EPROTO, "etcd: answer holds a key that is not base64");
    /* an empty value is left out of the JSON (proto3 default) */
    if (codec_b64_decode(v ? v : "", &value, &value_len) < 0) {
        int rc = err_set(e, EPROTO, "etcd: value of key %s is not base64", (char *)key);
        free(key);
        return rc;
    }
    kv->key = key;
    kv->value = value;
    kv->value_len = value_len;
    kv->create_revision = codec_int64(obj, "create_revision", 0);
    kv->mod_revision = codec_int64(obj, "mod_revision", 0);
    kv->version = codec_int64(obj, "version", 0);
    kv->lease = codec_int64(obj, "lease", 0);
    return 0;
}

int codec_kvs_parse(const json_t *range, struct etcd_kvs *out, struct err *e)
{
    const json_t *arr = json_object_get(range, "kvs");
    size_t n = json_is_array(arr) ? json_array_size(arr) : 0;
    out->revision = codec_int64(json_object_get(range, "header"), "revision", 0);
    if (n == 0)
        return 0;
    out->items = calloc(n, sizeof(*out->items));
    if (!out->items)
        return err_set(e, ENOMEM, "etcd: out of memory for %zu keys", n);
    for (size_t i = 0; i < n; i++) {
        int rc = codec_kv_parse(json_array_get(arr, i), &out->items[i], e);
        if (rc)
            return rc; /* caller's etcd_kvs_release frees what was parsed */
        out->count++;
    }
    return 0;
}

int codec_grpc_errno(int code, const char *message, int *quorum)
{
    *quorum = 0;
    switch (code) {
    case 14: /* unavailable: "request timed out", "no leader", "leader changed" */
    case 4: /* deadline exceeded */ *quorum = 1; return -ETCD_NOT_QUORATE;
    case 2: /* unknown: the gateway's own "context deadline exceeded" */
        if (message && strstr(message, "deadline")) {
            *quorum = 1;
            return -ETCD_NOT_QUORATE;
        }
        return -EIO;
    case 3: return -EINVAL;
    case 5: return -ENOENT;
    case 6: return -EEXIST;
    case 7:
    case 16: return -EACCES;
    case 8: return -ENOSPC; /* e.g. "database space exceeded" */
    case 9: return -EPERM;
    case 10: return -EAGAIN;
    case 11: return -ERANGE; /* e.g. a compacted revision */
    default: return -EIO;
    }
}
