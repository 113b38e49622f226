/* sp-unpack's whole input path: stream sniffing, libarchive with nested
 * archives, and the record stream reader, writing to /dev/null. */
#include <fcntl.h>
#include <unistd.h>

#include "fuzz.h"
#include "pipeline/unpack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = fuzz_fd(data, size);
    int null = open("/dev/null", O_WRONLY);
    if (fd < 0 || null < 0)
        goto out;
    sp_unpack_opts o;
    sp_unpack_opts_default(&o);
    o.max_buffered = 1 << 20;
    json_t *step = json_pack("{s:s, s:[]}", "tool", "fuzz", "args");
    sp_stage out;
    sp_stage_init(&out, step, null);
    sp_unpack_stats st = {0};
    sp_err err;
    if (sp_unpack_fd(fd, "fuzz", "fuzz", NULL, &out, &o, &st, &err) == 0)
        sp_stage_finish(&out, &err);
    sp_stage_free(&out);
    json_decref(step);
out:
    if (fd >= 0)
        close(fd);
    if (null >= 0)
        close(null);
    return 0;
}
