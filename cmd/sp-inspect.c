/* sp-inspect: what a shard set holds, and a contact sheet of it. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/sp_cli.h"
#include "shards/inspect.h"

static const char about[] =
    "Describe the shard set in DIR on stdout: dataset, classes, the recipe that\n"
    "made it, shuffle and normalization, and per split the records, shards, shape,\n"
    "dtype and size on disk against the uncompressed pixels, and per image; then\n"
    "the records of every class per split, counted from the labels themselves.\n"
    "Encoded shards (JPEG records, decoded at load) show their largest image's\n"
    "shape (<=HxWxC) and their decoded pixels' size; --grid decodes them.\n";

static void print_recipe(const json_t *recipe)
{
    size_t i, j;
    json_t *step, *arg;
    printf("%-12s", "recipe");
    json_array_foreach(recipe, i, step) {
        printf("%s%s", i ? " | " : "", json_string_value(json_object_get(step, "tool")));
        json_array_foreach(json_object_get(step, "args"), j, arg)
            printf(" %s", json_string_value(arg));
    }
    printf("\n");
}

static void print_numbers(const char *label, const json_t *arr)
{
    size_t i;
    json_t *v;
    printf("%s", label);
    json_array_foreach(arr, i, v)
        printf("%s%.4f", i ? "," : " ", json_number_value(v));
}

static void print_text(const char *dir, const json_t *s, int all_classes)
{
    json_t *classes = json_object_get(s, "classes"), *splits = json_object_get(s, "splits");
    printf("%-12s%s\n", "shards", dir);
    const char *ds = json_string_value(json_object_get(s, "dataset"));
    size_t nclasses = json_array_size(classes);
    printf("%-12s%s (%zu class%s)\n", "dataset", ds && *ds ? ds : "-", nclasses, nclasses == 1 ? "" : "es");
    print_recipe(json_object_get(s, "recipe"));
    json_t *sh = json_object_get(s, "shuffle");
    if (json_is_object(sh))
        printf("%-12strain split, seed %lld\n", "shuffle", (long long)json_integer_value(json_object_get(sh, "seed")));
    json_t *norm = json_object_get(s, "normalize");
    if (json_is_object(norm)) {
        printf("%-12s", "normalize");
        print_numbers("mean", json_object_get(norm, "mean"));
        print_numbers("  std", json_object_get(norm, "std"));
        printf("  (%s, %s)\n", json_string_value(json_object_get(norm, "source")),
               json_is_true(json_object_get(norm, "applied")) ? "applied" : "applied on load");
    }
    printf("\n%-8s %9s %7s %-14s %-8s %10s %10s %6s %9s\n", "split", "records", "shards", "shape", "dtype",
           "on disk", "pixels", "ratio", "per image");
    const char *name;
    json_t *sj;
    json_object_foreach(splits, name, sj) {
        json_t *shape = json_object_get(sj, "shape");
        char dims[32];
        const char *kind = json_string_value(json_object_get(sj, "kind"));
        int encoded = kind && !strcmp(kind, "encoded"); /* images of many sizes: the largest, "<=" */
        snprintf(dims, sizeof dims, "%s%lldx%lldx%lld", encoded ? "<=" : "",
                 (long long)json_integer_value(json_array_get(shape, 0)),
                 (long long)json_integer_value(json_array_get(shape, 1)),
                 (long long)json_integer_value(json_array_get(shape, 2)));
        double bytes = (double)json_integer_value(json_object_get(sj, "bytes"));
        double px = (double)json_integer_value(json_object_get(sj, "pixel_bytes"));
        printf("%-8s %9lld %7lld %-14s %-8s %7.1f MB %7.1f MB %6.2f %6.1f KB\n", name,
               (long long)json_integer_value(json_object_get(sj, "records")),
               (long long)json_integer_value(json_object_get(sj, "shards")), dims,
               encoded ? "jpeg" : json_string_value(json_object_get(sj, "dtype")), bytes / 1e6, px / 1e6,
               px > 0 ? bytes / px : 0.0, json_number_value(json_object_get(sj, "bytes_per_record")) / 1e3);
    }
    if (!json_array_size(classes))
        return;
    printf("\n%-24s", "class");
    json_object_foreach(splits, name, sj)
        printf(" %9s", name);
    printf("\n");
    size_t i, empty = 0;
    json_t *cls;
    json_array_foreach(classes, i, cls) {
        long long total = 0;
        json_object_foreach(splits, name, sj)
            total += (long long)json_integer_value(json_array_get(json_object_get(sj, "class_counts"), i));
        if (!total && !all_classes) { /* only the classes the set holds */
            empty++;
            continue;
        }
        printf("%-24.24s", json_string_value(cls));
        json_object_foreach(splits, name, sj)
            printf(" %9lld", (long long)json_integer_value(json_array_get(json_object_get(sj, "class_counts"), i)));
        printf("\n");
    }
    if (empty)
        printf("(%zu of the %zu classes have no records here; --all-classes lists them)\n", empty,
               json_array_size(classes));
}

typedef struct opts {
    int as_json, all_classes;
    const char *grid;
    int per_class, tile, max_classes;
} opts;

int main(int argc, char **argv)
{
    opts o = {.per_class = 8, .tile = 64, .max_classes = 100};
    const sp_opt table[] = {
        {"json", 0, SP_OPT_FLAG, &o.as_json, .help = "the same as one JSON object"},
        {"all-classes", 0, SP_OPT_FLAG, &o.all_classes,
         .help = "list every class of the class list, those without\nrecords too (default: the classes present)"},
        {"grid", 0, SP_OPT_STRING, &o.grid, .arg = "FILE.png",
         .help = "also write a contact sheet: a row per class present,\nlabelled with its number and name, then samples"},
        {"max-classes", 0, SP_OPT_INT, &o.max_classes, .min = 1, .max = 1000, .arg = "N",
         .help = "rows of the contact sheet: the first N classes present\n(default 100)"},
        {"per-class", 0, SP_OPT_INT, &o.per_class, .min = 1, .max = 1000, .arg = "N",
         .help = "samples a class on the sheet (default 8)"},
        {"tile", 0, SP_OPT_INT, &o.tile, .min = 4, .max = 1024, .arg = "N",
         .help = "the side of a sample on the sheet, pixels (default 64)"},
        SP_CLI_CACHE_OPTS,
        {0},
    };
    const sp_cli_tool cli = {"sp-inspect", "[OPTION]... DIR", about, table, NULL};
    sp_cli_args args;
    int status = sp_cli_parse(&cli, argc, argv, &args);
    if (status >= 0)
        return status;
    if (args.n != 1)
        return sp_cli_usage_error("give one shard directory");
    const char *dir = args.v[0];
    sp_err err = {0};
    json_t *s = sp_cli_input_exists(dir, &err) ? NULL : sp_inspect(dir, &err);
    if (!s)
        return sp_report(&err);
    if (o.as_json) {
        char *text = json_dumps(s, JSON_INDENT(2) | JSON_SORT_KEYS);
        puts(text ? text : "{}");
        free(text);
    } else {
        print_text(dir, s, o.all_classes);
    }
    json_decref(s);
    int rows = 0, present = 0;
    if (o.grid && sp_inspect_grid(dir, o.grid, o.per_class, o.tile, o.max_classes, &rows, &present, &err))
        return sp_report(&err);
    if (o.grid && rows < present)
        sp_msg("%s: the contact sheet shows %d of the %d classes present (--max-classes)", o.grid, rows, present);
    if (o.grid)
        sp_info("%s: contact sheet of %d a class written", o.grid, o.per_class);
    if (fflush(stdout)) {
        sp_fail(&err, SP_EXIT_SYSTEM, "stdout: write failed: %s", strerror(errno));
        return sp_report(&err);
    }
    return SP_EXIT_OK;
}
