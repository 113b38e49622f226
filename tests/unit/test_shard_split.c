/* The shard writer refuses a record whose split no reader opens (none): the
 * add fails naming the record, and nothing is committed. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "shards/shard.h"

int main(void)
{
    char dir[] = "/tmp/sp-shard-split.XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    sp_err err = {0};
    CHECK(sp_h5_init(&err) == 0, "%s", err.msg);
    sp_shard_opts o;
    sp_shard_opts_default(&o);
    sp_shardset *s = sp_shardset_create(dir, &o, &err);
    CHECK(s != NULL, "%s", err.msg);
    uint8_t px[3] = {1, 2, 3};
    sp_record rec;
    sp_record_init(&rec, SP_KIND_PIXELS, "cat/a.png", NULL);
    rec.dtype = SP_DTYPE_U8, rec.h = rec.w = 1, rec.c = 3, rec.label = 0, rec.payload_len = 3;
    rec.split = SP_SPLIT_NONE;
    CHECK(sp_shardset_add(s, &rec, px, &err) == -1, "a record of no split was taken");
    CHECK(strstr(err.msg, "cat/a.png: a record of split \"none\"") != NULL, "%s", err.msg);
    CHECK(err.code == SP_EXIT_DATA, "code %d", err.code);
    json_t *meta = json_pack("{s:s, s:[s]}", "dataset", "unit", "classes", "cat");
    sp_err cerr = {0};
    CHECK(sp_shardset_commit(s, meta, &cerr) == -1, "an empty set was committed");
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, SP_MANIFEST_NAME);
    CHECK(access(path, F_OK) != 0, "%s written", path);
    /* train, val and test are taken */
    for (int sp = SP_SPLIT_TRAIN; sp <= SP_SPLIT_VAL; sp++) {
        rec.split = (uint8_t)sp;
        CHECK(sp_shardset_add(s, &rec, px, &err) == 0, "split %d: %s", sp, err.msg);
    }
    json_decref(meta);
    sp_shardset_free(s);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0, "%s", cmd);
    return CHECK_DONE("test_shard_split");
}
