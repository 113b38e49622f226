/* Fuzz targets for the parsers of untrusted bytes. Each target file defines
 * LLVMFuzzerTestOneInput; it links either with libFuzzer (`make fuzz`, clang)
 * or with replay_main.c, which replays seed files and seeded mutations of
 * them in `make test`. A target must never crash, leak or read out of bounds,
 * whatever the bytes. */
#ifndef SP_FUZZ_H
#define SP_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An fd reading exactly these bytes (a memfd), or -1. */
int fuzz_fd(const uint8_t *data, size_t size);

#endif
