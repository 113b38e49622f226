/* Replays fuzz inputs without libFuzzer: each FILE as it is, then, with
 * -m N, N mutations of it (bit flips, byte sets, cuts, duplicated ranges)
 * from a fixed-seed generator, so every run tests the same inputs.
 * usage: fuzz_TARGET [-m N] FILE... */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return rng_state = x;
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    *len = buf && n > 0 ? fread(buf, 1, (size_t)n, f) : 0;
    fclose(f);
    return buf;
}

/* One mutation of src into dst (capacity len * 2 + 16); returns its length. */
static size_t mutate(const uint8_t *src, size_t len, uint8_t *dst)
{
    memcpy(dst, src, len);
    if (len == 0)
        return 0;
    int edits = 1 + (int)(rng() % 4);
    for (int e = 0; e < edits; e++) {
        size_t at = (size_t)(rng() % len);
        switch (rng() % 5) {
        case 0: dst[at] ^= (uint8_t)(1u << (rng() % 8)); break;
        case 1: dst[at] = (uint8_t)rng(); break;
        case 2: dst[at] = (uint8_t)(rng() % 2 ? 0xFF : 0x00); break;
        case 3: len = at; break; /* cut */
        default: {              /* duplicate a short range */
            size_t n = 1 + (size_t)(rng() % 16);
            if (at + n <= len) {
                memmove(dst + at + n, dst + at, len - at);
                len += n;
            }
        }
        }
        if (len == 0)
            break;
    }
    return len;
}

int main(int argc, char **argv)
{
    long mutations = 0;
    int first = 1;
    if (argc > 2 && !strcmp(argv[1], "-m")) {
        mutations = strtol(argv[2], NULL, 10);
        first = 3;
    }
    long runs = 0;
    for (int i = first; i < argc; i++) {
        size_t len;
        uint8_t *seed = read_file(argv[i], &len);
        if (!seed) {
            fprintf(stderr, "replay: cannot read %s\n", argv[i]);
            return 2;
        }
        LLVMFuzzerTestOneInput(seed, len);
        runs++;
        /* duplications grow the input by at most 16 bytes an edit, 4 edits */
        uint8_t *buf = malloc(len + 64);
        for (long m = 0; m < mutations; m++, runs++)
            LLVMFuzzerTestOneInput(buf, mutate(seed, len, buf));
        free(buf);
        free(seed);
    }
    printf("%s: %ld inputs replayed\n", argv[0], runs);
    return 0;
}
