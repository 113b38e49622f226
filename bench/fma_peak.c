/* The machine's measured float32 FMA peak on one core, or on THREADS threads
 * at once (their rates summed): independent chains of fused multiply-adds,
 * enough of them to hide the latency, at the widest vector width the CPU
 * has (AVX-512, else AVX2 with FMA). Prints GFLOP/s (an FMA counts as 2
 * floating-point operations).
 *
 * usage: fma_peak [SECONDS [THREADS]]   (default 1 second, 1 thread) */
#define _POSIX_C_SOURCE 200809L
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CHAINS 24

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* FMAs done (in vector lanes) in about `seconds`, with vectors of LANES
 * floats (type VEC, intrinsics SET1, FMADD, STOREU) built for TARGET; the
 * sum keeps the work live. One body for both widths. */
#define FMA_KERNEL(NAME, TARGET, VEC, LANES, SET1, FMADD, STOREU)                  \
    __attribute__((target(TARGET))) static double NAME(double seconds, float *sink) \
    {                                                                              \
        VEC acc[CHAINS], m = SET1(0.999999f), a = SET1(1e-7f);                     \
        for (int i = 0; i < CHAINS; i++)                                           \
            acc[i] = SET1((float)i);                                               \
        long rounds = 0;                                                           \
        double end = now() + seconds;                                              \
        while (now() < end) {                                                      \
            for (int r = 0; r < 100000; r++)                                       \
                _Pragma("GCC unroll 24") for (int i = 0; i < CHAINS; i++)          \
                    acc[i] = FMADD(acc[i], m, a);                                  \
            rounds += 100000;                                                      \
        }                                                                          \
        float lanes[LANES], s = 0;                                                 \
        for (int i = 0; i < CHAINS; i++) {                                         \
            STOREU(lanes, acc[i]);                                                 \
            s += lanes[0];                                                         \
        }                                                                          \
        *sink = s;                                                                 \
        return (double)rounds * CHAINS * LANES;                                    \
    }

FMA_KERNEL(run512, "avx512f", __m512, 16, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_storeu_ps)
FMA_KERNEL(run256, "avx2,fma", __m256, 8, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_storeu_ps)

typedef struct job {
    double seconds, gflops;
    int wide;
    float sink;
} job;

static void *run(void *arg)
{
    job *j = arg;
    double t0 = now(), fmas = j->wide ? run512(j->seconds, &j->sink) : run256(j->seconds, &j->sink);
    j->gflops = 2.0 * fmas / (now() - t0) / 1e9;
    return NULL;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 1.0;
    int threads = argc > 2 ? atoi(argv[2]) : 1;
    int wide = __builtin_cpu_supports("avx512f");
    if (!wide && !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) {
        fprintf(stderr, "fma_peak: this CPU has neither AVX-512 nor AVX2 with FMA\n");
        return 1;
    }
    if (threads < 1 || threads > 256) {
        fprintf(stderr, "usage: fma_peak [SECONDS [THREADS]]   (THREADS 1..256)\n");
        return 2;
    }
    job jobs[256];
    pthread_t tid[256];
    for (int t = 0; t < threads; t++) {
        jobs[t] = (job){seconds, 0, wide, 0};
        if (pthread_create(&tid[t], NULL, run, &jobs[t])) {
            fprintf(stderr, "fma_peak: cannot start thread %d\n", t + 1);
            return 1;
        }
    }
    double total = 0, sink = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(tid[t], NULL);
        total += jobs[t].gflops, sink += jobs[t].sink;
    }
    printf("%.1f %s\n", total, wide ? "avx512" : "avx2");
    return sink == 12345.0; /* never: keeps the result used */
}
