#include "migrate/hello.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "migrate/protocol.h"
#include "vmm/vm.h"

static json_t *nets_json(struct vm *vm)
{
    json_t *nets = json_array();
    for (unsigned i = 0; i < vm->nnets; i++) {
        char mac[18];
        virtio_net_format_mac(vm->net[i].mac, mac);
        json_array_append_new(nets, json_pack("{s:s}", "mac", mac));
    }
    return nets;
}

static json_t *config_json(struct vm *vm, bool paused)
{
    json_t *disks = json_array();
    for (unsigned i = 0; i < vm->ndisks; i++)
        json_array_append_new(disks, json_pack("{s:I, s:b, s:b}", "size",
                                               (json_int_t)(vm->disk[i].capacity * 512),
                                               "readonly", vm->disk[i].readonly, "shared",
                                               vm->disk[i].shared));
    json_t *cfg = json_pack(
        "{s:s, s:I, s:i, s:s, s:b, s:o}", "name", vm->config.name ? vm->config.name : "",
        "memory", (json_int_t)vm->config.memory, "cpus", (int)vm->ncpus, "cpu_model",
        vm->config.cpu_model, "paused", paused, "disks", disks);
    if (cfg && vm->nnets)
        json_object_set_new(cfg, "nets", nets_json(vm));
    return cfg;
}

int hello_encode(struct vm *vm, bool paused, uint64_t features, struct buf *out,
                 struct err *e)
{
    json_t *cfg = config_json(vm, paused);
    char *text = cfg ? json_dumps(cfg, JSON_COMPACT) : NULL;
    json_decref(cfg);
    if (!text)
        return err_set(e, ENOMEM, "hello: out of memory");
    buf_put_u16(out, MIG_VERSION_MIN);
    buf_put_u16(out, MIG_VERSION_MAX);
    buf_put_u32(out, 0);
    buf_put_u64(out, features);
    buf_put_str(out, text);
    free(text);
    buf_put_u32(out, vm->cpuid->nent);
    buf_put(out, vm->cpuid->entries, vm->cpuid->nent * sizeof(vm->cpuid->entries[0]));
    return out->oom ? err_set(e, ENOMEM, "hello: out of memory") : 0;
}

static int json_uint(json_t *cfg, const char *key, uint64_t min, uint64_t max,
                     uint64_t *out, struct err *e)
{
    json_t *v = json_object_get(cfg, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        (uint64_t)json_integer_value(v) < min || (uint64_t)json_integer_value(v) > max)
        return err_set(e, EPROTO, "hello: '%s' missing or out of range", key);
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static int json_str(json_t *cfg, const char *key, char *dst, size_t cap, struct err *e)
{
    const char *s = json_string_value(json_object_get(cfg, key));
    if (!s || strlen(s) >= cap)
        return err_set(e, EPROTO, "hello: '%s' missing or too long", key);
    strcpy(dst, s);
    return 0;
}

static int decode_disks(json_t *cfg, struct mig_hello *h, struct err *e)
{
    json_t *disks = json_object_get(cfg, "disks");
    if (!json_is_array(disks) || json_array_size(disks) > HELLO_MAX_DISKS)
        return err_set(e, EPROTO, "hello: 'disks' missing or more than %d",
                       HELLO_MAX_DISKS);
    h->ndisks = (unsigned)json_array_size(disks);
    for (unsigned i = 0; i < h->ndisks; i++) {
        json_t *d = json_array_get(disks, i);
        int rc = json_uint(d, "size", 0, UINT64_MAX >> 1, &h->disk[i].size, e);
        json_t *ro = json_object_get(d, "readonly"), *sh = json_object_get(d, "shared");
        if (!rc && (!json_is_boolean(ro) || !json_is_boolean(sh)))
            rc = err_set(e, EPROTO, "hello: disk %u flags missing", i);
        if (rc)
            return rc;
        h->disk[i].readonly = json_is_true(ro);
        h->disk[i].shared = json_is_true(sh);
    }
    return 0;
}

static int decode_nets(json_t *cfg, struct mig_hello *h, struct err *e)
{
    json_t *nets = json_object_get(cfg, "nets");
    if (!nets)
        return 0;
    if (!json_is_array(nets) || json_array_size(nets) > HELLO_MAX_NETS)
        return err_set(e, EPROTO, "hello: 'nets' not an array of at most %d",
                       HELLO_MAX_NETS);
    h->nnets = (unsigned)json_array_size(nets);
    for (unsigned i = 0; i < h->nnets; i++) {
        const char *mac = json_string_value(
            json_object_get(json_array_get(nets, i), "mac"));
        if (!mac || virtio_net_parse_mac(mac, h->net[i].mac))
            return err_set(e, EPROTO, "hello: net %u: 'mac' missing or malformed", i);
    }
    return 0;
}

static int decode_config(const char *text, uint32_t len, struct mig_hello *h, struct err *e)
{
    json_error_t jerr;
    json_t *cfg = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(cfg)) {
        json_decref(cfg);
        return err_set(e, EPROTO, "hello: config is not a json object");
    }
    uint64_t cpus = 0;
    json_t *paused = json_object_get(cfg, "paused");
    int rc = json_uint(cfg, "memory", VM_MIN_MEMORY, 1ULL << 46, &h->memory, e);
    if (!rc && h->memory % (2ULL << 20))
        rc = err_set(e, EPROTO, "hello: 'memory' is not a multiple of 2 MiB");
    if (!rc)
        rc = json_uint(cfg, "cpus", 1, VM_MAX_CPUS, &cpus, e);
    if (!rc)
        rc = json_str(cfg, "name", h->name, sizeof(h->name), e);
    if (!rc)
        rc = json_str(cfg, "cpu_model", h->cpu_model, sizeof(h->cpu_model), e);
    if (!rc && !json_is_boolean(paused))
        rc = err_set(e, EPROTO, "hello: 'paused' missing");
    if (!rc)
        rc = decode_disks(cfg, h, e);
    if (!rc)
        rc = decode_nets(cfg, h, e);
    h->cpus = (unsigned)cpus;
    h->paused = json_is_true(paused);
    json_decref(cfg);
    return rc;
}

static int decode_cpuid(struct reader *r, struct mig_hello *h, struct err *e)
{
    uint32_t nent = reader_u32(r);
    if (r->bad || nent == 0 || nent > HELLO_MAX_CPUID)
        return err_set(e, EPROTO, "hello: cpuid table of %u entries out of range", nent);
    size_t bytes = nent * sizeof(struct kvm_cpuid_entry2);
    const uint8_t *p = reader_take(r, bytes);
    if (!p)
        return err_set(e, EPROTO, "hello: cpuid table truncated");
    h->cpuid = calloc(1, sizeof(*h->cpuid) + bytes);
    if (!h->cpuid)
        return err_set(e, ENOMEM, "out of memory");
    h->cpuid->nent = nent;
    memcpy(h->cpuid->entries, p, bytes);
    return 0;
}

int hello_decode(const uint8_t *msg, uint32_t len, struct mig_hello *h, struct err *e)
{
    memset(h, 0, sizeof(*h));
    struct reader r;
    reader_init(&r, msg, len);
    h->version_min = reader_u16(&r);
    h->version_max = reader_u16(&r);
    reader_u32(&r);
    h->features = reader_u64(&r);
    uint32_t clen;
    clen = reader_u32(&r);
    if (!r.bad && clen > 64 * 1024)
        return err_set(e, EPROTO, "hello: config of %u bytes, at most 64 KiB", clen);
    const uint8_t *cfg = reader_take(&r, clen);
    if (!cfg)
        return err_set(e, EPROTO, "hello: truncated");
    if (h->version_min > h->version_max || h->version_min > MIG_VERSION_MAX ||
        h->version_max < MIG_VERSION_MIN)
        return err_set(e, EPROTO, "hello: source speaks versions %u-%u, this side %u-%u",
                       h->version_min, h->version_max, MIG_VERSION_MIN, MIG_VERSION_MAX);
    int rc = decode_config((const char *)cfg, clen, h, e);
    if (!rc)
        rc = decode_cpuid(&r, h, e);
    if (!rc && reader_finish(&r))
        rc = err_set(e, EPROTO, "hello: trailing bytes");
    return rc;
}

void hello_release(struct mig_hello *h)
{
    free(h->cpuid);
    h->cpuid = NULL;
}

/* ---- the small messages of the handshake and the handover ---- */

void hello_ack_encode(const struct mig_hello_ack *a, struct buf *out)
{
    buf_put_u16(out, a->version);
    buf_put_u16(out, 0);
    buf_put_u32(out, 0);
    buf_put_u64(out, a->features);
    if (a->features & MIG_F_CHANNELS) {
        buf_put_u32(out, a->channels);
        buf_put_u32(out, 0);
        buf_put_u64(out, a->token);
    }
}

int hello_ack_decode(const uint8_t *msg, uint32_t len, uint64_t offered,
                     struct mig_hello_ack *a, struct err *e)
{
    memset(a, 0, sizeof(*a));
    struct reader r;
    reader_init(&r, msg, len);
    a->version = reader_u16(&r);
    reader_u16(&r);
    reader_u32(&r);
    a->features = reader_u64(&r);
    if (a->features & MIG_F_CHANNELS) {
        a->channels = reader_u32(&r);
        reader_u32(&r);
        a->token = reader_u64(&r);
    }
    if (reader_finish(&r))
        return err_set(e, EPROTO, "malformed HELLO_ACK (%u bytes)", len);
    if (a->version < MIG_VERSION_MIN || a->version > MIG_VERSION_MAX ||
        (a->features & ~offered))
        return err_set(e, EPROTO,
                       "destination chose version %u features 0x%llx, not offered",
                       a->version, (unsigned long long)a->features);
    if ((a->features & MIG_F_CHANNELS) &&
        (a->channels < 2 || a->channels > MIG_CHANNELS_MAX))
        return err_set(e, EPROTO, "destination takes %u channels, not 2..%d", a->channels,
                       MIG_CHANNELS_MAX);
    return 0;
}

void chan_hello_encode(const struct mig_chan_hello *c, struct buf *out)
{
    buf_put_u64(out, c->token);
    buf_put_u32(out, c->index);
    buf_put_u32(out, c->count);
}

int chan_hello_decode(const uint8_t *msg, uint32_t len, struct mig_chan_hello *c,
                      struct err *e)
{
    struct reader r;
    reader_init(&r, msg, len);
    c->token = reader_u64(&r);
    c->index = reader_u32(&r);
    c->count = reader_u32(&r);
    if (reader_finish(&r))
        return err_set(e, EPROTO, "malformed CHANNEL message (%u bytes)", len);
    if (c->count < 2 || c->count > MIG_CHANNELS_MAX || c->index < 1 || c->index >= c->count)
        return err_set(e, EPROTO, "channel %u of %u out of range (2..%d channels)",
                       c->index, c->count, MIG_CHANNELS_MAX);
    return 0;
}

void loaded_encode(uint64_t load_ns, struct buf *out)
{
    buf_put_u64(out, load_ns);
}

int loaded_decode(const uint8_t *msg, uint32_t len, uint64_t *load_ns, struct err *e)
{
    struct reader r;
    reader_init(&r, msg, len);
    *load_ns = reader_u64(&r);
    return reader_finish(&r) ? err_set(e, EPROTO, "malformed LOADED (%u bytes)", len) : 0;
}

void running_encode(const struct mig_running *run, struct buf *out)
{
    buf_put_u64(out, run->dest_ns);
    buf_put_u64(out, run->paused);
}

int running_decode(const uint8_t *msg, uint32_t len, struct mig_running *run, struct err *e)
{
    struct reader r;
    reader_init(&r, msg, len);
    run->dest_ns = reader_u64(&r);
    uint64_t paused = reader_u64(&r);
    if (reader_finish(&r) || paused > 1)
        return err_set(e, EPROTO, "malformed RUNNING (%u bytes)", len);
    run->paused = paused;
    return 0;
}
