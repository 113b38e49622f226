/* IDX parser: whatever it accepts must be readable in full. */
#include "formats/idx.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sp_idx idx;
    sp_err err;
    if (sp_idx_sniff(data, size) && sp_idx_parse(data, size, "fuzz", &idx, &err) == 0) {
        volatile unsigned sum = 0;
        for (uint64_t i = 0; i < idx.count * idx.item_bytes; i++)
            sum += idx.data[i];
        (void)sum;
    }
    return 0;
}
