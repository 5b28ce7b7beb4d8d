/* libFuzzer target: a whole migration stream (source -> destination) through
 * mig_stream_verify, which makes the destination's checks without KVM.
 * Seeds: the golden streams in tests/golden. */
#include <stddef.h>
#include <stdint.h>

#include "migrate/verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mig_stream_summary sum;
    struct err e = {""};
    mig_stream_verify(data, size, &sum, &e);
    return 0;
}
