#include "cli/progress_bar.h"

#include <stdio.h>
#include <string.h>

#include "cli/print.h"

static long long jint(const json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

static void eta_text(const json_t *eta, char *out, size_t size)
{
    long long s = json_integer_value(eta);
    if (!json_is_integer(eta) || s < 0)
        snprintf(out, size, "--:--");
    else if (s < 100 * 60)
        snprintf(out, size, "%02lld:%02lld", s / 60, s % 60);
    else
        snprintf(out, size, "%3lldh  ", s / 3600 > 999 ? 999 : s / 3600);
}

void progress_bar_text(const json_t *p, int cols, char *out, size_t size)
{
    char sent[32], rate[32], eta[16], text[160], bar[PROGRESS_BAR_WIDTH + 1];
    long long pct = jint(p, "percent");
    pct = pct < 0 ? 0 : pct > 100 ? 100 : pct;
    human_bytes((double)jint(p, "transferred"), sent, sizeof(sent));
    human_bytes((double)jint(p, "rate"), rate, sizeof(rate));
    eta_text(json_object_get(p, "eta_s"), eta, sizeof(eta));
    snprintf(text, sizeof(text), "%3lld%%  %10s sent  %10s/s  eta %s  pass %lld", pct, sent,
             rate, eta, jint(p, "pass"));
    int fill = (int)(pct * PROGRESS_BAR_WIDTH / 100);
    memset(bar, '#', (size_t)fill);
    memset(bar + fill, '-', (size_t)(PROGRESS_BAR_WIDTH - fill));
    bar[PROGRESS_BAR_WIDTH] = '\0';
    if ((int)strlen(text) + PROGRESS_BAR_WIDTH + 4 <= cols)
        snprintf(out, size, "[%s]  %s", bar, text);
    else
        snprintf(out, size, "%.*s", cols > 0 ? cols : 0, text);
}
