/* sp-inspect: what a shard set holds, and a contact sheet of it. */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "common/sp_cli.h"
#include "shards/inspect.h"

static const char usage[] =
    "Usage: sp-inspect [OPTION]... DIR\n"
    "Describe the shard set in DIR on stdout: dataset, classes, the recipe that\n"
    "made it, shuffle and normalization, and per split the records, shards, shape,\n"
    "dtype and size on disk against the uncompressed pixels; then the records of\n"
    "every class per split, counted from the labels themselves.\n"
    "\n"
    "      --json           the same as one JSON object\n"
    "      --grid FILE.png  also write a contact sheet: a row per class, samples\n"
    "      --per-class N    samples a class on the sheet (default 8)\n"
    "      --tile N         the side of a sample on the sheet, pixels (default 64)\n"
    "  -q, --quiet          report nothing but errors\n"
    "  -h, --help           show this help and exit\n"
    "  -V, --version        show the version and exit\n"
    "\n"
    "Exit status: 0 success; 1 a missing or malformed manifest or shard; 2 usage\n"
    "error; 3 system error.\n";

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

static void print_text(const char *dir, const json_t *s)
{
    json_t *classes = json_object_get(s, "classes"), *splits = json_object_get(s, "splits");
    printf("%-12s%s\n", "shards", dir);
    const char *ds = json_string_value(json_object_get(s, "dataset"));
    printf("%-12s%s (%zu classes)\n", "dataset", ds ? ds : "-", json_array_size(classes));
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
    printf("\n%-8s %9s %7s %-12s %-8s %10s %10s %6s\n", "split", "records", "shards", "shape", "dtype", "on disk",
           "pixels", "ratio");
    const char *name;
    json_t *sj;
    json_object_foreach(splits, name, sj) {
        json_t *shape = json_object_get(sj, "shape");
        char dims[32];
        snprintf(dims, sizeof dims, "%lldx%lldx%lld", (long long)json_integer_value(json_array_get(shape, 0)),
                 (long long)json_integer_value(json_array_get(shape, 1)),
                 (long long)json_integer_value(json_array_get(shape, 2)));
        double bytes = (double)json_integer_value(json_object_get(sj, "bytes"));
        double px = (double)json_integer_value(json_object_get(sj, "pixel_bytes"));
        printf("%-8s %9lld %7lld %-12s %-8s %7.1f MB %7.1f MB %6.2f\n", name,
               (long long)json_integer_value(json_object_get(sj, "records")),
               (long long)json_integer_value(json_object_get(sj, "shards")), dims,
               json_string_value(json_object_get(sj, "dtype")), bytes / 1e6, px / 1e6, px > 0 ? bytes / px : 0.0);
    }
    if (!json_array_size(classes))
        return;
    printf("\n%-24s", "class");
    json_object_foreach(splits, name, sj)
        printf(" %9s", name);
    printf("\n");
    size_t i;
    json_t *cls;
    json_array_foreach(classes, i, cls) {
        printf("%-24.24s", json_string_value(cls));
        json_object_foreach(splits, name, sj)
            printf(" %9lld", (long long)json_integer_value(json_array_get(json_object_get(sj, "class_counts"), i)));
        printf("\n");
    }
}

int main(int argc, char **argv)
{
    sp_cli_init(argc, argv);
    enum { O_JSON = 256, O_GRID, O_PER, O_TILE };
    static const struct option opts[] = {
        {"json", no_argument, 0, O_JSON},           {"grid", required_argument, 0, O_GRID},
        {"per-class", required_argument, 0, O_PER}, {"tile", required_argument, 0, O_TILE},
        {"quiet", no_argument, 0, 'q'},             {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},           {0, 0, 0, 0},
    };
    int as_json = 0, c;
    const char *grid = NULL;
    uint64_t per = 8, tile = 64;
    while ((c = getopt_long(argc, argv, "qhV", opts, NULL)) != -1) {
        switch (c) {
        case O_JSON: as_json = 1; break;
        case O_GRID: grid = optarg; break;
        case O_PER:
            if (sp_parse_u64(optarg, &per) || !per || per > 1000)
                return sp_cli_usage_error("--per-class: 1 to 1000, not %s", optarg);
            break;
        case O_TILE:
            if (sp_parse_u64(optarg, &tile) || tile < 4 || tile > 1024)
                return sp_cli_usage_error("--tile: 4 to 1024, not %s", optarg);
            break;
        default: {
            int status = sp_cli_common_option(c, usage);
            if (status >= 0)
                return status;
        }
        }
    }
    if (optind + 1 != argc)
        return sp_cli_usage_error("give one shard directory");
    const char *dir = argv[optind];
    sp_err err = {0};
    json_t *s = sp_inspect(dir, &err);
    if (!s)
        return sp_report(&err);
    if (as_json) {
        char *text = json_dumps(s, JSON_INDENT(2) | JSON_SORT_KEYS);
        puts(text ? text : "{}");
        free(text);
    } else {
        print_text(dir, s);
    }
    json_decref(s);
    if (grid && sp_inspect_grid(dir, grid, (int)per, (int)tile, &err))
        return sp_report(&err);
    if (fflush(stdout))
        return sp_report(&(sp_err){SP_EXIT_SYSTEM, "write failed"});
    return SP_EXIT_OK;
}
