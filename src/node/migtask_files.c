#include "node/migtask_files.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "node/ctx.h"

static int write_pem(const char *dir, const char *name, const char *pem, struct err *e)
{
    char path[VMM_PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f || fputs(pem, f) < 0 || fclose(f) != 0)
        return err_set(e, EIO, "%s: cannot write", path);
    chmod(path, 0600);
    return 0;
}

int migtask_tls_dir(struct node_ctx *x, uint32_t vmid, const char *which,
                    const char *peer_cert, char dir[MIGTASK_TLS_DIR_MAX], struct err *e)
{
    const char *run_dir = x->vmms->run_dir;
    snprintf(dir, MIGTASK_TLS_DIR_MAX, "%s/%u", run_dir, vmid);
    mkdir(dir, 0700);
    snprintf(dir, MIGTASK_TLS_DIR_MAX, "%s/%u/%s", run_dir, vmid, which);
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return err_set(e, errno, "%s: %s", dir, strerror(errno));
    int rc = write_pem(dir, "ca.pem", peer_cert, e);
    if (!rc)
        rc = write_pem(dir, "cert.pem", x->secrets->cert_pem, e);
    if (!rc)
        rc = write_pem(dir, "key.pem", x->secrets->key_pem, e);
    return rc;
}

static void handover_path(struct node_ctx *x, uint32_t vmid, char *out, size_t size)
{
    snprintf(out, size, "%s/%u/handover.json", x->vmms->run_dir, vmid);
}

int migtask_handover_write(struct node_ctx *x, uint32_t vmid, const char *role,
                           const struct migtask_handover *h, struct err *e)
{
    char path[VMM_PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/%u", x->vmms->run_dir, vmid);
    mkdir(path, 0700);
    handover_path(x, vmid, path, sizeof(path));
    json_t *o = json_pack("{s:s, s:s, s:s, s:I}", "role", role, "source", h->source,
                          "target", h->target, "rev", (json_int_t)h->rev);
    int rc = o && json_dump_file(o, path, JSON_COMPACT) == 0
                 ? 0
                 : err_set(e, EIO, "%s: cannot write", path);
    json_decref(o);
    return rc;
}

int migtask_handover_read(struct node_ctx *x, uint32_t vmid, struct migtask_handover *h)
{
    char path[VMM_PATH_MAX + 64];
    handover_path(x, vmid, path, sizeof(path));
    json_t *o = json_load_file(path, 0, NULL);
    const char *src = json_string_value(json_object_get(o, "source"));
    const char *dst = json_string_value(json_object_get(o, "target"));
    int rc = src && dst ? 0 : -ENOENT;
    if (!rc) {
        snprintf(h->source, sizeof(h->source), "%s", src);
        snprintf(h->target, sizeof(h->target), "%s", dst);
        h->rev = json_integer_value(json_object_get(o, "rev"));
    }
    json_decref(o);
    return rc;
}
