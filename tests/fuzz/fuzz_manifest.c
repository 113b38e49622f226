/* The reading side given a hostile manifest: the input is written as
 * manifest.json into a directory beside a small valid shard (made once, with
 * the library's own writer), then read by sp_manifest_load, spr_open and
 * spr_read, sp_verify_dir and sp_inspect. Whatever they accept must read in
 * full; whatever they refuse, they refuse with an error, not a crash.
 * With SP_FUZZ_MANIFEST_SEED=PATH the valid manifest is copied to PATH (how
 * make_seeds.sh gets its seed). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>

#include "common/sp_xxh.h"
#include "fuzz.h"
#include "shardpipe/reader.h"
#include "shards/inspect.h"
#include "shards/manifest.h"
#include "shards/shard.h"
#include "shards/verify.h"

/* The writer's one-time setup is not under test (and leaks a few bytes in
 * sp_shardset_commit, a json_array, as of this writing): leak checking is
 * paused around it under AddressSanitizer. */
#if defined(__SANITIZE_ADDRESS__)
#define SP_FUZZ_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SP_FUZZ_LSAN 1
#endif
#endif
#ifdef SP_FUZZ_LSAN
#include <sanitizer/lsan_interface.h>
#else
static void __lsan_disable(void) {}
static void __lsan_enable(void) {}
#endif

static char dir[64];

/* Removes the directory and what it holds (it holds no subdirectories). */
static void remove_set(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];
    while (d && (e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
    if (d)
        closedir(d);
    rmdir(dir);
}

/* Three 2x3x1 uint8 records in two classes, train split; 0 or -1. */
static int make_set(void)
{
    snprintf(dir, sizeof dir, "/tmp/sp-fuzz-manifest.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    atexit(remove_set);
    sp_err err = {0};
    sp_shard_opts o;
    sp_shard_opts_default(&o);
    sp_shardset *s = sp_shardset_create(dir, &o, &err);
    if (!s)
        return -1;
    int rc = 0;
    for (int i = 0; i < 3 && rc == 0; i++) {
        uint8_t px[6];
        for (int k = 0; k < 6; k++)
            px[k] = (uint8_t)(i * 40 + k);
        char key[16];
        snprintf(key, sizeof key, "r%d", i);
        sp_record rec;
        sp_record_init(&rec, SP_KIND_PIXELS, key, NULL);
        rec.split = SP_SPLIT_TRAIN, rec.dtype = SP_DTYPE_U8, rec.h = 2, rec.w = 3, rec.c = 1;
        rec.label = i % 2, rec.label2 = SP_LABEL_NONE;
        rec.payload_len = sizeof px;
        rec.checksum = sp_xxh3(px, sizeof px);
        rc = sp_shardset_add(s, &rec, px, &err);
    }
    json_t *meta = json_pack("{s:s, s:[s,s]}", "dataset", "fuzz", "classes", "a", "b");
    if (rc == 0)
        rc = sp_shardset_commit(s, meta, &err);
    json_decref(meta);
    sp_shardset_free(s);
    return rc;
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    char buf[4096];
    size_t n;
    while (in && out && (n = fread(buf, 1, sizeof buf, in)) > 0)
        fwrite(buf, 1, n, out);
    if (in)
        fclose(in);
    if (out)
        fclose(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        __lsan_disable();
        int rc = make_set();
        __lsan_enable();
        if (rc)
            abort(); /* the harness itself is broken */
        char path[128];
        snprintf(path, sizeof path, "%s/%s", dir, SP_MANIFEST_NAME);
        if (getenv("SP_FUZZ_MANIFEST_SEED"))
            copy_file(path, getenv("SP_FUZZ_MANIFEST_SEED"));
        ready = 1;
    }
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, SP_MANIFEST_NAME);
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    fwrite(data, 1, size, f);
    fclose(f);

    sp_err err = {0};
    json_t *m = sp_manifest_load(dir, &err);
    json_decref(m);

    char msg[256];
    spr_set *s = spr_open(dir, "train", msg, sizeof msg);
    if (s) {
        size_t rb = spr_record_bytes(s);
        uint8_t *px = malloc(rb ? rb : 1);
        for (uint64_t i = 0; px && i < spr_count(s) && i < 64; i++) {
            int32_t label;
            if (spr_read(s, i, px, &label))
                break;
        }
        free(px);
        for (int k = -1; k < 3; k++)
            (void)spr_class_name(s, k);
        spr_close(s);
    }
    sp_verify_stats st;
    sp_err verr = {0};
    (void)sp_verify_dir(dir, NULL, &st, &verr);
    sp_err ierr = {0};
    json_decref(sp_inspect(dir, &ierr));
    return 0;
}
