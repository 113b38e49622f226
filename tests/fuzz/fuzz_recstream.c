/* Record stream reader: read every record and payload of arbitrary bytes. */
#include <unistd.h>

#include "formats/recstream.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = fuzz_fd(data, size);
    if (fd < 0)
        return 0;
    sp_reader_limits lim;
    sp_reader_limits_default(&lim);
    lim.max_payload_in_memory = 1 << 20;
    sp_err err;
    sp_reader *r = sp_reader_open(fd, "fuzz", &lim, &err);
    sp_record rec;
    int n = 0;
    while (r && sp_reader_next(r, &rec, &err) == 1) {
        const uint8_t *p;
        /* alternate the two ways of consuming a payload */
        if (n++ % 2 ? sp_reader_payload(r, &rec, &p, &err) : sp_reader_drain(r, &rec, &err))
            break;
    }
    sp_reader_free(r);
    close(fd);
    return 0;
}
