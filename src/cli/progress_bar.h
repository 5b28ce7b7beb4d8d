/* The progress line of a running migration, from the task's "progress"
 * (docs/api.md "Tasks"): every field at a fixed width, so that redrawing it
 * with \r does not make it jitter. */
#ifndef TERN_CLI_PROGRESS_BAR_H
#define TERN_CLI_PROGRESS_BAR_H

#include <jansson.h>
#include <stddef.h>

#define PROGRESS_BAR_WIDTH 24

/* "[#########---------------]  38%   97.0 MiB sent    2.0 MiB/s  eta 01:20  pass 1";
 * cols: the terminal's width (the bar is left out when it would not fit). */
void progress_bar_text(const json_t *p, int cols, char *out, size_t size);

#endif
