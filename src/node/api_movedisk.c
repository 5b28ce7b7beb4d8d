/* POST /vms/{id}/move-disk on the VM's owner (docs/api.md): body
 * {"disk": "disk0", "storage": "nas2", "delete_source": false}; the move
 * runs as a task (node/movedisk.c). */
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdio.h>
#include <string.h>

#include "common/jsonf.h"
#include "common/name.h"
#include "node/api_vmops.h"
#include "node/ctx.h"
#include "node/http.h"
#include "node/movedisk.h"

/* "disk0".."disk7" */
static int disk_index(const char *name, unsigned *i, struct err *e)
{
    char quoted[JSONF_PRINTABLE_MAX];
    if (strlen(name) != 5 || strncmp(name, "disk", 4) != 0 || name[4] < '0' ||
        name[4] > '7')
        return err_set(e, EINVAL, "move-disk: 'disk' must be disk0..disk7, not '%s'",
                       jsonf_printable(name, quoted));
    *i = (unsigned)(name[4] - '0');
    return 0;
}

static int parse(json_t *body, unsigned *disk, const char **storage, bool *del,
                 struct err *e)
{
    static const char *const known[] = {"disk", "storage", "delete_source", NULL};
    const char *key = body ? jsonf_unknown_key(body, known) : NULL, *name = NULL;
    char quoted[JSONF_PRINTABLE_MAX];
    if (!body)
        return err_set(e, EINVAL,
                       "move-disk: a body with 'disk' and 'storage' is required");
    if (key)
        return err_set(e, EINVAL, "move-disk: unknown option '%s'",
                       jsonf_printable(key, quoted));
    int rc = jsonf_string(body, "disk", true, &name, "move-disk", e);
    if (!rc)
        rc = disk_index(name, disk, e);
    if (!rc)
        rc = jsonf_string(body, "storage", true, storage, "move-disk", e);
    if (!rc)
        rc = name_check(*storage, "storage name", e);
    if (!rc)
        rc = jsonf_bool(body, "delete_source", false, del, "move-disk", e);
    return rc;
}

static void move_disk(struct api_req *req, struct reply *r)
{
    uint32_t id;
    if (api_route_to_owner(req, r, &id))
        return;
    unsigned disk = 0;
    const char *storage = NULL;
    bool del = false;
    struct err e;
    char task[TASK_ID_MAX];
    int rc = parse(req->body, &disk, &storage, &del, &e);
    if (!rc)
        rc = movedisk_start(req->ctx, id, disk, storage, del, task, &e);
    if (rc < 0)
        return reply_errno(r, rc, &e);
    reply_json(r, MHD_HTTP_OK, json_pack("{s:s}", "task", task));
}

const struct api_route api_routes_movedisk[] = {
    {"POST", "/vms/{}/move-disk", move_disk},
    {NULL, NULL, NULL},
};
