/* A checkpoint's class names against a shard set's (nn/class_names.h). */
#include "nn/class_names.h"

#include <stdio.h>
#include <string.h>

json_t *nn_data_class_names(const nn_data *d)
{
    json_t *a = json_array();
    for (int i = 0; a && i < d->classes; i++) {
        const char *name = nn_data_class_name(d, i);
        if (json_array_append_new(a, json_string(name ? name : ""))) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

json_t *nn_extra_class_names(const char *extra_json)
{
    json_t *ex = extra_json ? json_loads(extra_json, JSON_DECODE_ANY, NULL) : NULL;
    json_t *names = json_object_get(ex, "class_names");
    int ok = json_is_array(names);
    for (size_t i = 0; ok && i < json_array_size(names); i++)
        ok = json_is_string(json_array_get(names, i));
    names = ok ? json_incref(names) : NULL;
    json_decref(ex);
    return names;
}

int nn_class_names_check(const json_t *names, const nn_data *d, const char *ckpt, const char *dir, sp_err *err)
{
    if (!names)
        return 0;
    int n = (int)json_array_size(names);
    if (n != d->classes)
        return sp_fail(err, SP_EXIT_DATA, "%s: a model of %d classes; %s names %d", ckpt, n, dir, d->classes);
    char diff[768] = "";
    size_t len = 0;
    int ndiff = 0;
    for (int i = 0; i < n; i++) {
        const char *ours = json_string_value(json_array_get(names, (size_t)i));
        const char *theirs = nn_data_class_name(d, i);
        if (!theirs)
            theirs = "";
        if (!strcmp(ours, theirs))
            continue;
        if (ndiff++ < 4 && len < sizeof diff)
            len += (size_t)snprintf(diff + len, sizeof diff - len, "%sclass %d is \"%.60s\" in the checkpoint, "
                                    "\"%.60s\" in the shards", ndiff > 1 ? "; " : "", i, ours, theirs);
    }
    if (!ndiff)
        return 0;
    return sp_fail(err, SP_EXIT_DATA, "%s: its classes differ from those of %s (%d of %d): %s%s", ckpt, dir, ndiff, n,
                   diff, ndiff > 4 ? "; ..." : "");
}
