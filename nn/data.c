/* Batches for the trainer from one split of a shard set: pixels to normalized float32 (with augmentation), labels to int32. */
#include "nn/data.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nn/dist.h"
#include "shards/manifest.h"
#include "shards/order.h"

const char *nn_data_eval_split(const char *dir, sp_err *err)
{
    json_t *m = sp_manifest_load_lazy(dir, err); /* the shards are checked as they open */
    if (!m)
        return NULL;
    json_t *splits = json_object_get(m, "splits");
    const char *name = json_object_get(splits, "test") ? "test" : json_object_get(splits, "val") ? "val" : NULL;
    json_decref(m);
    return name;
}

/* Set s's per channel scale and shift (value = raw * scale + shift) for
 * d's channels and dtype; whether s records its normalization. */
static int norm_of(const nn_data *d, spr_set *s, float *scale, float *shift)
{
    double mean[4], std[4];
    int applied = 0, n = spr_normalization(s, mean, std, &applied), normalized = n == (int)d->c;
    for (uint32_t c = 0; c < d->c; c++) {
        double m = normalized ? mean[c] : 0.0, sd = normalized ? std[c] : 1.0;
        if (d->dtype != SPR_UINT8 || sd <= 0) /* floats: normalized already, or raw values kept */
            m = 0, sd = 1;
        double unit = d->dtype == SPR_UINT8 ? 1.0 / 255.0 : 1.0;
        scale[c] = (float)(unit / sd);
        shift[c] = (float)(-m / sd);
    }
    return normalized;
}

int nn_data_open(nn_data *d, const char *dir, const char *split, uint32_t batch, sp_err *err)
{
    return nn_data_open_view(d, dir, split, batch, 0, err);
}

int nn_data_open_view(nn_data *d, const char *dir, const char *split, uint32_t batch, uint32_t view_size,
                      sp_err *err)
{
    memset(d, 0, sizeof *d);
    char msg[512];
    snprintf(d->split, sizeof d->split, "%s", split);
    int code = 0;
    d->set = spr_open_ex(dir, split, msg, sizeof msg, &code);
    if (!d->set) /* a set at a URL fails with SYSTEM (the network) or USAGE (--cache-limit) too */
        return sp_fail(err, code == SPR_ERR_SYSTEM ? SP_EXIT_SYSTEM : code == SPR_ERR_USAGE ? SP_EXIT_USAGE : SP_EXIT_DATA,
                       "%s", msg);
    spr_shape(d->set, &d->h, &d->w, &d->c);
    d->encoded = spr_kind(d->set) == SPR_ENCODED;
    if (d->encoded)
        d->h = d->w = view_size ? view_size : 224, d->c = 3;
    d->dtype = spr_dtype(d->set);
    d->classes = spr_num_classes(d->set);
    d->count = spr_count(d->set);
    d->batch = batch;
    d->crop_scale = 0.08f;
    d->nparts = 1;
    d->pad = 4;
    if (d->c > 4) {
        nn_data_close(d);
        return sp_fail(err, SP_EXIT_DATA, "%s: %s: %u channels; the trainer takes 1 to 4", dir, split, d->c);
    }
    d->normalized = norm_of(d, d->set, d->scale, d->shift);
    d->raw = malloc((size_t)batch * (d->encoded ? (size_t)d->h * d->w * d->c : spr_record_bytes(d->set)));
    d->labels = malloc((size_t)batch * sizeof *d->labels);
    if (!d->raw || !d->labels) {
        nn_data_close(d);
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    }
    return 0;
}

const char *nn_data_class_name(const nn_data *d, int i)
{
    if (d->names)
        return i >= 0 ? json_string_value(json_array_get(d->names, (size_t)i)) : NULL;
    return spr_class_name(d->set, i);
}

static int str_cmp(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* maps[k] of set s: its labels to the index of their names in names (a
 * sorted union, or any list: searched in order). -1 (err) when a name is not
 * there. */
static int map_into(nn_data *d, int k, spr_set *s, const json_t *names, const char *dir, sp_err *err)
{
    int n = spr_num_classes(s);
    if (!(d->maps[k] = malloc(((size_t)n + 1) * sizeof **d->maps)))
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    for (int j = 0; j < n; j++) {
        const char *name = spr_class_name(s, j) ? spr_class_name(s, j) : "";
        d->maps[k][j] = -1;
        for (size_t u = 0; u < json_array_size(names) && d->maps[k][j] < 0; u++)
            if (!strcmp(name, json_string_value(json_array_get(names, u))))
                d->maps[k][j] = (int32_t)u;
        if (d->maps[k][j] < 0)
            return sp_fail(err, SP_EXIT_DATA, "%s: class \"%.100s\" of its %s split is not among the training "
                           "classes", dir, name, d->split);
    }
    return 0;
}

int nn_data_map_classes(nn_data *d, const json_t *names, const char *dir, sp_err *err)
{
    if (!(d->maps = calloc(1, sizeof *d->maps)))
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    d->nmaps = 1;
    if (map_into(d, 0, d->set, names, dir, err))
        return -1;
    json_decref(d->names);
    d->names = json_deep_copy(names);
    d->classes = (int)json_array_size(names);
    return 0;
}

/* The mix of d's sets at global step skip (opts: the pass's reader options). */
static spr_mix *open_mix(nn_data *d, const spr_iter_options *o, uint64_t skip, sp_err *err)
{
    char msg[1024];
    int code = 0;
    spr_mix *m = spr_mix_open(d->sets, d->weights, d->policies, d->nsets, o, sizeof *o, skip, 0, msg, sizeof msg,
                              &code);
    if (!m)
        sp_fail(err, code == SPR_ERR_SYSTEM ? SP_EXIT_SYSTEM : code == SPR_ERR_USAGE ? SP_EXIT_USAGE : SP_EXIT_DATA,
                "the mixed sets: %s", msg);
    return m;
}

/* The sets' classes, when they differ: "DIR and DIR: ..." into err. */
static int classes_differ(spr_set *a, spr_set *b, const char *da, const char *db, sp_err *err)
{
    int na = spr_num_classes(a), nb = spr_num_classes(b);
    for (int j = 0; j < na && j < nb; j++) {
        const char *x = spr_class_name(a, j), *y = spr_class_name(b, j);
        if (strcmp(x ? x : "", y ? y : ""))
            return sp_fail(err, SP_EXIT_DATA, "%s and %s: their class lists differ (class %d is \"%.60s\" and "
                           "\"%.60s\"): mix sets of one class list, or map them into their union (--mix-classes "
                           "union)", da, db, j, x ? x : "", y ? y : "");
    }
    if (na != nb)
        return sp_fail(err, SP_EXIT_DATA, "%s and %s: their class lists differ (%d classes and %d): mix sets of one "
                       "class list, or map them into their union (--mix-classes union)", da, db, na, nb);
    return 0;
}

int nn_data_open_mix(nn_data *d, const char *const *dirs, const double *weights, const int *policies, uint32_t n,
                     const char *split, uint32_t batch, uint32_t view_size, int union_classes, sp_err *err)
{
    if (n < 1 || n > SPR_MAX_MIX_SETS)
        return sp_fail(err, SP_EXIT_USAGE, "a mix of %u sets: 1 to %d", n, SPR_MAX_MIX_SETS);
    if (nn_data_open_view(d, dirs[0], split, batch, view_size, err))
        return -1;
    d->sets = calloc(n, sizeof *d->sets);
    d->weights = malloc(n * sizeof *d->weights);
    d->policies = malloc(n * sizeof *d->policies);
    d->set_scale = malloc(n * sizeof *d->set_scale);
    d->set_shift = malloc(n * sizeof *d->set_shift);
    d->sources = malloc((size_t)batch * sizeof *d->sources);
    d->positions = malloc((size_t)batch * sizeof *d->positions);
    if (!d->sets || !d->weights || !d->policies || !d->set_scale || !d->set_shift || !d->sources || !d->positions)
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    d->nsets = n;
    d->sets[0] = d->set;
    for (uint32_t i = 0; i < n; i++) {
        d->weights[i] = weights[i], d->policies[i] = policies[i];
        char msg[512];
        int code = 0;
        if (i && !(d->sets[i] = spr_open_ex(dirs[i], split, msg, sizeof msg, &code)))
            return sp_fail(err, code == SPR_ERR_SYSTEM ? SP_EXIT_SYSTEM : code == SPR_ERR_USAGE ? SP_EXIT_USAGE
                                                                                               : SP_EXIT_DATA,
                           "%s", msg);
        uint32_t h, w, c;
        spr_shape(d->sets[i], &h, &w, &c);
        int encoded = spr_kind(d->sets[i]) == SPR_ENCODED;
        if (i && (encoded != d->encoded || spr_dtype(d->sets[i]) != d->dtype ||
                  (!encoded && (h != d->h || w != d->w || c != d->c))))
            return sp_fail(err, SP_EXIT_DATA, "%s: %s records of %ux%ux%u, %s's are %ux%ux%u: the mixed sets must hold "
                           "one shape and dtype", dirs[i], encoded ? "encoded" : "pixel", h, w, c, dirs[0], d->h, d->w,
                           d->c);
        if (i)
            d->count += spr_count(d->sets[i]);
        norm_of(d, d->sets[i], d->set_scale[i], d->set_shift[i]);
        if (i && !union_classes && classes_differ(d->sets[0], d->sets[i], dirs[0], dirs[i], err))
            return -1;
    }
    if (union_classes) { /* every set's names, sorted by strcmp, each once */
        size_t total = 0, k = 0;
        for (uint32_t i = 0; i < n; i++)
            total += (size_t)spr_num_classes(d->sets[i]);
        const char **all = malloc((total ? total : 1) * sizeof *all);
        json_t *names = json_array();
        if (!(d->maps = calloc(n, sizeof *d->maps)) || !all || !names) {
            free(all);
            json_decref(names);
            return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
        }
        d->nmaps = (int)n;
        for (uint32_t i = 0; i < n; i++)
            for (int j = 0; j < spr_num_classes(d->sets[i]); j++)
                all[k++] = spr_class_name(d->sets[i], j) ? spr_class_name(d->sets[i], j) : "";
        qsort(all, total, sizeof *all, str_cmp);
        for (size_t j = 0; j < total; j++)
            if (!j || strcmp(all[j], all[j - 1]))
                json_array_append_new(names, json_string(all[j]));
        free(all);
        d->names = names;
        d->classes = (int)json_array_size(names);
        for (uint32_t i = 0; i < n; i++)
            if (map_into(d, (int)i, d->sets[i], names, dirs[i], err))
                return -1;
    }
    spr_iter_options o = {.batch = batch, .flags = SPR_SHUFFLE, .nparts = 1};
    if (d->encoded)
        o.view = SPR_VIEW_EVAL, o.size = d->h;
    spr_mix *m = open_mix(d, &o, 0, err);
    if (!m)
        return -1;
    d->mix_steps = spr_mix_steps(m);
    spr_mix_free(m);
    return 0;
}

/* Records of every set in the mix's first `steps` global steps (d->mix open). */
static uint64_t mix_records(const nn_data *d, uint64_t steps)
{
    uint32_t p = spr_mix_partitions(d->mix);
    uint64_t sum = 0;
    for (uint32_t i = 0; i < d->nsets; i++) {
        uint64_t n = spr_count(d->sets[i]), per = (n + p - 1) / p, u = spr_mix_slots(d->mix, i, steps);
        if (d->policies[i] == SPR_MIX_STOP && u > per)
            u = per;
        sum += u / per * n + sp_order_ranks_consumed(n, p, 1, 1, 0, 1, u % per);
    }
    return sum;
}

int nn_data_start(nn_data *d, uint64_t seed, int shuffle, int augment, sp_err *err)
{
    return nn_data_start_at(d, seed, shuffle, augment, 0, err);
}

int nn_data_set_rank(nn_data *d, uint32_t part, uint32_t nparts, sp_err *err)
{
    uint64_t global = (uint64_t)d->batch * nparts;
    uint32_t p = d->nsets ? spr_mix_default_partitions(global) : sp_order_default_partitions(global);
    if (p % nparts)
        return sp_fail(err, SP_EXIT_USAGE,
                       "%u ranks: they must divide the %u partitions of the global batch %llu (allowed: the divisors "
                       "of %u)", nparts, p, (unsigned long long)global, p);
    uint32_t b = (uint32_t)(global / p);
    uint64_t last = d->nsets ? 0 : (d->count + global - 1) / global; /* steps a pass (a mix's: nn_data_next) */
    for (uint32_t r = 0; last && r < nparts; r++)
        if (!sp_order_ranks_step(d->count, p, b, nparts, r, r + 1, last - 1))
            return sp_fail(err, SP_EXIT_USAGE,
                           "%u ranks need at least one record each of every batch: batch %llu over %llu records "
                           "leaves rank %u none at the last step", nparts, (unsigned long long)global,
                           (unsigned long long)d->count, r);
    d->part = part, d->nparts = nparts, d->partitions = p, d->per_step = b;
    return 0;
}

/* Records ranks [r0, r1) get at global step `step` (one process: all of the step's). */
static uint64_t ranks_step(const nn_data *d, uint32_t r0, uint32_t r1, uint64_t step)
{
    if (d->nparts == 1) {
        uint64_t a = step * d->batch;
        return a >= d->count ? 0 : d->count - a < d->batch ? d->count - a : d->batch;
    }
    return sp_order_ranks_step(d->count, d->partitions, d->per_step, d->nparts, r0, r1, step);
}

uint64_t nn_data_step_records(const nn_data *d) { return ranks_step(d, 0, d->nparts, d->step); }

uint64_t nn_data_bytes_read(const nn_data *d)
{
    return d->bytes_read + (d->it ? spr_iter_bytes_read(d->it) : 0) + (d->mix ? spr_mix_bytes_read(d->mix) : 0);
}

static int start_pass(nn_data *d, uint64_t seed, int shuffle, int augment, uint64_t skip, uint64_t draws,
                      sp_err *err);

int nn_data_start_step(nn_data *d, uint64_t seed, int shuffle, int augment, uint64_t steps, sp_err *err)
{
    if (d->nsets) { /* a mix resumes by its global steps; start_pass counts their records' draws */
        if (start_pass(d, seed, shuffle, augment, steps, 0, err))
            return -1;
        d->step = steps;
        return 0;
    }
    uint64_t mine = d->nparts == 1 ? steps * d->batch
                                   : sp_order_ranks_consumed(d->count, d->partitions, d->per_step, d->nparts, d->part,
                                                             d->part + 1, steps);
    uint64_t all = d->nparts == 1 ? mine
                                  : sp_order_ranks_consumed(d->count, d->partitions, d->per_step, d->nparts, 0,
                                                            d->nparts, steps);
    if (start_pass(d, seed, shuffle, augment, mine, all, err))
        return -1;
    d->step = steps;
    return 0;
}

int nn_data_start_at(nn_data *d, uint64_t seed, int shuffle, int augment, uint64_t skip, sp_err *err)
{
    if (start_pass(d, seed, shuffle, augment, skip, skip, err))
        return -1;
    d->step = skip / d->batch;
    return 0;
}

/* Starts the pass after `skip` of this rank's records, replaying the
 * augmentation draws of `draws` records. */
static int start_pass(nn_data *d, uint64_t seed, int shuffle, int augment, uint64_t skip, uint64_t draws,
                      sp_err *err)
{
    d->augment = augment;
    nn_rng_seed(&d->aug_rng, seed ^ 0x6175676d656e74ull);
    if (augment && !d->scratch && !(d->scratch = malloc((size_t)d->c * d->h * d->w * sizeof(float))))
        return sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    if (d->it)
        d->bytes_read += spr_iter_bytes_read(d->it);
    if (d->mix)
        d->bytes_read += spr_mix_bytes_read(d->mix);
    spr_iter_free(d->it);
    spr_mix_free(d->mix);
    d->it = NULL, d->mix = NULL;
    /* The reader's prefetch thread only where the trainer leaves a core free:
     * on a busy core it takes turns with a compute thread, and the mlp's
     * epoch on 2 threads and 2 cores took 0.37 s with it, 0.29 s without. */
    int spare = nn_get_threads() * nn_dist_local_size() < sysconf(_SC_NPROCESSORS_ONLN); /* every rank's threads */
    spr_iter_options o = {.batch = d->batch, .seed = seed, .flags = shuffle ? SPR_SHUFFLE : 0, .threads = spare ? 1 : 0,
                          .skip_records = skip, .part = d->part, .nparts = d->nparts};
    if (d->encoded) { /* the reader crops and flips; a flip pass flips the eval view here */
        o.view = augment == NN_AUG_CROP_FLIP ? SPR_VIEW_TRAIN : SPR_VIEW_EVAL;
        o.size = d->h;
        /* --crop-scale: the view's RandomResizedCrop, as the pixel path's crop */
        o.scale_min = d->crop_scale, o.scale_max = 1.0, o.ratio_min = 3.0 / 4.0, o.ratio_max = 4.0 / 3.0;
        if (augment == NN_AUG_CROP_FLIP)
            d->augment = NN_AUG_NONE;
    }
    if (d->nsets) { /* skip: global steps of the mix */
        o.skip_records = 0;
        if (!(d->mix = open_mix(d, &o, skip, err)))
            return -1;
        draws = mix_records(d, skip);
    } else if (!(d->it = spr_iter_open(d->set, &o, sizeof o)))
        return sp_fail(err, SP_EXIT_SYSTEM, "%s", spr_error(d->set));
    /* the skipped records' augmentation draws, replayed without their pixels
     * (the reader never reads the windows before the resume point) */
    for (uint64_t i = 0; d->augment && i < draws && (d->nsets || i < d->count); i++) {
        nn_aug_draw a;
        nn_data_draw(d, &a);
    }
    return 0;
}

/* Bilinear sample of plane (h, w) at (y, x) in pixel-centre coordinates,
 * clamped at the borders. */
static float bilinear(const float *plane, int h, int w, float y, float x)
{
    y = y < 0 ? 0 : y > (float)(h - 1) ? (float)(h - 1) : y;
    x = x < 0 ? 0 : x > (float)(w - 1) ? (float)(w - 1) : x;
    int y0 = (int)y, x0 = (int)x, y1 = y0 + 1 < h ? y0 + 1 : y0, x1 = x0 + 1 < w ? x0 + 1 : x0;
    float fy = y - (float)y0, fx = x - (float)x0;
    float top = plane[y0 * w + x0] * (1 - fx) + plane[y0 * w + x1] * fx;
    float bottom = plane[y1 * w + x0] * (1 - fx) + plane[y1 * w + x1] * fx;
    return top * (1 - fy) + bottom * fy;
}

/* The draws of the next image depend on the generator and the set's H x W
 * only (the same for every record of a pixel set), so a resume replays them
 * without the pixels (nn_data_start_at). */
void nn_data_draw(nn_data *d, nn_aug_draw *a)
{
    int H = (int)d->h, W = (int)d->w;
    a->crop = d->augment == NN_AUG_CROP_FLIP || d->augment == NN_AUG_PAD_CROP_FLIP;
    if (d->augment == NN_AUG_PAD_CROP_FLIP) { /* torchvision's RandomCrop.get_params on the padded image */
        a->top = (double)(int)(nn_rng_uniform(&d->aug_rng) * (2 * d->pad + 1));
        a->left = (double)(int)(nn_rng_uniform(&d->aug_rng) * (2 * d->pad + 1));
        a->ch = H, a->cw = W;
    } else if (a->crop) {
        /* torchvision's RandomResizedCrop.get_params */
        double area = (double)H * W, ch = H, cw = W, top = 0, left = 0;
        int found = 0;
        for (int i = 0; i < 10 && !found; i++) {
            double target = area * (d->crop_scale + (1.0 - d->crop_scale) * nn_rng_uniform(&d->aug_rng));
            double logr = log(3.0 / 4.0) + (log(4.0 / 3.0) - log(3.0 / 4.0)) * nn_rng_uniform(&d->aug_rng);
            double ratio = exp(logr);
            int w = (int)lround(sqrt(target * ratio)), h = (int)lround(sqrt(target / ratio));
            if (w > 0 && h > 0 && w <= W && h <= H) {
                ch = h, cw = w;
                top = (double)(int)(nn_rng_uniform(&d->aug_rng) * (H - h + 1));
                left = (double)(int)(nn_rng_uniform(&d->aug_rng) * (W - w + 1));
                found = 1;
            }
        }
        if (!found) { /* the whole image, its ratio clamped to [3/4, 4/3], centred */
            double r = (double)W / H;
            cw = r < 3.0 / 4.0 ? W : r > 4.0 / 3.0 ? lround(H * 4.0 / 3.0) : W;
            ch = r < 3.0 / 4.0 ? lround(W / (3.0 / 4.0)) : r > 4.0 / 3.0 ? H : H;
            top = (int)((H - ch) / 2), left = (int)((W - cw) / 2);
        }
        a->top = top, a->left = left, a->ch = ch, a->cw = cw;
    }
    a->flip = nn_rng_uniform(&d->aug_rng) < 0.5f;
}

/* img (C, H, W) in place: its H x W window at (top - pad, left - pad),
 * where it lies outside the image channel c's value of the stored pixel 0. */
static void pad_crop(nn_data *d, float *img, int top, int left, const float *shift)
{
    int H = (int)d->h, W = (int)d->w, C = (int)d->c, dy = top - d->pad, dx = left - d->pad;
    size_t hw = (size_t)H * W;
    memcpy(d->scratch, img, (size_t)C * hw * sizeof(float));
    for (int c = 0; c < C; c++) {
        float fill = shift[c]; /* 0 * scale + shift */
        const float *src = d->scratch + c * hw;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                int sy = y + dy, sx = x + dx;
                img[c * hw + (size_t)y * W + x] =
                    sy >= 0 && sy < H && sx >= 0 && sx < W ? src[(size_t)sy * W + sx] : fill;
            }
    }
}

/* img (C, H, W) in place: a random-resized or padded crop and/or a flip;
 * shift: its set's (the padding is the stored 0). */
static void augment(nn_data *d, float *img, const float *shift)
{
    int H = (int)d->h, W = (int)d->w, C = (int)d->c;
    size_t hw = (size_t)H * W;
    nn_aug_draw a;
    nn_data_draw(d, &a);
    if (d->augment == NN_AUG_PAD_CROP_FLIP)
        pad_crop(d, img, (int)a.top, (int)a.left, shift);
    else if (a.crop) {
        memcpy(d->scratch, img, (size_t)C * hw * sizeof(float));
        float sy = (float)(a.ch / H), sx = (float)(a.cw / W);
        for (int c = 0; c < C; c++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                    img[c * hw + (size_t)y * W + x] =
                        bilinear(d->scratch + c * hw, H, W, (float)a.top + ((float)y + 0.5f) * sy - 0.5f,
                                 (float)a.left + ((float)x + 0.5f) * sx - 0.5f);
    }
    if (a.flip)
        for (int c = 0; c < C; c++)
            for (int y = 0; y < H; y++) {
                float *row = img + c * hw + (size_t)y * W;
                for (int l = 0, r = W - 1; l < r; l++, r--) {
                    float t = row[l];
                    row[l] = row[r];
                    row[r] = t;
                }
            }
}

static float half_to_float(uint16_t h)
{
    int e = (h >> 10) & 31, m = h & 1023;
    float v = e == 0 ? ldexpf((float)m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexpf((float)(m | 1024), e - 25);
    return h & 0x8000 ? -v : v;
}

/* Record b of the raw batch (H, W, C) into out (C, H, W), normalized by its set's parameters. */
static void convert_record(const nn_data *d, uint32_t b, float *restrict out)
{
    size_t hw = (size_t)d->h * d->w, base = (size_t)b * hw * d->c, C = d->c;
    const float *scale = d->nsets ? d->set_scale[d->sources[b]] : d->scale,
                *shift = d->nsets ? d->set_shift[d->sources[b]] : d->shift;
    for (size_t c = 0; c < C; c++) {
        float sc = scale[c], sh = shift[c];
        float *restrict plane = out + c * hw;
        if (d->dtype == SPR_UINT8 && C == 1) { /* contiguous: the compiler vectorizes it */
            const uint8_t *restrict p = (const uint8_t *)d->raw + base;
            for (size_t i = 0; i < hw; i++)
                plane[i] = (float)p[i] * sc + sh;
        } else if (d->dtype == SPR_UINT8) {
            const uint8_t *p = (const uint8_t *)d->raw + base + c;
            for (size_t i = 0; i < hw; i++)
                plane[i] = (float)p[i * C] * sc + sh;
        } else if (d->dtype == SPR_FLOAT32) {
            const float *p = (const float *)d->raw + base + c;
            for (size_t i = 0; i < hw; i++)
                plane[i] = p[i * C] * sc + sh;
        } else {
            const uint16_t *p = (const uint16_t *)d->raw + base + c;
            for (size_t i = 0; i < hw; i++)
                plane[i] = half_to_float(p[i * C]) * sc + sh;
        }
    }
}

/* Replays the draws of the global batch's records from index drawn to
 * index to (exclusive) without their pixels: another rank's. Returns to. */
static uint64_t skip_draws(nn_data *d, uint64_t drawn, uint64_t to)
{
    nn_aug_draw unused;
    for (; drawn < to; drawn++)
        nn_data_draw(d, &unused);
    return to;
}

int nn_data_next(nn_data *d, float *x, int32_t *labels, sp_err *err)
{
    uint32_t n = 0;
    if (d->nsets) {
        int st = spr_mix_next(d->mix, d->raw, d->labels, NULL, NULL, d->sources, &n);
        if (st < 0)
            return sp_fail(err, SP_EXIT_DATA, "the mixed sets: %s", spr_mix_error(d->mix));
        if (st == 0)
            return 0;
        uint32_t fewest = 0;
        spr_mix_layout(d->mix, d->positions, &d->step_global, &fewest);
        if (!fewest && d->step_global) /* every rank sees it at this step, before the step's sums */
            return sp_fail(err, SP_EXIT_USAGE, "global step %llu of the mix: a rank gets none of its %llu records (its "
                           "partitions of every slot ran out): train it on fewer ranks",
                           (unsigned long long)d->step + 1, (unsigned long long)d->step_global);
    } else {
        if (spr_iter_next(d->it, d->raw, d->labels, &n) < 0)
            return sp_fail(err, SP_EXIT_DATA, "%s", spr_error(d->set));
        d->step_global = ranks_step(d, 0, d->nparts, d->step);
    }
    size_t in = (size_t)d->c * d->h * d->w;
    /* a rank's records of one set's step are contiguous in the global batch
     * (the lower ranks' first); of a mix's, spread slot by slot */
    uint64_t before = d->nsets || d->nparts == 1 ? 0 : ranks_step(d, 0, d->part, d->step), drawn = 0;
    /* the trainer's threads share out batches of a million values and more
     * (each value is computed alone, so their number changes nothing);
     * sharing out a Fashion-MNIST batch of 64 measured no faster */
#pragma omp parallel for schedule(static) num_threads(nn_get_threads()) if (n * in >= (1u << 20))
    for (uint32_t b = 0; b < n; b++)
        convert_record(d, b, x + b * in);
    for (uint32_t b = 0; b < n; b++) { /* in record order: the draws of a rerun are the same */
        uint32_t set = d->nsets ? (uint32_t)d->sources[b] : 0;
        int32_t l = d->labels[b];
        if (d->maps) /* into the trainer's classes; a label out of its set's range stays one */
            l = l >= 0 && l < spr_num_classes(d->nsets ? d->sets[set] : d->set) ? d->maps[set][l] : -1;
        labels[b] = l;
        if (!d->augment)
            continue;
        drawn = skip_draws(d, drawn, d->nsets ? d->positions[b] : before + b); /* the other ranks' records before it */
        augment(d, x + b * in, d->nsets ? d->set_shift[set] : d->shift);
        drawn++;
    }
    if (d->augment)
        skip_draws(d, drawn, d->step_global); /* the other ranks' records after the last */
    d->step++;
    return (int)n;
}

void nn_data_close(nn_data *d)
{
    spr_iter_free(d->it);
    spr_mix_free(d->mix);
    for (uint32_t i = 1; d->sets && i < d->nsets; i++)
        spr_close(d->sets[i]);
    for (int i = 0; d->maps && i < d->nmaps; i++)
        free(d->maps[i]);
    free(d->maps);
    free(d->sets), free(d->weights), free(d->policies), free(d->set_scale), free(d->set_shift), free(d->sources);
    free(d->positions);
    json_decref(d->names);
    json_decref(d->mix_record);
    spr_close(d->set);
    free(d->raw);
    free(d->labels);
    free(d->scratch);
    memset(d, 0, sizeof *d);
}
