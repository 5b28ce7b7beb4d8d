#include "migrate/ram_pool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/vm.h"

struct worker_arg {
    struct ram_pool *p;
    unsigned i;
};

static void *worker(void *arg)
{
    struct worker_arg *a = arg;
    struct ram_pool *p = a->p;
    unsigned i = a->i, seen = 0;
    free(a);
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->quit && p->gen == seen)
            pthread_cond_wait(&p->cond, &p->lock);
        if (p->quit)
            break;
        seen = p->gen;
        bool first = p->first_pass;
        pthread_mutex_unlock(&p->lock);
        int rc = ram_send_pass(&p->rs[i], first, &p->err[i]);
        pthread_mutex_lock(&p->lock);
        p->rc[i] = rc;
        if (--p->busy == 0)
            pthread_cond_broadcast(&p->cond);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static int start_workers(struct ram_pool *p, struct err *e)
{
    for (unsigned i = 1; i < p->n; i++) {
        struct worker_arg *a = malloc(sizeof(*a));
        if (!a)
            return err_set(e, ENOMEM, "out of memory");
        *a = (struct worker_arg){p, i};
        int rc = pthread_create(&p->thread[i], NULL, worker, a);
        if (rc) {
            free(a);
            return err_set(e, rc, "migration channel thread: %s", strerror(rc));
        }
        p->nthreads = i;
    }
    return 0;
}

int ram_pool_init(struct ram_pool *p, struct vm *vm, struct mig_channel *const *ch,
                  unsigned n, bool page_crc, struct err *e)
{
    memset(p, 0, sizeof(*p));
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    p->n = n;
    p->nwords = (vm->ram.npages + 63) / 64;
    p->dirty = calloc(p->nwords, sizeof(uint64_t));
    if (!p->dirty)
        return err_set(e, ENOMEM, "migration buffers: out of memory");
    for (unsigned i = 0; i < n; i++) {
        int rc = ram_sender_init(&p->rs[i], vm, ch[i], page_crc, p->dirty, i, n, e);
        if (rc)
            return rc;
    }
    return start_workers(p, e);
}

void ram_pool_release(struct ram_pool *p)
{
    if (p->nthreads) {
        pthread_mutex_lock(&p->lock);
        p->quit = true;
        pthread_cond_broadcast(&p->cond);
        pthread_mutex_unlock(&p->lock);
        for (unsigned i = 1; i <= p->nthreads; i++)
            pthread_join(p->thread[i], NULL);
    }
    for (unsigned i = 0; i < p->n; i++)
        if (p->rs[i].vm)
            ram_sender_release(&p->rs[i]);
    if (p->dirty) {
        pthread_mutex_destroy(&p->lock);
        pthread_cond_destroy(&p->cond);
    }
    free(p->dirty);
    memset(p, 0, sizeof(*p));
}

int ram_pool_pass(struct ram_pool *p, bool first_pass, struct err *e)
{
    if (p->n == 1)
        return ram_send_pass(&p->rs[0], first_pass, e);
    pthread_mutex_lock(&p->lock);
    p->first_pass = first_pass;
    p->busy = p->n - 1;
    p->gen++;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    int rc = ram_send_pass(&p->rs[0], first_pass, e);
    pthread_mutex_lock(&p->lock);
    while (p->busy)
        pthread_cond_wait(&p->cond, &p->lock);
    pthread_mutex_unlock(&p->lock);
    for (unsigned i = 1; !rc && i < p->n; i++)
        if (p->rc[i]) {
            rc = p->rc[i];
            *e = p->err[i];
        }
    return rc;
}

uint64_t ram_pool_done(struct ram_pool *p)
{
    uint64_t done = 0;
    for (unsigned i = 0; i < p->n; i++)
        done += atomic_load_explicit(&p->rs[i].pass_done, memory_order_relaxed);
    return done;
}

void ram_pool_stats(const struct ram_pool *p, struct ram_stats *sum)
{
    memset(sum, 0, sizeof(*sum));
    for (unsigned i = 0; i < p->n; i++) {
        sum->pages += p->rs[i].stats.pages;
        sum->zero_pages += p->rs[i].stats.zero_pages;
        sum->skipped += p->rs[i].stats.skipped;
        sum->bytes += p->rs[i].stats.bytes;
    }
}
