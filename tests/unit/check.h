/* A minimal check harness for the C unit tests: CHECK counts and reports
 * failures; CHECK_DONE prints the tally and gives the exit status. */
#ifndef SP_TEST_CHECK_H
#define SP_TEST_CHECK_H

#include <stdio.h>

static int checks_run, checks_failed;

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        checks_run++;                                                          \
        if (!(cond)) {                                                         \
            checks_failed++;                                                   \
            fprintf(stderr, "%s:%d: FAILED: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
        }                                                                      \
    } while (0)

#define CHECK_DONE(name)                                                              \
    (printf("%s: %d checks, %d failed\n", name, checks_run, checks_failed), \
     checks_failed ? 1 : 0)

#endif
