/* CIFAR-10/100 python versions: the batch and meta pickles' dicts checked and read (see cifar_py.h). */
#include "formats/cifar_py.h"

#include <string.h>

#include "formats/cifar.h"
#include "formats/recstream.h"

int sp_cifar_py_classify(const char *key, const uint8_t *data, size_t len)
{
    const char *base = sp_basename(key);
    if (!strncmp(base, "data_batch_", 11) && base[11] >= '1' && base[11] <= '5' && !base[12])
        return SP_CIFAR_PY_BATCH;
    if (!strcmp(base, "test_batch"))
        return SP_CIFAR_PY_BATCH;
    if (!strcmp(base, "batches.meta"))
        return SP_CIFAR_PY_META;
    /* CIFAR-100's names are common words: under a cifar-100 folder, or a
     * pickle by content (the folder given to sp-unpack itself) */
    int c100 = strstr(key, "cifar-100") || (data && sp_pickle_sniff(data, len));
    if (c100 && (!strcmp(base, "train") || !strcmp(base, "test")))
        return SP_CIFAR_PY_BATCH;
    if (c100 && !strcmp(base, "meta"))
        return SP_CIFAR_PY_META;
    return 0;
}

/* What a pickle of SP_CIFAR_MAX_RECORDS records may take beyond the pixels:
 * a label or two, a file name and the memo per record. */
enum { PY_RECORD_OVERHEAD = 256 };

int sp_cifar_py_size_ok(uint64_t len, const char *name, sp_err *err)
{
    if (len > (uint64_t)SP_CIFAR_MAX_RECORDS * (SP_CIFAR_PIXELS + PY_RECORD_OVERHEAD))
        return sp_fail(err, SP_EXIT_DATA, "%s: %llu bytes is over %d CIFAR records, the limit of a batch file", name,
                       (unsigned long long)len, SP_CIFAR_MAX_RECORDS);
    return 0;
}

static sp_pickle *load(const uint8_t *data, size_t len, const char *key, sp_err *err)
{
    sp_pickle_limits lim;
    sp_pickle_limits_default(&lim);
    sp_pickle *pk = sp_pickle_load(data, len, &lim, key, err);
    if (pk && sp_pickle_root(pk)->type != SP_PK_DICT) {
        sp_fail(err, SP_EXIT_DATA, "%s: the pickle holds no dict (not a CIFAR python file)", key);
        sp_pickle_free(pk);
        return NULL;
    }
    return pk;
}

/* 0 if v is a list of n integers in [0, high); else -1 naming the record. */
static int check_labels(const sp_pk *v, const char *field, long n, int high, const char *key, sp_err *err)
{
    if (!v || v->type != SP_PK_LIST)
        return sp_fail(err, SP_EXIT_DATA, "%s: \"%s\" is missing or not a list", key, field);
    if ((long)v->n != n)
        return sp_fail(err, SP_EXIT_DATA, "%s: %zu %s for %ld images", key, v->n, field, n);
    for (size_t i = 0; i < v->n; i++) {
        const sp_pk *l = v->items[i];
        if (l->type != SP_PK_INT)
            return sp_fail(err, SP_EXIT_DATA, "%s: record %zu: %s is not an integer", key, i, field);
        if (l->i < 0 || l->i >= high)
            return sp_fail(err, SP_EXIT_DATA, "%s: record %zu: %s %lld out of range (%d classes)", key, i, field,
                           (long long)l->i, high);
    }
    return 0;
}

static int open_batch(sp_cifar_py *b, const char *key, sp_err *err)
{
    const sp_pk *root = sp_pickle_root(b->pk), *data = sp_pk_get(root, "data");
    if (!data || data->type != SP_PK_ARRAY || data->ndim != 2 || data->shape[1] != SP_CIFAR_PIXELS)
        return sp_fail(err, SP_EXIT_DATA, "%s: \"data\" is missing or not a uint8 array of N x %d", key,
                       SP_CIFAR_PIXELS);
    if (data->shape[0] > SP_CIFAR_MAX_RECORDS)
        return sp_fail(err, SP_EXIT_DATA, "%s: %llu records, over the limit of %d", key,
                       (unsigned long long)data->shape[0], SP_CIFAR_MAX_RECORDS);
    b->n = (long)data->shape[0];
    b->pixels = data->s;
    b->labels = sp_pk_get(root, "fine_labels");
    b->variant = b->labels ? 100 : 10;
    if (b->variant == 10)
        return check_labels(b->labels = sp_pk_get(root, "labels"), "labels", b->n, 10, key, err);
    b->labels2 = sp_pk_get(root, "coarse_labels");
    return check_labels(b->labels, "fine_labels", b->n, 100, key, err) ||
           check_labels(b->labels2, "coarse_labels", b->n, 20, key, err) ? -1 : 0;
}

int sp_cifar_py_open(sp_cifar_py *b, const uint8_t *data, size_t len, const char *key, sp_err *err)
{
    memset(b, 0, sizeof *b);
    const char *base = sp_basename(key);
    b->split = !strncmp(base, "test", 4) ? SP_SPLIT_TEST : SP_SPLIT_TRAIN;
    if (sp_cifar_py_size_ok(len, key, err) || !(b->pk = load(data, len, key, err)))
        return -1;
    if (open_batch(b, key, err)) {
        sp_cifar_py_close(b);
        return -1;
    }
    return 0;
}

void sp_cifar_py_close(sp_cifar_py *b)
{
    sp_pickle_free(b->pk);
    b->pk = NULL;
}

void sp_cifar_py_record(const sp_cifar_py *b, long i, uint8_t *out, int32_t *label, int32_t *label2)
{
    sp_cifar_planar_to_hwc(b->pixels + (size_t)i * SP_CIFAR_PIXELS, out);
    *label = (int32_t)b->labels->items[i]->i;
    *label2 = b->labels2 ? (int32_t)b->labels2->items[i]->i : -1;
}

/* A list of want strings (str, or bytes as Python 2 wrote them) as a JSON
 * array, or NULL with err set. */
static json_t *names(const sp_pk *v, const char *field, size_t want, const char *key, sp_err *err)
{
    if (!v || v->type != SP_PK_LIST || v->n != want) {
        sp_fail(err, SP_EXIT_DATA, "%s: \"%s\" is missing or not a list of %zu names", key, field, want);
        return NULL;
    }
    json_t *a = json_array();
    for (size_t i = 0; a && i < v->n; i++) {
        const sp_pk *s = v->items[i];
        if ((s->type != SP_PK_STR && s->type != SP_PK_BYTES) || !sp_utf8_valid((const char *)s->s, s->len) ||
            memchr(s->s, 0, s->len)) {
            json_decref(a);
            sp_fail(err, SP_EXIT_DATA, "%s: %s[%zu] is not a UTF-8 string", key, field, i);
            return NULL;
        }
        json_array_append_new(a, json_stringn((const char *)s->s, s->len));
    }
    if (!a)
        sp_fail(err, SP_EXIT_SYSTEM, "out of memory");
    return a;
}

int sp_cifar_py_names(const uint8_t *data, size_t len, const char *key, json_t **classes, json_t **classes2,
                      int *variant, sp_err *err)
{
    *classes = *classes2 = NULL;
    sp_pickle *pk = load(data, len, key, err);
    if (!pk)
        return -1;
    const sp_pk *root = sp_pickle_root(pk), *fine = sp_pk_get(root, "fine_label_names");
    *variant = fine ? 100 : 10;
    if (fine) {
        *classes = names(fine, "fine_label_names", 100, key, err);
        *classes2 = *classes ? names(sp_pk_get(root, "coarse_label_names"), "coarse_label_names", 20, key, err) : NULL;
    } else {
        *classes = names(sp_pk_get(root, "label_names"), "label_names", 10, key, err);
    }
    sp_pickle_free(pk);
    if (!*classes || (fine && !*classes2)) {
        json_decref(*classes);
        *classes = NULL;
        return -1;
    }
    return 0;
}
