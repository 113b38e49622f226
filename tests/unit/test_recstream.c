/* Record stream: round trip, zstd, and every single-byte corruption and
 * every truncation of a small stream must be detected. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "check.h"
#include "formats/recstream.h"

/* Writes a small stream of every record kind into a memory file. */
static unsigned char *make_stream(size_t *len)
{
    FILE *f = tmpfile();
    sp_err err = {0};
    json_t *meta = json_pack("{s:s, s:[s,s,s]}", "dataset", "unit", "classes", "a", "b", "c");
    sp_writer *w = sp_writer_open(fileno(f), meta, &err);
    CHECK(w != NULL, "%s", err.msg);
    sp_record rec;
    sp_record_init(&rec, SP_KIND_BLOB, "archive.tar/dir/file.bin", NULL);
    CHECK(sp_writer_record(w, &rec, "hello blob", 10, &err) == 0, "%s", err.msg);
    uint8_t px[2 * 3 * 3];
    for (size_t i = 0; i < sizeof px; i++)
        px[i] = (uint8_t)(i * 7);
    sp_record_init(&rec, SP_KIND_PIXELS, "images#0", NULL);
    rec.split = SP_SPLIT_TRAIN, rec.dtype = SP_DTYPE_U8, rec.h = 2, rec.w = 3, rec.c = 3;
    rec.label = 2, rec.label2 = 1;
    CHECK(sp_writer_record(w, &rec, px, sizeof px, &err) == 0, "%s", err.msg);
    /* metadata update between records */
    json_object_set_new(meta, "classes", json_pack("[s,s,s,s]", "a", "b", "c", "d"));
    CHECK(sp_writer_meta(w, meta, &err) == 0, "%s", err.msg);
    /* a streamed record, payload in pieces */
    sp_record_init(&rec, SP_KIND_ENCODED, "photos/\xc3\xa9t\xc3\xa9.jpg", NULL);
    rec.split = SP_SPLIT_VAL, rec.label = 3;
    rec.codec = SP_CODEC_JPEG, rec.dtype = SP_DTYPE_U8, rec.h = 480, rec.w = 640, rec.c = 3;
    rec.payload_len = 6;
    CHECK(sp_writer_begin(w, &rec, &err) == 0 && sp_writer_append(w, "abc", 3, &err) == 0 &&
              sp_writer_append(w, "def", 3, &err) == 0 && sp_writer_end(w, &err) == 0,
          "%s", err.msg);
    CHECK(sp_writer_finish(w, &err) == 0, "%s", err.msg);
    sp_writer_free(w);
    json_decref(meta);
    *len = (size_t)ftell(f);
    unsigned char *buf = malloc(*len);
    rewind(f);
    CHECK(fread(buf, 1, *len, f) == *len, "read back");
    fclose(f);
    return buf;
}

/* Reads a whole stream from bytes; returns records read or -1 with err. */
static int read_all(const unsigned char *buf, size_t len, sp_record *out, int max, sp_err *err)
{
    FILE *f = tmpfile();
    fwrite(buf, 1, len, f);
    fflush(f);
    rewind(f);
    int fd = fileno(f);
    lseek(fd, 0, SEEK_SET);
    sp_reader *r = sp_reader_open(fd, "mem", NULL, err);
    int n = 0, rc = r ? 1 : -1;
    while (rc == 1) {
        sp_record rec;
        rc = sp_reader_next(r, &rec, err);
        if (rc == 1) {
            const uint8_t *data;
            if (sp_reader_payload(r, &rec, &data, err)) {
                rc = -1;
                break;
            }
            if (n < max)
                out[n] = rec;
            n++;
        }
    }
    if (rc == 0 && r) {
        json_t *m = sp_reader_meta(r);
        if (json_array_size(json_object_get(m, "classes")) != 4)
            rc = -1, snprintf(err->msg, sizeof err->msg, "metadata update lost");
    }
    sp_reader_free(r);
    fclose(f);
    return rc < 0 ? -1 : n;
}

static void test_round_trip(const unsigned char *buf, size_t len)
{
    sp_record recs[4];
    sp_err err = {0};
    int n = read_all(buf, len, recs, 4, &err);
    CHECK(n == 3, "read %d records: %s", n, err.msg);
    if (n != 3)
        return;
    CHECK(!strcmp(recs[0].key, "archive.tar/dir/file.bin") && recs[0].kind == SP_KIND_BLOB &&
              recs[0].payload_len == 10 && recs[0].label == SP_LABEL_NONE && recs[0].split == SP_SPLIT_NONE,
          "blob record fields");
    CHECK(recs[1].kind == SP_KIND_PIXELS && recs[1].h == 2 && recs[1].w == 3 && recs[1].c == 3 &&
              recs[1].label == 2 && recs[1].label2 == 1 && recs[1].split == SP_SPLIT_TRAIN &&
              recs[1].dtype == SP_DTYPE_U8,
          "pixel record fields");
    CHECK(recs[2].kind == SP_KIND_ENCODED && recs[2].split == SP_SPLIT_VAL && recs[2].payload_len == 6 &&
              recs[2].codec == SP_CODEC_JPEG && recs[2].dtype == SP_DTYPE_U8 && recs[2].h == 480 &&
              recs[2].w == 640 && recs[2].c == 3 && recs[0].codec == SP_CODEC_NONE && !strcmp(recs[2].key, "photos/\xc3\xa9t\xc3\xa9.jpg"),
          "encoded record fields");
    CHECK(recs[0].checksum != 0 && recs[0].checksum != recs[1].checksum, "checksums filled");
}

/* An encoded record must carry its codec, uint8 dtype and decoded shape; other kinds no codec. */
static void test_encoded_head(void)
{
    FILE *f = tmpfile();
    sp_err err = {0};
    json_t *meta = json_object();
    sp_writer *w = sp_writer_open(fileno(f), meta, &err);
    sp_record rec;
    sp_record_init(&rec, SP_KIND_ENCODED, "a.jpg", NULL);
    rec.dtype = SP_DTYPE_U8, rec.h = 2, rec.w = 2, rec.c = 3;
    CHECK(sp_writer_record(w, &rec, "\xff\xd8\xff", 3, &err) < 0 && strstr(err.msg, "without its codec"),
          "encoded record without a codec written: %s", err.msg);
    rec.codec = 7;
    CHECK(sp_writer_record(w, &rec, "\xff\xd8\xff", 3, &err) < 0, "encoded record of codec 7 written");
    rec.codec = SP_CODEC_PNG, rec.h = 0;
    CHECK(sp_writer_record(w, &rec, "\x89PNG", 4, &err) < 0, "encoded record without a shape written");
    rec.h = 2;
    CHECK(sp_writer_record(w, &rec, "\x89PNG", 4, &err) == 0, "%s", err.msg);
    CHECK(!strcmp(sp_codec_name(SP_CODEC_JPEG), "jpeg") && sp_codec_from_name("png") == SP_CODEC_PNG &&
              sp_codec_from_name("gif") == SP_CODEC_NONE, "codec names");
    sp_writer_free(w);
    json_decref(meta);
    fclose(f);
}

static void test_zstd(const unsigned char *buf, size_t len)
{
    size_t cap = ZSTD_compressBound(len);
    unsigned char *z = malloc(cap);
    size_t zn = ZSTD_compress(z, cap, buf, len, 3);
    CHECK(!ZSTD_isError(zn), "compress");
    sp_record recs[4];
    sp_err err = {0};
    CHECK(read_all(z, zn, recs, 4, &err) == 3, "zstd stream: %s", err.msg);
    CHECK(sp_stream_sniff(z, zn) == 1 && sp_stream_sniff(buf, len) == 1, "sniff both forms");
    /* a cut compressed stream is an error too */
    CHECK(read_all(z, zn - 5, recs, 4, &err) < 0, "cut zstd stream accepted");
    free(z);
}

static void test_every_flip(const unsigned char *buf, size_t len)
{
    unsigned char *copy = malloc(len);
    int undetected = 0, named = 0, payload_flips = 0;
    /* the payload of the first record, "hello blob", sits right after its head */
    const unsigned char *hello = memmem(buf, len, "hello blob", 10);
    for (size_t i = 0; i < len; i++) {
        memcpy(copy, buf, len);
        copy[i] ^= 0x20;
        sp_record recs[4];
        sp_err err = {0};
        if (read_all(copy, len, recs, 4, &err) >= 0)
            undetected++;
        if (hello && i >= (size_t)(hello - buf) && i < (size_t)(hello - buf) + 10) {
            payload_flips++;
            named += strstr(err.msg, "archive.tar/dir/file.bin") != NULL &&
                     strstr(err.msg, "checksum mismatch") != NULL;
        }
    }
    CHECK(undetected == 0, "%d of %zu single-byte flips went undetected", undetected, len);
    CHECK(payload_flips == 10 && named == 10, "payload flips named the record in %d of %d", named,
          payload_flips);
    free(copy);
}

static void test_every_cut(const unsigned char *buf, size_t len)
{
    int accepted = 0;
    for (size_t cut = 0; cut < len; cut++) {
        sp_record recs[4];
        sp_err err = {0};
        if (read_all(buf, cut, recs, 4, &err) >= 0)
            accepted++;
    }
    CHECK(accepted == 0, "%d truncated streams accepted", accepted);
    /* and trailing garbage after the end */
    unsigned char *more = malloc(len + 1);
    memcpy(more, buf, len);
    more[len] = 0;
    sp_record recs[4];
    sp_err err = {0};
    CHECK(read_all(more, len + 1, recs, 4, &err) < 0 && strstr(err.msg, "after the end"),
          "trailing data accepted: %s", err.msg);
    free(more);
}

static void test_writer_rejects(void)
{
    FILE *f = tmpfile();
    sp_err err = {0};
    json_t *meta = json_object();
    sp_writer *w = sp_writer_open(fileno(f), meta, &err);
    sp_record rec;
    CHECK(sp_record_init(&rec, SP_KIND_BLOB, "bad\xff", &err) < 0, "invalid UTF-8 key accepted");
    CHECK(sp_record_init(&rec, SP_KIND_BLOB, "", &err) < 0, "empty key accepted");
    sp_record_init(&rec, SP_KIND_PIXELS, "p", NULL);
    rec.h = rec.w = 2, rec.c = 1, rec.dtype = SP_DTYPE_U8;
    CHECK(sp_writer_record(w, &rec, "abc", 3, &err) < 0, "pixel payload of the wrong size accepted");
    sp_record_init(&rec, SP_KIND_BLOB, "b", NULL);
    rec.payload_len = 4;
    CHECK(sp_writer_begin(w, &rec, &err) == 0 && sp_writer_append(w, "ab", 2, &err) == 0 &&
              sp_writer_end(w, &err) < 0,
          "short streamed payload accepted");
    sp_writer_free(w);
    json_decref(meta);
    fclose(f);
}

int main(void)
{
    size_t len;
    unsigned char *buf = make_stream(&len);
    test_round_trip(buf, len);
    test_encoded_head();
    test_zstd(buf, len);
    test_every_flip(buf, len);
    test_every_cut(buf, len);
    test_writer_rejects();
    free(buf);
    return CHECK_DONE("test_recstream");
}
