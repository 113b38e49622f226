/* WebDataset naming: sample keys and extensions of tar members, and the reversible escaping of record keys. */
#include "pipeline/wds.h"

#include <stdio.h>
#include <string.h>

#include "pipeline/labels.h"

void sp_wds_name_of(const char *stream_key, sp_wds_name *n)
{
    const char *base = strrchr(stream_key, '/');
    base = base ? base + 1 : stream_key;
    n->tar = stream_key;
    n->tar_len = 0;
    /* the innermost directory part that names an archive */
    for (const char *part = stream_key, *slash; part < base && (slash = strchr(part, '/')) != NULL;
         part = slash + 1)
        if (sp_labels_archive_name(part, (size_t)(slash - part)))
            n->tar_len = (size_t)(slash - stream_key);
    n->key = stream_key + (n->tar_len ? n->tar_len + 1 : 0);
    const char *dot = strchr(base, '.');
    n->key_len = (size_t)((dot ? dot : base + strlen(base)) - n->key);
    n->ext = dot ? dot + 1 : base + strlen(base);
}

static int plain(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

int sp_wds_key_escape(const char *key, size_t n, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)key[i];
        /* a '/' only between two non-empty parts: no absolute path, no empty part */
        int keep = plain(c) || (c == '/' && i > 0 && key[i - 1] != '/' && i + 1 < n);
        if (o + (keep ? 1 : 3) >= cap)
            return -1;
        if (keep) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    if (o >= cap)
        return -1;
    out[o] = 0;
    return (int)o;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int sp_wds_key_unescape(const char *key, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (o + 1 >= cap)
            return -1;
        int hi, lo;
        if (key[i] == '%' && i + 2 < n && (hi = hexval(key[i + 1])) >= 0 &&
            (lo = hexval(key[i + 2])) >= 0) {
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[o++] = key[i];
        }
    }
    if (o >= cap)
        return -1;
    out[o] = 0;
    return (int)o;
}

int sp_wds_parse_cls(const char *s, size_t n, char *why, size_t why_len)
{
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    size_t start = i;
    long long v = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9' && v <= 0x7fffffff)
        v = v * 10 + (s[i++] - '0');
    size_t end = i;
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r'))
        i++;
    if (i < n && s[i] == '\n')
        i++;
    if (end == start || i != n || v > 0x7fffffff) {
        char shown[40];
        size_t k = 0;
        for (size_t j = 0; j < n && k + 4 < sizeof shown; j++)
            shown[k++] = s[j] >= 0x20 && s[j] < 0x7f ? s[j] : '?';
        shown[k] = 0;
        snprintf(why, why_len, "the .cls member is not a class index (a decimal integer 0..2147483647): \"%s%s\"",
                 shown, k < n ? "..." : "");
        return -1;
    }
    return (int)v;
}
