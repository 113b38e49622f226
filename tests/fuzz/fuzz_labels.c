/* The label parsers of pipeline/labels.c: the first byte picks one (a synset
 * class list, a validation labels file in any of its forms: Kaggle's CSV,
 * TensorFlow's WNID lines, the devkit's IDs; or an ID table), the rest is the
 * file, written to a temporary path as the tools would read it. What loads
 * is then looked up. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fuzz.h"
#include "pipeline/labels.h"

static char path[64];
static void remove_file(void) { unlink(path); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!path[0]) {
        snprintf(path, sizeof path, "/tmp/sp-fuzz-labels.XXXXXX");
        int fd = mkstemp(path);
        if (fd < 0)
            abort();
        close(fd);
        atexit(remove_file);
    }
    if (size < 1)
        return 0;
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    fwrite(data + 1, 1, size - 1, f);
    fclose(f);
    sp_labels *l = sp_labels_create();
    if (!l)
        return 0;
    sp_err err = {0};
    switch (data[0] % 3) {
    case 0:
        (void)sp_labels_load_classes(l, path, &err);
        break;
    case 1:
        (void)sp_labels_load_val(l, path, &err);
        break;
    default:
        if (sp_labels_load_ids(l, path, &err) == 0)
            (void)sp_labels_load_val(l, path, &err);
        break;
    }
    static const char *keys[] = {"ILSVRC2012_img_val.tar/ILSVRC2012_val_00000001.JPEG",
                                 "ILSVRC2012_img_val.tar/ILSVRC2012_val_00000003.JPEG",
                                 "ILSVRC2012_img_train.tar/n01440764.tar/n01440764_10026.JPEG", "x"};
    char why[128];
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        (void)sp_labels_lookup(l, keys[i], why, sizeof why);
    json_decref(sp_labels_wnids(l));
    json_decref(sp_labels_words(l));
    sp_labels_free(l);
    return 0;
}
