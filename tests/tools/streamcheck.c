/* streamcheck: checks a recorded migration stream without KVM
 * (src/migrate/verify.c) and prints its summary, or the error.
 * `streamcheck FILE` (FILE "-" is stdin). Status 0 valid, 1 invalid. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate/verify.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: streamcheck FILE\n");
        return 2;
    }
    FILE *f = strcmp(argv[1], "-") ? fopen(argv[1], "rb") : stdin;
    if (!f) {
        perror(argv[1]);
        return 2;
    }
    size_t cap = 1 << 20, len = 0, n;
    uint8_t *data = malloc(cap);
    while (data && (n = fread(data + len, 1, cap - len, f)) > 0)
        if ((len += n) == cap)
            data = realloc(data, cap *= 2);
    if (!data) {
        fprintf(stderr, "streamcheck: out of memory\n");
        return 2;
    }
    struct mig_stream_summary s;
    struct err e = {""};
    int rc = mig_stream_verify(data, len, &s, &e);
    free(data);
    if (rc) {
        fprintf(stderr, "streamcheck: %s: %s\n", argv[1], e.msg);
        return 1;
    }
    printf("memory %llu cpus %u disks %u features 0x%llx\n", (unsigned long long)s.memory,
           s.cpus, s.ndisks, (unsigned long long)s.features);
    printf("messages");
    for (unsigned t = 1; t <= MIG_TYPE_MAX; t++)
        if (s.messages[t])
            printf(" %s=%llu", mig_type_name((uint16_t)t),
                   (unsigned long long)s.messages[t]);
    printf("\npages %llu zero %llu sections %llu bytes %llu\n", (unsigned long long)s.pages,
           (unsigned long long)s.zero_pages, (unsigned long long)s.sections,
           (unsigned long long)s.bytes);
    return 0;
}
