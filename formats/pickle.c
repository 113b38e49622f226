/* A pickle reader that builds plain values and executes nothing: an allow-list of opcodes and globals (see pickle.h). */
#include "formats/pickle.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* What an SP_PK_INTERNAL value is. */
enum { G_RECONSTRUCT = 1, G_NDARRAY, G_DTYPE, G_ENCODE, G_BYTES, V_DTYPE };

struct sp_pickle {
    const uint8_t *data;
    size_t len, pos;
    const char *name;
    sp_pickle_limits lim;
    sp_err *err;
    sp_pk **all; /* every value made, for sp_pickle_free */
    size_t nall, capall; /* capacities in bytes (sp_grow) */
    uint8_t **bufs; /* decoded strings */
    size_t nbufs, capbufs;
    uint64_t objects, alloced;
    sp_pk **stack;
    size_t sp, capstack;
    size_t *marks;
    size_t nmarks, capmarks;
    sp_pk **memo;
    size_t capmemo; /* entries: a NULL one was never put */
    size_t memo_next; /* MEMOIZE's index: one past the highest put */
    const char *op;  /* the opcode being read, for messages */
    size_t op_at;
    sp_pk *root;
};

void sp_pickle_limits_default(sp_pickle_limits *l)
{
    l->max_string = 256u << 20;
    l->max_objects = 1u << 21;
    l->max_alloc = 256u << 20;
}

int sp_pickle_sniff(const uint8_t *data, size_t len)
{
    if (len >= 2 && data[0] == 0x80 && data[1] >= 2 && data[1] <= 5)
        return 1;
    return (len >= 3 && !memcmp(data, "(dp", 3)) || (len >= 1 && data[0] == '}');
}

static const char *op_name(int c)
{
    static const struct { unsigned char c; const char *name; } t[] = {
        {'(', "MARK"}, {'.', "STOP"}, {'0', "POP"}, {'1', "POP_MARK"}, {'2', "DUP"}, {'F', "FLOAT"},
        {'I', "INT"}, {'J', "BININT"}, {'K', "BININT1"}, {'L', "LONG"}, {'M', "BININT2"}, {'N', "NONE"},
        {'P', "PERSID"}, {'Q', "BINPERSID"}, {'R', "REDUCE"}, {'S', "STRING"}, {'T', "BINSTRING"},
        {'U', "SHORT_BINSTRING"}, {'V', "UNICODE"}, {'X', "BINUNICODE"}, {'a', "APPEND"}, {'b', "BUILD"},
        {'c', "GLOBAL"}, {'d', "DICT"}, {'}', "EMPTY_DICT"}, {'e', "APPENDS"}, {'g', "GET"}, {'h', "BINGET"},
        {'i', "INST"}, {'j', "LONG_BINGET"}, {'l', "LIST"}, {']', "EMPTY_LIST"}, {'o', "OBJ"}, {'p', "PUT"},
        {'q', "BINPUT"}, {'r', "LONG_BINPUT"}, {'s', "SETITEM"}, {'t', "TUPLE"}, {')', "EMPTY_TUPLE"},
        {'u', "SETITEMS"}, {'G', "BINFLOAT"}, {0x80, "PROTO"}, {0x81, "NEWOBJ"}, {0x82, "EXT1"},
        {0x83, "EXT2"}, {0x84, "EXT4"}, {0x85, "TUPLE1"}, {0x86, "TUPLE2"}, {0x87, "TUPLE3"},
        {0x88, "NEWTRUE"}, {0x89, "NEWFALSE"}, {0x8a, "LONG1"}, {0x8b, "LONG4"}, {'B', "BINBYTES"},
        {'C', "SHORT_BINBYTES"}, {0x8c, "SHORT_BINUNICODE"}, {0x8d, "BINUNICODE8"}, {0x8e, "BINBYTES8"},
        {0x8f, "EMPTY_SET"}, {0x90, "ADDITEMS"}, {0x91, "FROZENSET"}, {0x92, "NEWOBJ_EX"},
        {0x93, "STACK_GLOBAL"}, {0x94, "MEMOIZE"}, {0x95, "FRAME"}, {0x96, "BYTEARRAY8"},
        {0x97, "NEXT_BUFFER"}, {0x98, "READONLY_BUFFER"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (t[i].c == c)
            return t[i].name;
    return NULL;
}

/* Fails naming the file, the opcode and its offset. */
__attribute__((format(printf, 2, 3))) static int bad(sp_pickle *p, const char *fmt, ...)
{
    char why[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return sp_fail(p->err, SP_EXIT_DATA, "%s: pickle byte %zu (%s): %s", p->name, p->op_at, p->op, why);
}

static int oom(sp_pickle *p) { return sp_fail(p->err, SP_EXIT_SYSTEM, "%s: out of memory reading the pickle", p->name); }

static int truncated(sp_pickle *p)
{
    return sp_fail(p->err, SP_EXIT_DATA, "%s: truncated: the pickle ends inside %s at byte %zu", p->name, p->op,
                   p->op_at);
}

/* n bytes at the read position, or NULL (truncated, err set). */
static const uint8_t *take(sp_pickle *p, size_t n)
{
    if (n > p->len - p->pos) {
        truncated(p);
        return NULL;
    }
    const uint8_t *s = p->data + p->pos;
    p->pos += n;
    return s;
}

static uint64_t le(const uint8_t *s, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | s[i];
    return v;
}

/* A line up to (not including) '\n'. */
static const uint8_t *line(sp_pickle *p, size_t *n)
{
    const uint8_t *s = p->data + p->pos, *nl = memchr(s, '\n', p->len - p->pos);
    if (!nl) {
        truncated(p);
        return NULL;
    }
    *n = (size_t)(nl - s);
    p->pos += *n + 1;
    return s;
}

/* Room in the array *a (*cap bytes, n elements of size bytes used) for one
 * more: doubled when full. 0, or -1 out of memory (err set). */
static int room(sp_pickle *p, void **a, size_t *cap, size_t n, size_t size)
{
    if (n < *cap / size || !sp_grow(a, cap, (n ? 2 * n : 16) * size))
        return 0;
    return oom(p);
}

static int count(sp_pickle *p, uint64_t n)
{
    if (n > p->lim.max_objects - p->objects)
        return bad(p, "more than %llu values, the limit", (unsigned long long)p->lim.max_objects);
    p->objects += n;
    return 0;
}

static sp_pk *newval(sp_pickle *p, sp_pk_type type, int sub)
{
    if (count(p, 1))
        return NULL;
    if (room(p, (void **)&p->all, &p->capall, p->nall, sizeof *p->all))
        return NULL;
    sp_pk *v = calloc(1, sizeof *v);
    if (!v)
        return oom(p), NULL;
    v->type = type;
    v->sub = sub;
    p->all[p->nall++] = v;
    return v;
}

/* A buffer of n bytes owned by p, within the allocation limit. */
static uint8_t *newbuf(sp_pickle *p, size_t n)
{
    if (n > p->lim.max_alloc - p->alloced)
        return bad(p, "decoded strings over %llu bytes, the limit", (unsigned long long)p->lim.max_alloc), NULL;
    if (room(p, (void **)&p->bufs, &p->capbufs, p->nbufs, sizeof *p->bufs))
        return NULL;
    uint8_t *b = malloc(n ? n : 1);
    if (!b)
        return oom(p), NULL;
    p->alloced += n;
    p->bufs[p->nbufs++] = b;
    return b;
}

static int push(sp_pickle *p, sp_pk *v)
{
    if (!v)
        return -1;
    if (room(p, (void **)&p->stack, &p->capstack, p->sp, sizeof *p->stack))
        return -1;
    p->stack[p->sp++] = v;
    return 0;
}

/* The stack index of the last mark: values below it are not for the taking. */
static size_t floor_of(const sp_pickle *p) { return p->nmarks ? p->marks[p->nmarks - 1] : 0; }

static sp_pk *pop(sp_pickle *p)
{
    if (p->sp <= floor_of(p))
        return bad(p, "the stack is empty"), NULL;
    return p->stack[--p->sp];
}

static sp_pk *top(sp_pickle *p)
{
    if (p->sp <= floor_of(p))
        return bad(p, "the stack is empty"), NULL;
    return p->stack[p->sp - 1];
}

/* Pops to the last mark: the values above it are stack[*from..p->sp). */
static int pop_mark(sp_pickle *p, size_t *from)
{
    if (!p->nmarks)
        return bad(p, "no mark on the stack");
    *from = p->marks[--p->nmarks];
    return 0;
}

static int append(sp_pickle *p, sp_pk *to, sp_pk *v)
{
    if (count(p, 1))
        return -1;
    if (room(p, (void **)&to->items, &to->cap, to->n, sizeof *to->items))
        return -1;
    to->items[to->n++] = v;
    return 0;
}

/* A tuple, list or dict of stack[from..p->sp), which it pops. */
static int collect(sp_pickle *p, sp_pk_type type, size_t from)
{
    sp_pk *v = newval(p, type, 0);
    if (!v)
        return -1;
    if (type == SP_PK_DICT && (p->sp - from) % 2)
        return bad(p, "a dict of an odd number of values");
    for (size_t i = from; i < p->sp; i++)
        if (append(p, v, p->stack[i]))
            return -1;
    p->sp = from;
    return push(p, v);
}

static int put(sp_pickle *p, uint64_t i)
{
    sp_pk *v = top(p);
    if (!v)
        return -1;
    if (i >= p->lim.max_objects || i > p->len) /* a writer numbers its values, at most one per byte */
        return bad(p, "memo index %llu over the limit", (unsigned long long)i);
    size_t have = p->capmemo / sizeof *p->memo;
    if (i >= have) {
        size_t want = have ? have : 64;
        while (want <= i)
            want *= 2;
        if (sp_grow((void **)&p->memo, &p->capmemo, want * sizeof *p->memo))
            return oom(p);
        memset(p->memo + have, 0, (want - have) * sizeof *p->memo);
    }
    p->memo[i] = v;
    if (i + 1 > p->memo_next)
        p->memo_next = (size_t)i + 1;
    return 0;
}

static int get(sp_pickle *p, uint64_t i)
{
    if (i >= p->capmemo / sizeof *p->memo || !p->memo[i])
        return bad(p, "memo entry %llu was never put", (unsigned long long)i);
    return push(p, p->memo[i]);
}

/* 1 if s is UTF-8 (NUL allowed: a string may hold any code point; no
 * surrogates or overlong forms). */
static int utf8_ok(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
        if (!len || len > n - i)
            return 0;
        uint32_t cp = len == 1 ? c : c & (0x7f >> len);
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        static const uint32_t least[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < least[len] || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000))
            return 0;
        i += len;
    }
    return 1;
}

/* A string value of n bytes at the read position, zero-copy. */
static int str_at(sp_pickle *p, sp_pk_type type, uint64_t n)
{
    if (n > p->lim.max_string)
        return bad(p, "a string of %llu bytes, over the limit of %llu", (unsigned long long)n,
                   (unsigned long long)p->lim.max_string);
    const uint8_t *s = take(p, (size_t)n);
    if (!s)
        return -1;
    if (type == SP_PK_STR && !utf8_ok(s, (size_t)n))
        return bad(p, "a unicode string that is not valid UTF-8");
    sp_pk *v = newval(p, type, 0);
    if (!v)
        return -1;
    v->s = s, v->len = (size_t)n;
    return push(p, v);
}

/* A length-prefixed string: lb bytes of little-endian length, then the bytes. */
static int counted(sp_pickle *p, sp_pk_type type, int lb)
{
    const uint8_t *s = take(p, (size_t)lb);
    return s ? str_at(p, type, le(s, lb)) : -1;
}

static int put_utf8(uint8_t *o, uint32_t c)
{
    if (c < 0x80)
        return o[0] = (uint8_t)c, 1;
    if (c < 0x800)
        return o[0] = (uint8_t)(0xc0 | c >> 6), o[1] = (uint8_t)(0x80 | (c & 63)), 2;
    if (c < 0x10000)
        return o[0] = (uint8_t)(0xe0 | c >> 12), o[1] = (uint8_t)(0x80 | (c >> 6 & 63)),
               o[2] = (uint8_t)(0x80 | (c & 63)), 3;
    return o[0] = (uint8_t)(0xf0 | c >> 18), o[1] = (uint8_t)(0x80 | (c >> 12 & 63)),
           o[2] = (uint8_t)(0x80 | (c >> 6 & 63)), o[3] = (uint8_t)(0x80 | (c & 63)), 4;
}

static int hexval(const uint8_t *s, int n, uint32_t *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        int c = s[i], d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                        : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        *v = *v << 4 | (uint32_t)d;
    }
    return 0;
}

/* UNICODE: a raw-unicode-escape line (bytes are code points 0..255, \uXXXX
 * and \UXXXXXXXX escapes) as UTF-8. */
static int unicode_line(sp_pickle *p)
{
    size_t n;
    const uint8_t *s = line(p, &n);
    if (!s)
        return -1;
    if (n > p->lim.max_string / 2)
        return bad(p, "a string of %zu bytes, over the limit", n);
    uint8_t *o = newbuf(p, 2 * n);
    if (!o)
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = s[i];
        int w = i + 1 < n && s[i] == '\\' ? (s[i + 1] == 'u' ? 4 : s[i + 1] == 'U' ? 8 : 0) : 0;
        if (w) {
            if (i + 2 + (size_t)w > n || hexval(s + i + 2, w, &c) || c > 0x10ffff || (c >= 0xd800 && c < 0xe000))
                return bad(p, "a bad \\u escape in a unicode string");
            i += 1 + (size_t)w;
        }
        k += (size_t)put_utf8(o + k, c); /* 6 input bytes at least for 4 output bytes */
    }
    sp_pk *v = newval(p, SP_PK_STR, 0);
    if (!v)
        return -1;
    v->s = o, v->len = k;
    return push(p, v);
}

/* STRING: a quoted Python 2 repr of a byte string, escapes decoded. */
static int string_line(sp_pickle *p)
{
    size_t n;
    const uint8_t *s = line(p, &n);
    if (!s)
        return -1;
    if (n < 2 || (s[0] != '\'' && s[0] != '"') || s[n - 1] != s[0])
        return bad(p, "a string that is not quoted");
    if (n > p->lim.max_string)
        return bad(p, "a string of %zu bytes, over the limit", n);
    s++, n -= 2;
    uint8_t *o = newbuf(p, n);
    if (!o)
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\') {
            o[k++] = s[i];
            continue;
        }
        if (++i == n)
            return bad(p, "a string that ends in a backslash");
        static const char from[] = "\\'\"abfnrtv", to[] = "\\'\"\a\b\f\n\r\t\v";
        const char *e = memchr(from, s[i], sizeof from - 1);
        uint32_t c;
        if (e) {
            o[k++] = (uint8_t)to[e - from];
        } else if (s[i] == 'x' && i + 2 < n && !hexval(s + i + 1, 2, &c)) {
            o[k++] = (uint8_t)c;
            i += 2;
        } else if (s[i] >= '0' && s[i] <= '7') {
            c = 0;
            for (int d = 0; d < 3 && i < n && s[i] >= '0' && s[i] <= '7'; d++, i++)
                c = c * 8 + (uint32_t)(s[i] - '0');
            i--;
            o[k++] = (uint8_t)c;
        } else {
            return bad(p, "an unknown escape \\%c in a string", s[i]);
        }
    }
    sp_pk *v = newval(p, SP_PK_BYTES, 0);
    if (!v)
        return -1;
    v->s = o, v->len = k;
    return push(p, v);
}

/* A decimal line (INT, LONG, GET, PUT) as an integer; INT's "00"/"01" are
 * False/True (*is_bool set). */
static int decimal_line(sp_pickle *p, int64_t *out, int *is_bool)
{
    size_t n;
    const uint8_t *s = line(p, &n);
    if (!s)
        return -1;
    if (is_bool)
        *is_bool = n == 2 && s[0] == '0' && (s[1] == '0' || s[1] == '1');
    if (n && s[n - 1] == 'L')
        n--;
    int neg = n && s[0] == '-';
    size_t i = (size_t)neg;
    if (i == n)
        return bad(p, "not a decimal number");
    uint64_t v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return bad(p, "not a decimal number");
        if (v > (UINT64_C(1) << 62) / 5)
            return bad(p, "an integer over 64 bits");
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > (uint64_t)INT64_MAX)
        return bad(p, "an integer over 64 bits");
    *out = neg ? -(int64_t)v : (int64_t)v;
    return 0;
}

static int push_int(sp_pickle *p, sp_pk_type type, int64_t i)
{
    sp_pk *v = newval(p, type, 0);
    if (!v)
        return -1;
    v->i = i;
    return push(p, v);
}

/* GLOBAL and STACK_GLOBAL: only the callables of pickle.h's list. */
static int global(sp_pickle *p, const uint8_t *mod, size_t nmod, const uint8_t *name, size_t nname)
{
    static const struct { const char *mod, *name; int sub; } ok[] = {
        {"numpy.core.multiarray", "_reconstruct", G_RECONSTRUCT},
        {"numpy._core.multiarray", "_reconstruct", G_RECONSTRUCT},
        {"numpy", "ndarray", G_NDARRAY},
        {"numpy", "dtype", G_DTYPE},
        {"_codecs", "encode", G_ENCODE},
        {"__builtin__", "bytes", G_BYTES},
        {"builtins", "bytes", G_BYTES},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (strlen(ok[i].mod) == nmod && !memcmp(ok[i].mod, mod, nmod) && strlen(ok[i].name) == nname &&
            !memcmp(ok[i].name, name, nname))
            return push(p, newval(p, SP_PK_INTERNAL, ok[i].sub));
    return bad(p, "global %.*s.%.*s is not allowed (only numpy's uint8 arrays and byte strings are read)",
               (int)(nmod > 100 ? 100 : nmod), (const char *)mod, (int)(nname > 100 ? 100 : nname),
               (const char *)name);
}

static int is_text(const sp_pk *v, const char *s)
{
    return v && (v->type == SP_PK_STR || v->type == SP_PK_BYTES) && v->len == strlen(s) && !memcmp(v->s, s, v->len);
}

static int is_int(const sp_pk *v) { return v && (v->type == SP_PK_INT || v->type == SP_PK_BOOL); }

/* _codecs.encode(str, "latin1"): the code points (each under 256) as bytes. */
static sp_pk *latin1(sp_pickle *p, const sp_pk *str)
{
    uint8_t *o = newbuf(p, str->len);
    if (!o)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < str->len; i++) {
        uint8_t c = str->s[i];
        if (c < 0x80) {
            o[k++] = c;
        } else if ((c == 0xc2 || c == 0xc3) && i + 1 < str->len) {
            o[k++] = (uint8_t)((c & 3) << 6 | (str->s[++i] & 63));
        } else {
            bad(p, "_codecs.encode of a character over U+00FF as latin1");
            return NULL;
        }
    }
    sp_pk *v = newval(p, SP_PK_BYTES, 0);
    if (v)
        v->s = o, v->len = k;
    return v;
}

static int reduce(sp_pickle *p)
{
    sp_pk *args = pop(p), *fn = args ? pop(p) : NULL;
    if (!fn)
        return -1;
    if (args->type != SP_PK_TUPLE)
        return bad(p, "the arguments are not a tuple");
    sp_pk **a = args->items;
    int sub = fn->type == SP_PK_INTERNAL ? fn->sub : 0;
    if (sub == G_RECONSTRUCT && args->n == 3 && a[0]->type == SP_PK_INTERNAL && a[0]->sub == G_NDARRAY)
        return push(p, newval(p, SP_PK_ARRAY, 0)); /* filled by BUILD */
    if (sub == G_DTYPE && args->n >= 1) {
        if (!is_text(a[0], "u1"))
            return bad(p, "numpy dtype '%.*s' is not allowed (only u1, uint8)",
                       (int)(a[0]->len > 40 ? 40 : a[0]->len), a[0]->s ? (const char *)a[0]->s : "?");
        return push(p, newval(p, SP_PK_INTERNAL, V_DTYPE));
    }
    if (sub == G_ENCODE && args->n == 2 && a[0]->type == SP_PK_STR &&
        (is_text(a[1], "latin1") || is_text(a[1], "latin-1")))
        return push(p, latin1(p, a[0]));
    if (sub == G_BYTES && args->n == 0)
        return push(p, newval(p, SP_PK_BYTES, 0));
    return bad(p, "a call that is not numpy's array or dtype, _codecs.encode(str, 'latin1') or bytes()");
}

/* BUILD on an array: the state (version, shape, dtype, fortran, data), or
 * without the version. */
static int build_array(sp_pickle *p, sp_pk *arr, const sp_pk *st)
{
    if (arr->sub)
        return bad(p, "an array built twice");
    if (st->type != SP_PK_TUPLE || (st->n != 5 && st->n != 4))
        return bad(p, "an array state that is not numpy's (version, shape, dtype, fortran, data)");
    sp_pk **a = st->items + (st->n == 5);
    if (st->n == 5 && !(is_int(st->items[0]) && st->items[0]->i == 1))
        return bad(p, "numpy array state version %lld (only 1)", (long long)st->items[0]->i);
    if (a[0]->type != SP_PK_TUPLE || a[0]->n > SP_PK_MAX_DIMS)
        return bad(p, "an array shape that is not a tuple of at most %d integers", SP_PK_MAX_DIMS);
    if (a[1]->type != SP_PK_INTERNAL || a[1]->sub != V_DTYPE)
        return bad(p, "an array whose dtype is not numpy's u1");
    if (!is_int(a[2]) || a[2]->i)
        return bad(p, "an array in Fortran order (only C order)");
    if (a[3]->type != SP_PK_BYTES)
        return bad(p, "array data that is not a byte string");
    uint64_t total = 1;
    for (size_t i = 0; i < a[0]->n; i++) {
        const sp_pk *d = a[0]->items[i];
        if (!is_int(d) || d->i < 0 || (uint64_t)d->i > p->lim.max_string ||
            (d->i && total > p->lim.max_string / (uint64_t)d->i))
            return bad(p, "an array dimension that is negative or over the limit");
        total *= (uint64_t)d->i;
        arr->shape[i] = (uint64_t)d->i;
    }
    if (total != a[3]->len)
        return bad(p, "an array of %llu elements with %zu bytes of data", (unsigned long long)total, a[3]->len);
    arr->ndim = (int)a[0]->n;
    arr->s = a[3]->s;
    arr->len = a[3]->len;
    arr->sub = 1;
    return 0;
}

static int build(sp_pickle *p)
{
    sp_pk *st = pop(p), *obj = st ? top(p) : NULL;
    if (!obj)
        return -1;
    if (obj->type == SP_PK_ARRAY)
        return build_array(p, obj, st);
    if (obj->type == SP_PK_INTERNAL && obj->sub == V_DTYPE && st->type == SP_PK_TUPLE)
        return 0; /* byte order and the rest: nothing for u1 */
    return bad(p, "BUILD of something that is not a numpy array or dtype");
}

/* SETITEMS (a dict, an even count) or APPENDS (a list): the values
 * stack[from..p->sp) go into the container at stack[from - 1]. */
static int extend(sp_pickle *p, sp_pk_type type, size_t from)
{
    const char *what = type == SP_PK_DICT ? "SETITEM(S) on something that is not a dict"
                                          : "APPEND(S) on something that is not a list";
    if (from == 0 || p->stack[from - 1]->type != type || (type == SP_PK_DICT && (p->sp - from) % 2))
        return bad(p, "%s", what);
    sp_pk *to = p->stack[from - 1];
    for (size_t i = from; i < p->sp; i++)
        if (append(p, to, p->stack[i]))
            return -1;
    p->sp = from;
    return 0;
}

static int tuple_n(sp_pickle *p, size_t n)
{
    if (p->sp - floor_of(p) < n)
        return bad(p, "the stack is empty");
    return collect(p, SP_PK_TUPLE, p->sp - n);
}

/* One opcode c (already read). 1 at STOP, 0 to go on, -1 on error. */
static int step(sp_pickle *p, int c)
{
    const uint8_t *s;
    size_t n, from = 0;
    int64_t i;
    int is_bool;
    switch (c) {
    case 0x80: /* PROTO */
        if (!(s = take(p, 1)))
            return -1;
        return s[0] > 4 ? bad(p, "protocol %d (only 0 to 4)", s[0]) : 0;
    case 0x95: /* FRAME: its bytes are read as they come */
        if (!(s = take(p, 8)))
            return -1;
        return le(s, 8) > p->len - p->pos ? truncated(p) : 0;
    case '(':
        if (room(p, (void **)&p->marks, &p->capmarks, p->nmarks, sizeof *p->marks) || count(p, 1))
            return -1;
        p->marks[p->nmarks++] = p->sp;
        return 0;
    case '.':
        if (!(p->root = pop(p)))
            return -1;
        return 1;
    case 'N': return push(p, newval(p, SP_PK_NONE, 0));
    case 0x88: return push_int(p, SP_PK_BOOL, 1);
    case 0x89: return push_int(p, SP_PK_BOOL, 0);
    case 'K': return (s = take(p, 1)) ? push_int(p, SP_PK_INT, s[0]) : -1;
    case 'M': return (s = take(p, 2)) ? push_int(p, SP_PK_INT, (int64_t)le(s, 2)) : -1;
    case 'J': return (s = take(p, 4)) ? push_int(p, SP_PK_INT, (int32_t)(uint32_t)le(s, 4)) : -1;
    case 0x8a: /* LONG1 */
        if (!(s = take(p, 1)) || !(s = take(p, n = s[0])))
            return -1;
        if (n > 8)
            return bad(p, "an integer over 64 bits");
        i = n ? (int64_t)(le(s, (int)n) << (64 - 8 * n)) >> (64 - 8 * n) : 0; /* sign-extended */
        return push_int(p, SP_PK_INT, i);
    case 'I':
        if (decimal_line(p, &i, &is_bool))
            return -1;
        return push_int(p, is_bool ? SP_PK_BOOL : SP_PK_INT, i);
    case 'L':
        return decimal_line(p, &i, NULL) ? -1 : push_int(p, SP_PK_INT, i);
    case 'U': return counted(p, SP_PK_BYTES, 1);
    case 'T': return counted(p, SP_PK_BYTES, 4);
    case 'C': return counted(p, SP_PK_BYTES, 1);
    case 'B': return counted(p, SP_PK_BYTES, 4);
    case 0x8e: return counted(p, SP_PK_BYTES, 8);
    case 0x8c: return counted(p, SP_PK_STR, 1);
    case 'X': return counted(p, SP_PK_STR, 4);
    case 0x8d: return counted(p, SP_PK_STR, 8);
    case 'S': return string_line(p);
    case 'V': return unicode_line(p);
    case ')': return collect(p, SP_PK_TUPLE, p->sp);
    case ']': return push(p, newval(p, SP_PK_LIST, 0));
    case '}': return push(p, newval(p, SP_PK_DICT, 0));
    case 0x85: return tuple_n(p, 1);
    case 0x86: return tuple_n(p, 2);
    case 0x87: return tuple_n(p, 3);
    case 't': return pop_mark(p, &from) ? -1 : collect(p, SP_PK_TUPLE, from);
    case 'l': return pop_mark(p, &from) ? -1 : collect(p, SP_PK_LIST, from);
    case 'd': return pop_mark(p, &from) ? -1 : collect(p, SP_PK_DICT, from);
    case 'u': return pop_mark(p, &from) ? -1 : extend(p, SP_PK_DICT, from);
    case 'e': return pop_mark(p, &from) ? -1 : extend(p, SP_PK_LIST, from);
    case 's': return p->sp < 3 + floor_of(p) ? bad(p, "the stack is empty")
                                                                             : extend(p, SP_PK_DICT, p->sp - 2);
    case 'a': return p->sp < 2 + floor_of(p) ? bad(p, "the stack is empty")
                                                                             : extend(p, SP_PK_LIST, p->sp - 1);
    case 'q': return (s = take(p, 1)) ? put(p, s[0]) : -1;
    case 'r': return (s = take(p, 4)) ? put(p, le(s, 4)) : -1;
    case 'p': return decimal_line(p, &i, NULL) ? -1 : i < 0 ? bad(p, "a negative memo index") : put(p, (uint64_t)i);
    case 0x94: return put(p, p->memo_next);
    case 'h': return (s = take(p, 1)) ? get(p, s[0]) : -1;
    case 'j': return (s = take(p, 4)) ? get(p, le(s, 4)) : -1;
    case 'g': return decimal_line(p, &i, NULL) ? -1 : i < 0 ? bad(p, "a negative memo index") : get(p, (uint64_t)i);
    case 'c': {
        size_t nm, nn;
        const uint8_t *m = line(p, &nm), *nam = m ? line(p, &nn) : NULL;
        return nam ? global(p, m, nm, nam, nn) : -1;
    }
    case 0x93: { /* STACK_GLOBAL */
        sp_pk *nam = pop(p), *m = nam ? pop(p) : NULL;
        if (!m)
            return -1;
        if (m->type != SP_PK_STR || nam->type != SP_PK_STR)
            return bad(p, "STACK_GLOBAL of names that are not strings");
        return global(p, m->s, m->len, nam->s, nam->len);
    }
    case 'R': return reduce(p);
    case 'b': return build(p);
    default: {
        const char *name = op_name(c);
        return name ? bad(p, "opcode %s is not allowed", name) : bad(p, "unknown opcode 0x%02x", c);
    }
    }
}

sp_pickle *sp_pickle_load(const uint8_t *data, size_t len, const sp_pickle_limits *lim, const char *name,
                          sp_err *err)
{
    sp_pickle *p = calloc(1, sizeof *p);
    if (!p) {
        sp_fail(err, SP_EXIT_SYSTEM, "%s: out of memory reading the pickle", name);
        return NULL;
    }
    p->data = data, p->len = len, p->name = name, p->err = err;
    if (lim)
        p->lim = *lim;
    else
        sp_pickle_limits_default(&p->lim);
    int rc = 0;
    while (rc == 0) {
        p->op_at = p->pos;
        p->op = "the opcode";
        if (p->pos == p->len) {
            p->op = "STOP";
            truncated(p);
            rc = -1;
            break;
        }
        int c = p->data[p->pos++];
        p->op = op_name(c) ? op_name(c) : "an unknown opcode";
        rc = step(p, c);
    }
    if (rc < 0 || (p->root && p->root->type == SP_PK_INTERNAL)) {
        if (rc >= 0)
            bad(p, "the pickle holds a bare global or dtype");
        sp_pickle_free(p);
        return NULL;
    }
    return p;
}

void sp_pickle_free(sp_pickle *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nall; i++) {
        free(p->all[i]->items);
        free(p->all[i]);
    }
    for (size_t i = 0; i < p->nbufs; i++)
        free(p->bufs[i]);
    free(p->all);
    free(p->bufs);
    free(p->stack);
    free(p->marks);
    free(p->memo);
    free(p);
}

const sp_pk *sp_pickle_root(const sp_pickle *p) { return p->root; }

const sp_pk *sp_pk_get(const sp_pk *dict, const char *key)
{
    if (!dict || dict->type != SP_PK_DICT)
        return NULL;
    for (size_t i = dict->n; i >= 2; i -= 2) /* the last of a repeated key wins, as in Python */
        if (is_text(dict->items[i - 2], key))
            return dict->items[i - 1];
    return NULL;
}
