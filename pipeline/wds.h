/* WebDataset naming: how a tar member's path splits into a sample key and a
 * field, and how any record key is written as a key that survives that split.
 *
 * A WebDataset tar holds one group of members per sample, adjacent in the
 * tar: "dir/a.jpg", "dir/a.cls", "dir/a.json". The key is the member path up
 * to the first dot of its base name ("dir/a"), the extension what follows it
 * ("dir/a.b.jpg": key "dir/a", extension "b.jpg").
 *
 * sp-cat --tar writes record keys (which may hold dots, '#', spaces, UTF-8)
 * as keys made of [A-Za-z0-9_-] and '/' between non-empty parts only; every
 * other byte is %XX (upper-case hex), '%' and '.' included. The escaping is
 * one to one, so escaped keys are unique when the keys are, and
 * sp_wds_key_unescape gives the record key back. */
#ifndef SP_WDS_H
#define SP_WDS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "formats/recstream.h"

/* The parts of a stream key from sp-unpack ("shards-000.tar/dir/a.b.jpg"):
 * the archive it came from (everything up to its innermost archive part,
 * "shards-000.tar"; length 0 when no part names an archive), the WebDataset
 * key below it ("dir/a") and the extension ("b.jpg", NUL-terminated; "" when
 * the base name has no dot). Pointers into stream_key. */
typedef struct sp_wds_name {
    const char *tar;
    size_t tar_len;
    const char *key;
    size_t key_len;
    const char *ext;
} sp_wds_name;
void sp_wds_name_of(const char *stream_key, sp_wds_name *n);

/* Writes key (n bytes) escaped as above, NUL-terminated, into out (cap
 * bytes; 3 * n + 1 always suffices). Returns the escaped length, or -1 when
 * it does not fit. */
int sp_wds_key_escape(const char *key, size_t n, char *out, size_t cap);
/* Undoes sp_wds_key_escape: %XX (hex, either case) becomes its byte, every
 * other byte stays. out has cap bytes; returns the length (NUL-terminated)
 * or -1 when it does not fit. */
int sp_wds_key_unescape(const char *key, size_t n, char *out, size_t cap);

/* A class index from a .cls member's n bytes: a decimal integer 0..2^31-1,
 * optional blanks and one newline around it. Returns it, or -1 with why set
 * (why_len bytes). */
int sp_wds_parse_cls(const char *s, size_t n, char *why, size_t why_len);

/* ---- writing WebDataset tars (sp-cat --tar, --tar-shards) ----
 * One group of members per record, in the order given, named by its escaped
 * key E: E.jpg (an encoded JPEG record's bytes as stored), E.png (an encoded
 * PNG's bytes, or a PNG of uint8 pixels of 1 to 4 channels), E.cls (the
 * label, decimal, no newline; none when the record has no label) and E.json
 * ({"key", "label", "class", ["label2", "class2",] "split", "checksum": the
 * record's XXH3-64 as 16 hex digits}). Members are ustar (pax headers only for
 * paths over ustar's limits), mode 0644, owner 0, mtime 0: the same records
 * give the same bytes. */
typedef struct sp_wds_writer sp_wds_writer;

/* fd >= 0: one tar written to fd (not closed; what names it in messages).
 * fd < 0: tars at pattern, a file name with one %d (flags 0 and a width
 * allowed: "out-%05d.tar"), numbered from 0; a new one is begun before a
 * record would take the current one past max_bytes (one record larger than
 * that has a tar of its own). Each tar is written under a temporary name and
 * renamed when complete. NULL with err set on a bad pattern. */
sp_wds_writer *sp_wds_writer_open(int fd, const char *what, const char *pattern, uint64_t max_bytes, sp_err *err);
/* Writes one record: rec and its payload (rec->payload_len bytes). classes
 * (the set's class names, may be NULL) name the labels in the json. Blob and
 * float records are an error naming the key. */
int sp_wds_writer_record(sp_wds_writer *w, const sp_record *rec, const uint8_t *payload, const json_t *classes,
                         const json_t *classes2, sp_err *err);
/* Ends the last tar (renamed into place). The number of tars written in *ntars. */
int sp_wds_writer_finish(sp_wds_writer *w, int *ntars, sp_err *err);
/* Accepts NULL; a tar not finished is removed. */
void sp_wds_writer_free(sp_wds_writer *w);
/* 0 if pattern is a valid --tar-shards pattern, else -1 with why set. */
int sp_wds_pattern_check(const char *pattern, char *why, size_t why_len);

#endif
