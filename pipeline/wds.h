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

#include <stddef.h>

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

#endif
