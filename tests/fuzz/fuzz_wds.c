/* sp-decode --labels-from wds: the grouping of tar members by key and the
 * labels (.cls, .json fields), on members made from the bytes. The first byte
 * picks the label (bit 0: json:label, else cls), --encoded (bit 1) and
 * --unlabeled (bit 2); then members follow, each a name length (1 byte), the
 * name (keyed "fuzz.tar/NAME"; one that is no record key is left out), a
 * payload length (2 bytes, little-endian) and the payload, cut at the end of
 * the input. They go through a record stream in memory into the decoder,
 * whose records go to /dev/null. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "pipeline/decode.h"

/* The members as a record stream on a memfd, rewound; -1 on failure. */
static int members_stream(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz-wds", 0);
    if (fd < 0)
        return -1;
    sp_err err = {0};
    json_t *meta = json_object();
    sp_writer *w = meta ? sp_writer_open(fd, meta, &err) : NULL;
    json_decref(meta);
    int rc = w ? 0 : -1;
    size_t i = 0;
    while (rc == 0 && i < size) {
        size_t nlen = data[i++];
        nlen = nlen < size - i ? nlen : size - i;
        char key[300];
        snprintf(key, sizeof key, "fuzz.tar/%.*s", (int)nlen, (const char *)data + i);
        i += nlen;
        size_t plen = i + 2 <= size ? (size_t)(data[i] | data[i + 1] << 8) : 0;
        i = i + 2 <= size ? i + 2 : size;
        plen = plen < size - i ? plen : size - i;
        sp_record rec;
        if (strlen(key) == 9 + nlen && sp_record_init(&rec, SP_KIND_BLOB, key, &err) == 0)
            rc = sp_writer_record(w, &rec, data + i, plen, &err);
        i += plen;
    }
    if (rc == 0)
        rc = sp_writer_finish(w, &err);
    sp_writer_free(w);
    if (rc || lseek(fd, 0, SEEK_SET) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int fd = members_stream(data + 1, size - 1);
    int null = open("/dev/null", O_WRONLY);
    sp_decode_opts o;
    sp_decode_opts_default(&o);
    o.labels_from_wds = 1;
    o.wds_label = data[0] & 1 ? "json:label" : NULL;
    o.encoded = !!(data[0] & 2);
    o.unlabeled = !!(data[0] & 4);
    o.image.max_pixels = 1 << 16;
    json_t *step = json_pack("{s:s, s:[]}", "tool", "fuzz", "args");
    sp_stage out;
    sp_stage_init(&out, step, null);
    sp_err err = {0};
    sp_reader *r = fd >= 0 && null >= 0 ? sp_reader_open(fd, "fuzz", NULL, &err) : NULL;
    sp_decoder *d = r ? sp_decoder_create(&o, &out, &err) : NULL;
    int rc = d ? sp_decoder_input_meta(d, sp_reader_meta(r), &err) : -1;
    sp_record rec;
    while (rc == 0 && (rc = sp_reader_next(r, &rec, &err)) == 1)
        rc = sp_decoder_record(d, r, &rec, &err);
    if (rc == 0 && sp_decoder_finish(d, &err) == 0)
        sp_stage_finish(&out, &err);
    sp_decoder_free(d);
    sp_reader_free(r);
    sp_stage_free(&out);
    json_decref(step);
    if (fd >= 0)
        close(fd);
    if (null >= 0)
        close(null);
    return 0;
}
