/* Files compiled into the tools (see scripts/embed.c and the Makefile). */
#ifndef SP_EMBEDDED_H
#define SP_EMBEDDED_H

#include <stddef.h>

typedef struct sp_embedded_file {
    const char *name; /* path under manifests/: "mnist.json", "imagenet/classes.txt" */
    const char *data; /* len bytes, NUL-terminated */
    size_t len;
} sp_embedded_file;

/* The files of manifests/ (NAME.json, imagenet/classes.txt), ending with a {0} entry. */
extern const sp_embedded_file sp_embedded_manifests[];

#endif
