/* tern storage ...: the directories VM disks live in. */
#include <stdbool.h>
#include <stdio.h>

#include "cli/cli.h"
#include "cli/print.h"

static int run_storage_add(struct call *k)
{
    const char *path = call_opt(k, "--path");
    bool shared = call_flag(k, "--shared");
    int rc = check_name("storage name", k->arg[0]);
    if (rc == EXIT_OK && path[0] != '/')
        rc = usage_error("--path '%s' is not absolute", path);
    json_t *ans;
    if (rc == EXIT_OK)
        rc = api(k, "POST", "/storage",
                 json_pack("{sssssb}", "name", k->arg[0], "path", path, "shared", shared),
                 &ans);
    if (rc != EXIT_OK)
        return rc;
    bool is_shared = json_is_true(json_object_get(ans, "shared"));
    return print_answer(k, ans, "added storage '%s' at %s (%s)",
                        jstr(ans, "name", k->arg[0]), jstr(ans, "path", path),
                        is_shared ? "shared" : "local to each node");
}

static int run_storage_list(struct call *k)
{
    return show_listing(k, "/storage", print_storage_list);
}

static int run_storage_remove(struct call *k)
{
    char path[128];
    int rc = check_name("storage name", k->arg[0]);
    if (rc != EXIT_OK)
        return rc;
    snprintf(path, sizeof(path), "/storage/%s", k->arg[0]);
    return api_change(k, "DELETE", path, "removed storage '%s'", k->arg[0]);
}

static const struct cmd_opt storage_add_opts[] = {
    {"--path", "DIR", "absolute directory of the disk files", true, false},
    {"--shared", NULL,
     "the same directory holds the same files on every node "
     "(NFS, a cluster filesystem)",
     false, false},
    {NULL, NULL, NULL, false, false},
};

const struct cmd cmds_storage[] = {
    {"storage", "add", "NAME --path DIR [--shared]", 1, 1, "define a storage for VM disks",
     "A storage is a directory on the nodes where VM disks are files. Without\n"
     "--shared each node has its own directory (a VM with a disk there cannot\n"
     "migrate yet); with --shared all nodes see the same files.\n",
     "  tern storage add local --path /var/lib/tern/images\n"
     "  tern storage add nfs --path /mnt/pve/nfs --shared\n",
     storage_add_opts, run_storage_add},
    {"storage", "list", "", 0, 0, "the storages: name, shared, path",
     "Without quorum prints this node's possibly stale view and exits 3.\n",
     "  tern storage list\n", NULL, run_storage_list},
    {"storage", "remove", "NAME", 1, 1, "remove a storage definition",
     "Refused while a VM's disk is on it.\n", "  tern storage remove nfs\n", NULL,
     run_storage_remove},
    {NULL, NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL},
};
