/* The checkpoint loader (nn_checkpoint_load) on arbitrary bytes, its trailing checksum made to match. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/sp_xxh.h"
#include "fuzz.h"
#include "nn/nn.h"

/* The input's last 8 bytes are replaced by the XXH3-64 of the rest, as a
 * save writes it, so mutations reach the header's fields and the weights
 * instead of stopping at the checksum. A net that loads runs one forward
 * pass on a zero sample. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    if (size >= 8) {
        uint64_t sum = sp_xxh3(copy, size - 8);
        memcpy(copy + size - 8, &sum, 8);
    }
    int fd = fuzz_fd(copy, size);
    free(copy);
    if (fd < 0)
        return 0;
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    nn_net *net = NULL;
    nn_opt opt;
    nn_rng rng;
    int epoch;
    char *extra = NULL;
    sp_err err = {0};
    if (nn_checkpoint_load(path, 1, &net, &opt, &epoch, &rng, &extra, &err) == 0) {
        float *x = calloc((size_t)net->c * (size_t)net->h * (size_t)net->w, sizeof *x);
        if (x)
            nn_forward(net, x, 1, 0, NULL, &err); /* a failure (oneDNN's) leaves nothing to check */
        free(x);
        nn_net_free(net);
        free(extra);
    }
    close(fd);
    return 0;
}
