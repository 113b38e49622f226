/* md5 and sha256 of a file in one pass through OpenSSL's libcrypto (see sp_hash.h). */
#define _POSIX_C_SOURCE 200809L
#include "common/sp_hash.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void to_hex(EVP_MD_CTX *md, char *out)
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    EVP_DigestFinal_ex(md, d, &n);
    sp_hex(d, n, out);
}

int sp_hash_file(const char *path, char md5[33], char sha256[65], uint64_t *size,
                 void (*progress)(void *ctx, uint64_t done, uint64_t total), void *ctx, sp_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sp_fail(err, SP_EXIT_DATA, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st))
        st.st_size = 0;
    EVP_MD_CTX *m1 = md5 ? EVP_MD_CTX_new() : NULL, *m2 = sha256 ? EVP_MD_CTX_new() : NULL;
    enum { BUF = 1 << 20 };
    uint8_t *buf = malloc(BUF);
    int rc = -1;
    uint64_t total = 0;
    if (!buf || (md5 && (!m1 || !EVP_DigestInit_ex(m1, EVP_md5(), NULL))) ||
        (sha256 && (!m2 || !EVP_DigestInit_ex(m2, EVP_sha256(), NULL)))) {
        sp_fail(err, SP_EXIT_SYSTEM, "cannot initialise md5/sha256");
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, buf, BUF);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            sp_fail(err, SP_EXIT_SYSTEM, "%s: read failed: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        if (m1)
            EVP_DigestUpdate(m1, buf, (size_t)n);
        if (m2)
            EVP_DigestUpdate(m2, buf, (size_t)n);
        total += (uint64_t)n;
        if (progress && total % (64u << 20) < (uint64_t)n)
            progress(ctx, total, (uint64_t)st.st_size);
    }
    if (m1)
        to_hex(m1, md5);
    if (m2)
        to_hex(m2, sha256);
    if (size)
        *size = total;
    rc = 0;
out:
    EVP_MD_CTX_free(m1);
    EVP_MD_CTX_free(m2);
    free(buf);
    close(fd);
    return rc;
}
