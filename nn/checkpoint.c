/* Checkpoints: the net, its optimizer state, epoch and rng in one file, saved atomically and loaded as untrusted bytes. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/sp_atomic.h"
#include "common/sp_xxh.h"
#include "nn/nn.h"

#define CKPT_MAGIC "\x89SPCKPT\n"
#define CKPT_VERSION 1u

/* Every float array of the state, in file order: per parameter w, m, v, then
 * per batchnorm layer run_mean, run_var. Calls fn(ctx, data, count). */
/* The batchnorm layers' running statistics, blocks' paths included, in order. */
static int each_running_stat(const nn_net *n, int (*fn)(void *ctx, float *p, size_t count), void *ctx)
{
    for (int i = 0; i < n->nlayers; i++) {
        const nn_layer *l = &n->layers[i];
        if (l->kind == NN_BATCHNORM && (fn(ctx, l->run_mean, (size_t)l->c) || fn(ctx, l->run_var, (size_t)l->c)))
            return -1;
        if (l->kind == NN_BLOCK &&
            (each_running_stat(l->main, fn, ctx) || (l->shortcut && each_running_stat(l->shortcut, fn, ctx))))
            return -1;
        for (int p = 0; l->kind == NN_CONCAT && p < l->npaths; p++)
            if (each_running_stat(l->paths[p], fn, ctx))
                return -1;
    }
    return 0;
}

static int each_array(const nn_net *n, int (*fn)(void *ctx, float *p, size_t count), void *ctx)
{
    for (int i = 0; i < n->nparams; i++) {
        nn_param *p = n->params[i];
        if (fn(ctx, p->w, p->n) || fn(ctx, p->m, p->n) || fn(ctx, p->v, p->n))
            return -1;
    }
    return each_running_stat(n, fn, ctx);
}

static int append_floats(void *ctx, float *p, size_t count)
{
    return sp_buf_append(ctx, p, count * sizeof(float)); /* little-endian machines only (x86-64, arm64) */
}

/* Crash-test phases (SP_CKPT_PAUSE, tests/tools/test_ckpt_faults.sh; the
 * mark goes beside the checkpoint): ckpt-written (the temporary holds every
 * byte, nothing synced or renamed: the previous checkpoint is in place) and
 * ckpt-committed (renamed into place and the directory synced). */
#define ckpt_pause(path, phase) sp_test_pause("SP_CKPT_PAUSE", (path), 1, (phase))

int nn_checkpoint_save(const char *path, const nn_net *n, const nn_opt *o, int epoch, const nn_rng *rng,
                       const char *extra_json, sp_err *err)
{
    json_t *extra = extra_json ? json_loads(extra_json, JSON_DECODE_ANY, NULL) : json_null();
    char rs[4][17];
    for (int i = 0; i < 4; i++)
        snprintf(rs[i], sizeof rs[i], "%016llx", (unsigned long long)rng->s[i]);
    json_t *h = json_pack("{s:s, s:[i,i,i], s:i, s:I, s:{s:s, s:f, s:f, s:f, s:f, s:f, s:f, s:I}, s:i, s:[s,s,s,s], s:o}",
                          "model", n->model, "input", n->c, n->h, n->w, "classes", n->classes, "parameters",
                          (json_int_t)nn_net_param_count(n), "optimizer", "kind", o->kind == NN_SGD ? "sgd" : "adam",
                          "lr", (double)o->lr, "momentum", (double)o->momentum, "weight_decay",
                          (double)o->weight_decay, "beta1", (double)o->beta1, "beta2", (double)o->beta2, "eps",
                          (double)o->eps, "step", (json_int_t)o->step, "epoch", epoch, "rng", rs[0], rs[1], rs[2],
                          rs[3], "extra", extra ? extra : json_null());
    char *hs = h ? json_dumps(h, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(h);
    if (!hs)
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    sp_buf b = {0};
    uint32_t ver = CKPT_VERSION, hlen = (uint32_t)strlen(hs);
    int bad = sp_buf_append(&b, CKPT_MAGIC, 8) || sp_buf_append(&b, &ver, 4) || sp_buf_append(&b, &hlen, 4) ||
              sp_buf_append(&b, hs, hlen) || each_array(n, append_floats, &b);
    free(hs);
    uint64_t sum = bad ? 0 : sp_xxh3(b.data, b.len);
    if (bad || sp_buf_append(&b, &sum, 8)) {
        sp_buf_free(&b);
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    }
    /* sp_atomic_write's steps, spelled out for the pause points between them */
    sp_atomic_file f;
    if (sp_atomic_open(&f, path, err)) {
        sp_buf_free(&b);
        return -1;
    }
    if (sp_write_all(f.fd, b.data, b.len)) {
        int e = errno;
        sp_atomic_abort(&f);
        sp_buf_free(&b);
        return sp_fail(err, SP_EXIT_SYSTEM, "writing %s: %s", path, strerror(e));
    }
    sp_buf_free(&b);
    ckpt_pause(path, "ckpt-written");
    if (sp_atomic_commit(&f, err)) {
        if (!strstr(err->msg, path)) /* the directory's fsync names only the directory */
            sp_fail_context(err, "%s", path);
        return -1;
    }
    ckpt_pause(path, "ckpt-committed");
    return 0;
}

/* Removes the temporaries (.NAME.tmp-XXXXXX, sp_atomic_open's names) that a
 * save of path killed before its rename left next to it. Two runs saving to
 * one path at once are not supported, so none of them can be another's. */
static void remove_stale_temporaries(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    char dir[4096], final[1024];
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) + 1 : 1, slash ? path : ".");
    DIR *d = opendir(dir);
    if (!d)
        return; /* sp_atomic_open reports an unusable directory */
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!sp_atomic_temporary_of(e->d_name, final, sizeof final) || strcmp(final, base))
            continue;
        char stale[8192];
        snprintf(stale, sizeof stale, "%s%s%s", dir, slash ? "" : "/", e->d_name);
        unlink(stale);
    }
    closedir(d);
}

int nn_checkpoint_check_writable(const char *path, sp_err *err)
{
    remove_stale_temporaries(path);
    return sp_atomic_check(path, err);
}

/* ---------------- loading: every field checked before it sizes anything ---------------- */

int nn_header_int(const char *path, const json_t *v, const char *field, long long lo, long long hi, long long *out,
                  sp_err *err)
{
    if (!json_is_integer(v))
        return sp_fail(err, SP_EXIT_DATA, "%s: header field %s: missing or not an integer", path, field);
    long long x = json_integer_value(v);
    if (x < lo || x > hi)
        return sp_fail(err, SP_EXIT_DATA, "%s: header field %s: %lld is out of range %lld..%lld", path, field, x, lo,
                       hi);
    *out = x;
    return 0;
}

int nn_header_real(const char *path, const json_t *v, const char *field, double lo, int lo_open, double hi,
                   int hi_open, float *out, sp_err *err)
{
    if (!json_is_number(v))
        return sp_fail(err, SP_EXIT_DATA, "%s: header field %s: missing or not a number", path, field);
    double x = json_number_value(v);
    /* an open lower end holds for the float too (1e-50 is not a positive float) */
    if (!isfinite(x) || (lo_open ? x <= lo || (float)x <= (float)lo : x < lo) || (hi_open ? x >= hi : x > hi))
        return sp_fail(err, SP_EXIT_DATA, "%s: header field %s: %g is outside %c%g, %g%c", path, field, x,
                       lo_open ? '(' : '[', lo, hi, hi_open ? ')' : ']');
    *out = (float)x;
    return 0;
}

/* What a header holds, each field checked. */
typedef struct ckpt_header {
    const char *model;
    long long c, h, w, classes, epoch;
    size_t params, running; /* the float counts the model implies */
    nn_opt opt;
    nn_rng rng;
} ckpt_header;

#define MAX_OPT_STEP (1ll << 53) /* steps a float64 in the header counts exactly */

static int check_header(const char *path, const json_t *h, ckpt_header *hd, sp_err *err)
{
    if (!json_is_object(h))
        return sp_fail(err, SP_EXIT_DATA, "%s: bad header (not a JSON object)", path);
    if (!(hd->model = json_string_value(json_object_get(h, "model"))))
        return sp_fail(err, SP_EXIT_DATA, "%s: header field model: missing or not a string", path);
    const json_t *in = json_object_get(h, "input"), *opt = json_object_get(h, "optimizer"),
                 *rs = json_object_get(h, "rng");
    if (!json_is_array(in) || json_array_size(in) != 3)
        return sp_fail(err, SP_EXIT_DATA, "%s: header field input: not an array of 3 integers", path);
    long long parameters = 0;
    if (nn_header_int(path, json_array_get(in, 0), "input[0] (channels)", 1, NN_MAX_CHANNELS, &hd->c, err) ||
        nn_header_int(path, json_array_get(in, 1), "input[1] (height)", 1, NN_MAX_SIDE, &hd->h, err) ||
        nn_header_int(path, json_array_get(in, 2), "input[2] (width)", 1, NN_MAX_SIDE, &hd->w, err) ||
        nn_header_int(path, json_object_get(h, "classes"), "classes", 2, NN_MAX_CLASSES, &hd->classes, err) ||
        nn_header_int(path, json_object_get(h, "epoch"), "epoch", 0, NN_MAX_EPOCHS, &hd->epoch, err) ||
        nn_header_int(path, json_object_get(h, "parameters"), "parameters", 0, (long long)NN_MAX_PARAMS, &parameters,
                      err))
        return -1;
    if (nn_net_plan(hd->model, (int)hd->c, (int)hd->h, (int)hd->w, (int)hd->classes, &hd->params, &hd->running,
                    err)) {
        sp_fail_context(err, "%s", path);
        err->code = SP_EXIT_DATA; /* an unknown model name in a file is bad input, not usage */
        return -1;
    }
    if ((size_t)parameters != hd->params)
        return sp_fail(err, SP_EXIT_DATA, "%s: header field parameters: %lld, but model %s has %zu", path, parameters,
                       hd->model, hd->params);
    if (!json_is_object(opt))
        return sp_fail(err, SP_EXIT_DATA, "%s: header field optimizer: missing or not an object", path);
    const char *kind = json_string_value(json_object_get(opt, "kind"));
    if (!kind || (strcmp(kind, "sgd") && strcmp(kind, "adam")))
        return sp_fail(err, SP_EXIT_DATA, "%s: header field optimizer.kind: not sgd or adam", path);
    nn_opt *o = &hd->opt;
    nn_opt_init(o, !strcmp(kind, "sgd") ? NN_SGD : NN_ADAM, 0);
    long long step = 0;
#define OPT_REAL(key, lo, lo_open, hi, hi_open, out)                                                               \
    nn_header_real(path, json_object_get(opt, key), "optimizer." key, lo, lo_open, hi, hi_open, out, err)
    if (OPT_REAL("lr", 0, 1, 1e6, 0, &o->lr) || OPT_REAL("momentum", 0, 0, 1, 1, &o->momentum) ||
        OPT_REAL("weight_decay", 0, 0, 1e6, 0, &o->weight_decay) || OPT_REAL("beta1", 0, 0, 1, 1, &o->beta1) ||
        OPT_REAL("beta2", 0, 0, 1, 1, &o->beta2) || OPT_REAL("eps", 0, 1, 1, 0, &o->eps) ||
        nn_header_int(path, json_object_get(opt, "step"), "optimizer.step", 0, MAX_OPT_STEP, &step, err))
        return -1;
#undef OPT_REAL
    o->step = step;
    if (!json_is_array(rs) || json_array_size(rs) != 4)
        return sp_fail(err, SP_EXIT_DATA, "%s: header field rng: not an array of 4 hex strings", path);
    uint64_t any = 0;
    for (size_t i = 0; i < 4; i++) {
        const char *x = json_string_value(json_array_get(rs, i));
        char *end = NULL;
        errno = 0;
        hd->rng.s[i] = x && strlen(x) == 16 && strspn(x, "0123456789abcdefABCDEF") == 16 ? strtoull(x, &end, 16) : 0;
        if (!end || *end || errno)
            return sp_fail(err, SP_EXIT_DATA, "%s: header field rng[%zu]: not 16 hex digits", path, i);
        any |= hd->rng.s[i];
    }
    if (!any) /* xoshiro's one state it never leaves */
        return sp_fail(err, SP_EXIT_DATA, "%s: header field rng: all zero", path);
    return 0;
}

typedef struct reading {
    const uint8_t *p, *end;
    int nonfinite; /* a value read was NaN or infinite */
} reading;

static int take_floats(void *ctx, float *p, size_t count)
{
    reading *r = ctx;
    if ((size_t)(r->end - r->p) < count * sizeof(float))
        return -1;
    memcpy(p, r->p, count * sizeof(float));
    r->p += count * sizeof(float);
    for (size_t i = 0; i < count; i++)
        r->nonfinite |= !isfinite(p[i]);
    return 0;
}

/* Reads exactly len bytes at offset off of fd into p. 0, or -1 with errno
 * (0 for a file shorter than that). */
static int read_at(int fd, void *p, size_t len, off_t off)
{
    uint8_t *q = p;
    while (len) {
        ssize_t got = pread(fd, q, len, off);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            if (got == 0)
                errno = 0;
            return -1;
        }
        q += got, len -= (size_t)got, off += got;
    }
    return 0;
}

int nn_checkpoint_load(const char *path, int batch, nn_net **out, nn_opt *o, int *epoch, nn_rng *rng,
                       char **extra_json, sp_err *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st)) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        /* a checkpoint that is not there is the user's data problem; any
         * other failure to open or stat it is the system's */
        return sp_fail(err, e == ENOENT || e == ENOTDIR ? SP_EXIT_DATA : SP_EXIT_SYSTEM, "%s: %s", path, strerror(e));
    }
    uint8_t fixed[16];
    uint8_t *d = NULL;
    json_t *h = NULL;
    nn_net *n = NULL;
    ckpt_header hd = {0};
    uint32_t ver, hlen;
    int rc = -1;
    if (!S_ISREG(st.st_mode)) {
        sp_fail(err, SP_EXIT_DATA, "%s: not a regular file", path);
        goto out;
    }
    if (st.st_size >= 24 && read_at(fd, fixed, 16, 0)) {
        sp_fail(err, SP_EXIT_SYSTEM, "%s: %s", path, errno ? strerror(errno) : "shorter than when opened");
        goto out;
    }
    if (st.st_size < 24 || memcmp(fixed, CKPT_MAGIC, 8)) {
        sp_fail(err, SP_EXIT_DATA, "%s: not a shardpipe checkpoint (bad magic)", path);
        goto out;
    }
    memcpy(&ver, fixed + 8, 4), memcpy(&hlen, fixed + 12, 4);
    if (ver != CKPT_VERSION) {
        sp_fail(err, SP_EXIT_DATA, "%s: unknown version %u", path, ver);
        goto out;
    }
    if (hlen > NN_CKPT_MAX_HEADER || (long long)hlen > (long long)st.st_size - 24) {
        sp_fail(err, SP_EXIT_DATA, "%s: header length %u exceeds %s", path, hlen,
                hlen > NN_CKPT_MAX_HEADER ? "the limit of 1 MiB" : "the file");
        goto out;
    }
    /* the header alone first: its fields say how large the rest must be */
    char *hs = malloc(hlen ? hlen : 1);
    if (!hs || read_at(fd, hs, hlen, 16)) {
        sp_fail(err, SP_EXIT_SYSTEM, "%s: %s", path,
                !hs ? "out of memory" : errno ? strerror(errno) : "shorter than when opened");
        free(hs);
        goto out;
    }
    h = json_loadb(hs, hlen, 0, NULL);
    free(hs);
    if (!h) {
        sp_fail(err, SP_EXIT_DATA, "%s: bad header (not JSON)", path);
        goto out;
    }
    if (check_header(path, h, &hd, err))
        goto out;
    unsigned long long floats = 3ull * hd.params + hd.running, expect = 24ull + hlen + 4ull * floats;
    if ((unsigned long long)st.st_size != expect) {
        sp_fail(err, SP_EXIT_DATA, "%s: %lld bytes, but its header (model %s, %lldx%lldx%lld, %lld classes) implies %llu",
                path, (long long)st.st_size, hd.model, hd.h, hd.w, hd.c, hd.classes, expect);
        goto out;
    }
    if (!(d = malloc((size_t)expect))) {
        sp_fail(err, SP_EXIT_SYSTEM, "%s: out of memory for %llu bytes", path, expect);
        goto out;
    }
    if (read_at(fd, d, (size_t)expect, 0)) {
        sp_fail(err, errno ? SP_EXIT_SYSTEM : SP_EXIT_DATA, "%s: %s", path,
                errno ? strerror(errno) : "shorter than when opened");
        goto out;
    }
    uint64_t sum;
    memcpy(&sum, d + expect - 8, 8);
    if (sp_xxh3(d, (size_t)expect - 8) != sum) {
        sp_fail(err, SP_EXIT_DATA, "%s: checksum mismatch (corrupt or cut)", path);
        goto out;
    }
    nn_rng scratch;
    nn_rng_seed(&scratch, 0);
    if (!(n = nn_net_create(hd.model, (int)hd.c, (int)hd.h, (int)hd.w, (int)hd.classes, batch, &scratch, err)))
        goto out;
    reading r = {d + 16 + hlen, d + expect - 8, 0};
    if (each_array(n, take_floats, &r) || r.p != r.end) {
        sp_fail(err, SP_EXIT_DATA, "%s: its weights do not fit model %s", path, hd.model);
        goto out;
    }
    if (r.nonfinite) {
        sp_fail(err, SP_EXIT_DATA, "%s: its weights or optimizer state hold a NaN or infinity", path);
        goto out;
    }
    if (extra_json) /* NULL when the header has no extra */
        *extra_json = json_dumps(json_object_get(h, "extra"), JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    *o = hd.opt;
    *epoch = (int)hd.epoch;
    *rng = hd.rng;
    *out = n;
    n = NULL;
    rc = 0;
out:
    nn_net_free(n);
    json_decref(h);
    free(d);
    close(fd);
    return rc;
}

/* ---------------- initialising a net from another's weights ---------------- */

/* A batchnorm layer's running statistics: mean and variance, c values each. */
typedef struct running_pair {
    float *mean, *var;
    int c;
} running_pair;

/* The batchnorm layers among the first layers of n (all of a block's paths),
 * in file order, into list (room for cap); the count, or -1 when there are
 * more than cap. */
static int running_pairs(const nn_net *n, int layers, running_pair *list, int cap)
{
    int count = 0;
    for (int i = 0; i < layers && i < n->nlayers; i++) {
        const nn_layer *l = &n->layers[i];
        if (l->kind == NN_BATCHNORM) {
            if (count == cap)
                return -1;
            list[count++] = (running_pair){l->run_mean, l->run_var, l->c};
        }
        int npaths = l->kind == NN_BLOCK ? 2 : l->kind == NN_CONCAT ? l->npaths : 0;
        for (int s = 0; s < npaths; s++) {
            const nn_net *path = l->kind == NN_CONCAT ? l->paths[s] : s ? l->shortcut : l->main;
            int got = path ? running_pairs(path, path->nlayers, list + count, cap - count) : 0;
            if (got < 0)
                return -1;
            count += got;
        }
    }
    return count;
}

/* The length of model's name before any "+head". */
static size_t base_name_len(const char *model)
{
    const char *plus = strstr(model, "+head");
    return plus ? (size_t)(plus - model) : strlen(model);
}

int nn_net_init_from(nn_net *n, const char *path, int *whole, sp_err *err)
{
    nn_net *src = NULL;
    nn_opt opt;
    int epoch, rc = -1;
    nn_rng rng;
    enum { MAX_PAIRS = 4096 };
    running_pair *mine = NULL, *theirs = NULL;
    *whole = 0;
    if (nn_checkpoint_load(path, 1, &src, &opt, &epoch, &rng, NULL, err))
        return -1;
    size_t len = base_name_len(n->model);
    if (base_name_len(src->model) != len || strncmp(src->model, n->model, len)) {
        sp_fail(err, SP_EXIT_DATA, "%s: a %s, not a %.*s", path, src->model, (int)len, n->model);
        goto out;
    }
    if (src->c != n->c) {
        sp_fail(err, SP_EXIT_DATA, "%s: a %s for %d input channels; the shards have %d", path, src->model, src->c,
                n->c);
        goto out;
    }
    if (src->base_params != n->base_params || src->base_layers != n->base_layers) { /* one name, one base */
        sp_fail(err, SP_EXIT_DATA, "%s: its %s base does not match model %s's", path, src->model, n->model);
        goto out;
    }
    int same = !strcmp(src->model, n->model) && src->classes == n->classes && src->nparams == n->nparams;
    for (int i = 0; same && i < n->nparams; i++)
        same = src->params[i]->n == n->params[i]->n;
    int count = same ? n->nparams : n->base_params, layers = same ? n->nlayers : n->base_layers;
    for (int i = 0; i < count; i++) {
        if (src->params[i]->n != n->params[i]->n) {
            sp_fail(err, SP_EXIT_DATA, "%s: parameter tensor %d holds %zu values, model %s's %zu", path, i,
                    src->params[i]->n, n->model, n->params[i]->n);
            goto out;
        }
        memcpy(n->params[i]->w, src->params[i]->w, n->params[i]->n * sizeof(float));
    }
    mine = malloc(MAX_PAIRS * sizeof *mine), theirs = malloc(MAX_PAIRS * sizeof *theirs);
    if (!mine || !theirs) {
        sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        goto out;
    }
    int a = running_pairs(n, layers, mine, MAX_PAIRS), b = running_pairs(src, layers, theirs, MAX_PAIRS);
    for (int i = 0; a == b && i < a; i++)
        if (mine[i].c != theirs[i].c)
            a = -1;
    if (a < 0 || a != b) {
        sp_fail(err, SP_EXIT_DATA, "%s: its batchnorm layers do not match model %s's", path, n->model);
        goto out;
    }
    for (int i = 0; i < a; i++) {
        memcpy(mine[i].mean, theirs[i].mean, (size_t)mine[i].c * sizeof(float));
        memcpy(mine[i].var, theirs[i].var, (size_t)mine[i].c * sizeof(float));
    }
    *whole = same;
    rc = 0;
out:
    free(mine), free(theirs);
    nn_net_free(src);
    return rc;
}
