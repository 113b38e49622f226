/* IDX headers and payloads (the MNIST family): sizes checked against the file before anything is read. */
#include "formats/idx.h"

#include <string.h>

int sp_idx_sniff(const uint8_t *buf, size_t len)
{
    if (len < 8 || buf[0] || buf[1])
        return 0;
    uint8_t t = buf[2];
    int type_ok = t == 0x08 || t == 0x09 || t == 0x0B || t == 0x0C || t == 0x0D || t == 0x0E;
    return type_ok && buf[3] >= 1 && buf[3] <= SP_IDX_MAX_DIMS && len >= 4u + 4u * buf[3];
}

int sp_idx_parse_header(const uint8_t *buf, size_t have, uint64_t len, const char *name, sp_idx *out,
                        sp_err *err)
{
    memset(out, 0, sizeof *out);
    if (have > len)
        have = (size_t)len;
    if (have < 4 || buf[0] || buf[1])
        return sp_fail(err, SP_EXIT_DATA, "%s: not an IDX file (bad magic)", name);
    out->type = buf[2];
    out->ndim = buf[3];
    if (out->type != 0x08)
        return sp_fail(err, SP_EXIT_DATA, "%s: IDX element type 0x%02x is not supported (only 0x08, unsigned byte)",
                       name, out->type);
    if (out->ndim < 1 || out->ndim > SP_IDX_MAX_DIMS)
        return sp_fail(err, SP_EXIT_DATA, "%s: IDX file with %u dimensions (1 to %d supported)", name,
                       out->ndim, SP_IDX_MAX_DIMS);
    size_t header = 4u + 4u * out->ndim;
    if (have < header)
        return sp_fail(err, SP_EXIT_DATA, "%s: IDX header cut short (%llu bytes)", name, (unsigned long long)len);
    uint64_t item = 1;
    for (int i = 0; i < out->ndim; i++) {
        out->dims[i] = sp_get_be32(buf + 4 + 4 * i);
        if (i > 0) {
            if (out->dims[i] == 0 || out->dims[i] > 65536)
                return sp_fail(err, SP_EXIT_DATA, "%s: IDX dimension %d is %u", name, i, out->dims[i]);
            item *= out->dims[i];
        }
    }
    out->count = out->dims[0];
    out->item_bytes = item;
    if (item > (1ull << 32))
        return sp_fail(err, SP_EXIT_DATA, "%s: IDX item of %llu bytes is too large", name, (unsigned long long)item);
    uint64_t want = (uint64_t)header + out->count * item;
    if (len != want)
        return sp_fail(err, SP_EXIT_DATA,
                       "%s: IDX header says %llu items of %llu bytes (%llu bytes with header), file has %llu bytes",
                       name, (unsigned long long)out->count, (unsigned long long)item,
                       (unsigned long long)want, (unsigned long long)len);
    return 0;
}

int sp_idx_parse(const uint8_t *buf, size_t len, const char *name, sp_idx *out, sp_err *err)
{
    if (sp_idx_parse_header(buf, len, len, name, out, err))
        return -1;
    out->data = buf + sp_idx_header_bytes(out);
    return 0;
}
