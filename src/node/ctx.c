#include "node/ctx.h"

#include <stdio.h>
#include <string.h>

void node_ctx_init(struct node_ctx *x)
{
    memset(x, 0, sizeof(*x));
    pthread_mutex_init(&x->lock, NULL);
    pthread_cond_init(&x->cmd_cond, NULL);
}

void node_ctx_cluster_token(struct node_ctx *x, char out[TERND_TOKEN_LEN + 1])
{
    pthread_mutex_lock(&x->lock);
    memcpy(out, x->cluster_token, TERND_TOKEN_LEN + 1);
    pthread_mutex_unlock(&x->lock);
}

bool node_ctx_in_cluster(struct node_ctx *x, char name[TERN_NAME_MAX + 1])
{
    pthread_mutex_lock(&x->lock);
    bool in = x->in_cluster;
    if (name)
        memcpy(name, x->cluster_name, TERN_NAME_MAX + 1);
    pthread_mutex_unlock(&x->lock);
    return in;
}

void node_ctx_cluster_known(struct node_ctx *x, const char *name, const char *token)
{
    pthread_mutex_lock(&x->lock);
    if (name)
        snprintf(x->cluster_name, sizeof(x->cluster_name), "%s", name);
    if (token)
        snprintf(x->cluster_token, sizeof(x->cluster_token), "%s", token);
    pthread_mutex_unlock(&x->lock);
}

void node_ctx_joined(struct node_ctx *x)
{
    pthread_mutex_lock(&x->lock);
    x->in_cluster = true;
    pthread_mutex_unlock(&x->lock);
}

void node_ctx_left(struct node_ctx *x)
{
    pthread_mutex_lock(&x->lock);
    x->in_cluster = false;
    x->cluster_name[0] = '\0';
    explicit_bzero(x->cluster_token, sizeof(x->cluster_token));
    pthread_mutex_unlock(&x->lock);
}
