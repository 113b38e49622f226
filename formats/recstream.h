/* The record stream: the one format on every pipe between shardpipe stages.
 * Specification: formats/recstream.md.
 *
 * Ownership: readers and writers own their buffers; sp_record is a plain
 * value the caller owns. Metadata is a jansson object owned by the reader
 * (borrowed by callers until the next sp_reader_next) or by the caller
 * (writers copy what they need while writing).
 * Errors: every function that can fail returns -1 and fills sp_err with a
 * message naming the stream and, where there is one, the record.
 */
#ifndef SP_RECSTREAM_H
#define SP_RECSTREAM_H

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/sp_common.h"

#define SP_STREAM_MAGIC "\x89SPR\r\n\x1a\n" /* 8 bytes */
#define SP_STREAM_VERSION 1u
#define SP_KEY_MAX 4095                     /* bytes of UTF-8, no NUL */

enum sp_kind { SP_KIND_BLOB = 1, SP_KIND_ENCODED = 2, SP_KIND_PIXELS = 3 };
enum sp_split { SP_SPLIT_NONE = 0, SP_SPLIT_TRAIN = 1, SP_SPLIT_TEST = 2, SP_SPLIT_VAL = 3 };
enum sp_dtype { SP_DTYPE_NONE = 0, SP_DTYPE_U8 = 1, SP_DTYPE_F16 = 2, SP_DTYPE_F32 = 3 };
/* The codec of an encoded record's bytes (the values of formats/image.h's SP_IMAGE_*). */
enum sp_codec { SP_CODEC_NONE = 0, SP_CODEC_JPEG = 1, SP_CODEC_PNG = 2 };
#define SP_LABEL_NONE (-1)

typedef struct sp_record {
    uint8_t kind;          /* enum sp_kind */
    uint8_t split;         /* enum sp_split */
    uint8_t dtype;         /* enum sp_dtype: PIXELS, the tensor's; ENCODED, SP_DTYPE_U8 (the
                            * decoded samples); BLOB, SP_DTYPE_NONE */
    uint8_t codec;         /* enum sp_codec: ENCODED, the bytes' codec; other kinds, NONE */
    int32_t label, label2; /* class indices or SP_LABEL_NONE */
    uint32_t h, w, c;      /* PIXELS: the tensor's shape (HxWxC); ENCODED: the shape its
                            * bytes decode to (C = 3: decoded as RGB); BLOB: 0 */
    uint64_t payload_len;  /* bytes; for PIXELS exactly h*w*c*sizeof(dtype) */
    uint64_t checksum;     /* XXH3-64 of the payload; set by the reader once the
                            * payload has been consumed and verified */
    uint16_t key_len;
    char key[SP_KEY_MAX + 1]; /* source path, NUL-terminated */
} sp_record;

/* Names used in JSON, manifests and shard attributes. */
const char *sp_kind_name(int kind);    /* "blob", "encoded", "pixels" */
const char *sp_kind_record(int kind);  /* "a blob record", "an encoded record", "a pixel record" */
const char *sp_split_name(int split);  /* "train", "test", "val", "none" */
int sp_split_from_name(const char *s); /* -1 when unknown */
const char *sp_dtype_name(int dtype);  /* "uint8", "float16", "float32" */
const char *sp_codec_name(int codec);  /* "jpeg", "png", "none" */
int sp_codec_from_name(const char *s); /* SP_CODEC_NONE when unknown */
int sp_dtype_size(int dtype);          /* bytes per value, 0 for NONE */

/* Fills the common fields of a record: kind, key (truncated copies are an
 * error), labels none, split none. Returns -1 when the key is empty, too
 * long or not valid UTF-8. */
int sp_record_init(sp_record *rec, int kind, const char *key, sp_err *err);
int sp_utf8_valid(const char *s, size_t n);

/* Appends a copy of step ({"tool","version","args","inputs"}: what shaped
 * the bytes, never where they were written) to meta["recipe"], creating the
 * array. Returns 0 or -1 (out of memory, or step not an object). */
int sp_meta_add_recipe(json_t *meta, const json_t *step);

/* ---------------- reading ---------------- */
typedef struct sp_reader sp_reader;

typedef struct sp_reader_limits {
    uint64_t max_payload_in_memory; /* sp_reader_payload() refuses larger payloads */
    uint32_t max_pixels_side;       /* h, w bound for PIXELS and ENCODED records */
    uint32_t max_channels;
} sp_reader_limits;
void sp_reader_limits_default(sp_reader_limits *lim); /* 4 GiB, 1<<16, 16 */

/* Opens a stream on fd (not closed by the reader). name is used in
 * messages ("-" reads as "stdin"). Detects a zstd-compressed stream by its
 * magic. Reads the header and the first metadata frame. */
sp_reader *sp_reader_open(int fd, const char *name, const sp_reader_limits *lim, sp_err *err);
/* The same, for a caller that already read pre_len bytes of the stream from
 * fd (to sniff its type): they are read first. pre must outlive the reader. */
sp_reader *sp_reader_open_prefixed(int fd, const void *pre, size_t pre_len, const char *name,
                                   const sp_reader_limits *lim, sp_err *err);
/* 1 if buf (n >= 8 bytes) starts like a record stream: plain magic, or a
 * zstd frame whose first decompressed bytes are the magic. */
int sp_stream_sniff(const void *buf, size_t n);
void sp_reader_free(sp_reader *r); /* accepts NULL */
/* The current stream metadata (the latest metadata frame). Borrowed. */
json_t *sp_reader_meta(const sp_reader *r);
/* Increments every time a metadata frame is read (starts at 1). */
uint64_t sp_reader_meta_serial(const sp_reader *r);

/* Advances to the next record, skipping (and verifying) any unread payload of
 * the previous one. Returns 1 with *rec filled, 0 at a verified end of stream
 * (trailer count matches, no trailing bytes), -1 on error. */
int sp_reader_next(sp_reader *r, sp_record *rec, sp_err *err);
/* Streams the current record's payload: returns bytes read (0 at the end of
 * the payload, after the checksum was verified), or -1. */
ssize_t sp_reader_read(sp_reader *r, void *buf, size_t n, sp_err *err);
/* Reads (and so verifies) the rest of the current payload without keeping
 * it, and fills rec->checksum. */
int sp_reader_drain(sp_reader *r, sp_record *rec, sp_err *err);
/* Reads the whole payload into a buffer owned by the reader, valid until the
 * next call; verifies the checksum and fills rec->checksum. */
int sp_reader_payload(sp_reader *r, sp_record *rec, const uint8_t **data, sp_err *err);

/* ---------------- writing ---------------- */
typedef struct sp_writer sp_writer;

/* Writes the header and a metadata frame for meta to fd (not closed). */
sp_writer *sp_writer_open(int fd, const json_t *meta, sp_err *err);
void sp_writer_free(sp_writer *w); /* accepts NULL; does not write a trailer */
/* A new metadata frame; replaces the metadata for all later records. */
int sp_writer_meta(sp_writer *w, const json_t *meta, sp_err *err);
/* One record with its whole payload (rec->payload_len is taken from len;
 * rec->checksum is set). */
int sp_writer_record(sp_writer *w, sp_record *rec, const void *payload, size_t len, sp_err *err);
/* One record whose payload_len bytes follow through sp_writer_append calls;
 * sp_writer_end fails if fewer or more bytes were appended. */
int sp_writer_begin(sp_writer *w, const sp_record *rec, sp_err *err);
int sp_writer_append(sp_writer *w, const void *p, size_t n, sp_err *err);
int sp_writer_end(sp_writer *w, sp_err *err);
/* Writes the trailer (record count) and flushes. After it, only free. */
int sp_writer_finish(sp_writer *w, sp_err *err);

#endif
