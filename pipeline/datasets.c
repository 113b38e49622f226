#include "pipeline/datasets.h"

#include <string.h>

static const char *const digits[] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
/* Fashion-MNIST's label table, as published with the dataset. */
static const char *const fashion[] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                      "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
/* Kuzushiji-MNIST's classes (kmnist_classmap.csv), romanised. */
static const char *const kmnist[] = {"o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"};

static const sp_dataset_info known[] = {
    {"mnist", 10, digits},
    {"fashion-mnist", 10, fashion},
    {"kmnist", 10, kmnist},
};

const sp_dataset_info *sp_dataset_find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (!strcmp(known[i].name, name))
            return &known[i];
    return NULL;
}
