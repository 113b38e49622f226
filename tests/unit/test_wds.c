/* WebDataset naming (pipeline/wds.h): a member path's key and extension as
 * WebDataset splits them; the key escaping sp-cat --tar writes is one to one,
 * leaves no dot, no empty or absolute part, and undoes exactly; .cls parsing. */
#include <string.h>

#include "check.h"
#include "pipeline/wds.h"

static void name_case(const char *stream_key, const char *tar, const char *key, const char *ext)
{
    sp_wds_name n;
    sp_wds_name_of(stream_key, &n);
    CHECK(n.tar_len == strlen(tar) && !memcmp(n.tar, tar, n.tar_len), "%s: tar %.*s", stream_key, (int)n.tar_len, n.tar);
    CHECK(n.key_len == strlen(key) && !memcmp(n.key, key, n.key_len), "%s: key %.*s", stream_key, (int)n.key_len, n.key);
    CHECK(!strcmp(n.ext, ext), "%s: ext %s", stream_key, n.ext);
}

static void escape_case(const char *key, const char *want)
{
    char e[256], back[256];
    int n = sp_wds_key_escape(key, strlen(key), e, sizeof e);
    CHECK(n >= 0 && (!want || !strcmp(e, want)), "%s: escaped %s, want %s", key, n >= 0 ? e : "(none)", want ? want : "-");
    CHECK(!strchr(e, '.') && e[0] != '/' && !strstr(e, "//") && e[strlen(e) - 1] != '/', "%s: %s is unsafe", key, e);
    CHECK(sp_wds_key_unescape(e, (size_t)n, back, sizeof back) == (int)strlen(key) && !strcmp(back, key),
          "%s: back as %s", key, back);
}

int main(void)
{
    name_case("shards-000.tar/dir/a.b.jpg", "shards-000.tar", "dir/a", "b.jpg");
    name_case("data/x.tar.gz/n1.cls", "data/x.tar.gz", "n1", "cls");
    name_case("outer.tar/inner.tar/k.json", "outer.tar/inner.tar", "k", "json");
    name_case("loose/a", "", "loose/a", "");
    name_case("s.tar/.hidden", "s.tar", "", "hidden");

    escape_case("train/cat/001.jpg", "train/cat/001%2Ejpg");
    escape_case("a%2Eb", "a%252Eb");
    escape_case("/abs//x/", "%2Fabs/%2Fx%2F");
    escape_case("t10k-images-idx3-ubyte#12", "t10k-images-idx3-ubyte%2312");
    escape_case("../up", "%2E%2E/up");
    escape_case("caf\xc3\xa9 au lait", "caf%C3%A9%20au%20lait");
    char small[8];
    CHECK(sp_wds_key_escape("a.b.c", 5, small, sizeof small) == -1, "an escape that does not fit");
    char back[16];
    CHECK(sp_wds_key_unescape("x%4", 3, back, sizeof back) == 3 && !strcmp(back, "x%4"), "a cut escape stays: %s", back);
    CHECK(sp_wds_key_unescape("%2e%zz", 6, back, sizeof back) == 4 && !strcmp(back, ".%zz"), "%s", back);

    char why[200];
    CHECK(sp_wds_parse_cls("7", 1, why, sizeof why) == 7, "7");
    CHECK(sp_wds_parse_cls(" 12\r\n", 5, why, sizeof why) == 12, "12 with blanks");
    CHECK(sp_wds_parse_cls("2147483647", 10, why, sizeof why) == 2147483647, "the largest");
    const char *bad[] = {"", "\n", "-1", "1.5", "cat", "2147483648", "99999999999999999999", "1\n2", "1 2", "\n1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(sp_wds_parse_cls(bad[i], strlen(bad[i]), why, sizeof why) == -1 && strstr(why, "not a class index"),
              "\"%s\" taken", bad[i]);
    CHECK(sp_wds_parse_cls("1\0", 2, why, sizeof why) == -1, "a NUL taken");
    return CHECK_DONE("test_wds");
}
