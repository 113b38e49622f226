/* IDX parsing: good files, and each kind of bad header. */
#include <string.h>

#include "check.h"
#include "formats/idx.h"

static size_t make_idx(uint8_t *buf, uint8_t type, uint8_t ndim, const uint32_t *dims, size_t extra)
{
    buf[0] = buf[1] = 0;
    buf[2] = type;
    buf[3] = ndim;
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        buf[4 + 4 * i] = (uint8_t)(dims[i] >> 24);
        buf[5 + 4 * i] = (uint8_t)(dims[i] >> 16);
        buf[6 + 4 * i] = (uint8_t)(dims[i] >> 8);
        buf[7 + 4 * i] = (uint8_t)dims[i];
        n *= dims[i];
    }
    size_t h = 4 + 4u * ndim;
    for (size_t i = 0; i < n + extra; i++)
        buf[h + i] = (uint8_t)i;
    return h + n + extra;
}

int main(void)
{
    uint8_t buf[4096];
    sp_idx idx;
    sp_err err = {0};
    uint32_t img[3] = {3, 4, 5}, lab[1] = {3};

    size_t n = make_idx(buf, 0x08, 3, img, 0);
    CHECK(sp_idx_sniff(buf, n), "images file not sniffed");
    CHECK(sp_idx_parse(buf, n, "img", &idx, &err) == 0, "%s", err.msg);
    CHECK(idx.count == 3 && idx.item_bytes == 20 && idx.dims[1] == 4 && idx.dims[2] == 5 &&
              idx.data == buf + 16 && idx.data[19] == 19,
          "images header fields");
    n = make_idx(buf, 0x08, 1, lab, 0);
    CHECK(sp_idx_parse(buf, n, "lab", &idx, &err) == 0 && idx.count == 3 && idx.item_bytes == 1, "%s", err.msg);

    n = make_idx(buf, 0x08, 3, img, 1);
    CHECK(sp_idx_parse(buf, n, "long", &idx, &err) < 0 && strstr(err.msg, "long: IDX header says 3 items"),
          "one byte too many: %s", err.msg);
    n = make_idx(buf, 0x08, 3, img, 0);
    CHECK(sp_idx_parse(buf, n - 1, "short", &idx, &err) < 0 && strstr(err.msg, "file has 75 bytes"),
          "one byte short: %s", err.msg);
    buf[0] = 1;
    CHECK(!sp_idx_sniff(buf, n) && sp_idx_parse(buf, n, "magic", &idx, &err) < 0 && strstr(err.msg, "bad magic"),
          "bad magic: %s", err.msg);
    n = make_idx(buf, 0x0D, 3, img, 0);
    CHECK(sp_idx_parse(buf, n, "float", &idx, &err) < 0 && strstr(err.msg, "0x0d is not supported"),
          "float IDX: %s", err.msg);
    uint32_t zero[3] = {3, 0, 5};
    n = make_idx(buf, 0x08, 3, zero, 0);
    CHECK(sp_idx_parse(buf, n, "zero", &idx, &err) < 0 && strstr(err.msg, "dimension 1 is 0"), "zero dim: %s",
          err.msg);
    CHECK(sp_idx_parse(buf, 6, "cut", &idx, &err) < 0 && strstr(err.msg, "header cut short"), "cut header: %s",
          err.msg);
    uint8_t five[] = {0, 0, 8, 9, 0, 0, 0, 1};
    CHECK(sp_idx_parse(five, sizeof five, "ndim", &idx, &err) < 0 && strstr(err.msg, "9 dimensions"),
          "ndim 9: %s", err.msg);
    /* a count that overflows the file is caught by the size check, not by allocation */
    uint32_t huge[3] = {0xFFFFFFFFu, 28, 28};
    make_idx(buf, 0x08, 3, (uint32_t[]){0, 28, 28}, 0);
    for (int i = 0; i < 4; i++)
        buf[4 + i] = (uint8_t)(huge[0] >> (24 - 8 * i));
    CHECK(sp_idx_parse(buf, 16, "huge", &idx, &err) < 0, "huge count accepted");
    return CHECK_DONE("test_idx");
}
