/* tern vm move-disk: a VM's disk to another storage of its node, running
 * or stopped (docs/api.md "POST /vms/ID/move-disk"). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/follow.h"
#include "cli/print.h"

static int run_move_disk(struct call *k)
{
    uint32_t id;
    int rc = check_vmid(k->arg[0], &id);
    if (rc != EXIT_OK)
        return rc;
    const char *disk = k->arg[1];
    if (strlen(disk) != 5 || strncmp(disk, "disk", 4) != 0 || disk[4] < '0' ||
        disk[4] > '7')
        return usage_error("bad disk '%s' (disk0..disk7)", disk);
    json_t *body = json_pack("{s:s, s:s, s:b}", "disk", disk, "storage", k->arg[2],
                             "delete_source", call_flag(k, "--delete-source"));
    char path[64];
    json_t *ans;
    long status;
    snprintf(path, sizeof(path), "/vms/%u/move-disk", id);
    if ((rc = api_answer(k, "POST", path, body, &status, &ans)) != EXIT_OK)
        return rc;
    if (status < 200 || status >= 300)
        return api_refused(k, status, ans);
    char upid[256];
    snprintf(upid, sizeof(upid), "%s", jstr(ans, "task", ""));
    if (k->json || call_flag(k, "--no-follow")) {
        k->json ? print_json(stdout, ans) : (void)printf("%s\n", upid);
        json_decref(ans);
        return EXIT_OK;
    }
    json_decref(ans);
    if (check_task_id(upid) != EXIT_OK)
        return fail("ternd answered the move of vm %u's %s without a task", id, disk);
    printf("task %s\n", upid);
    fflush(stdout);
    struct follow f = {.progress = isatty(STDOUT_FILENO), .catch_sigint = true};
    return task_follow(k, upid, &f);
}

static const struct cmd_opt move_opts[] = {
    {"--delete-source", NULL, "remove the old volume once the disk is on the new storage",
     false, false},
    {"--no-follow", NULL, "print the task id and exit; the task goes on", false, false},
    {NULL, NULL, NULL, false, false},
};

const struct cmd cmds_vmdisk[] = {
    {"vm", "move-disk", "ID DISK STORAGE [--delete-source] [--no-follow]", 3, 3,
     "move a VM's disk to another storage of its node",
     "DISK is disk0..disk7. A running VM goes on running: its disk is mirrored\n"
     "to a fresh volume on STORAGE (every write tracked), then switched to it\n"
     "between two requests. A stopped VM's disk is copied (holes stay holes).\n"
     "The config names the new storage afterwards; the old volume stays unless\n"
     "--delete-source. Exits 0 on TASK OK, 1 on TASK ERROR.\n",
     "  tern vm move-disk 100 disk0 nas2\n  tern vm move-disk 100 disk0 local "
     "--delete-source\n",
     move_opts, run_move_disk},
    {NULL, NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL},
};
