/* The plots' font: the letters with descenders (g, j, p, q, y) reach below
 * the baseline and differ from their look-alikes (p from P, g from 9, q from
 * a), so "mlp" never reads "mlP" nor "Bag" "Ba9"; a line's height holds them. */
#include <string.h>

#include "check.h"
#include "common/sp_draw.h"

/* The font pixels of ch drawn at scale 1 into a 6 x 10 cell, as a bitmap of
 * rows (bit 4 the leftmost column). */
static void glyph(char ch, uint8_t rows[10])
{
    sp_canvas c;
    sp_err err = {0};
    CHECK(sp_canvas_init(&c, 6, 10, 0xffffff, &err) == 0, "%s", err.msg);
    char s[2] = {ch, 0};
    sp_draw_text(&c, 0, 0, s, 1, 0x000000);
    for (int y = 0; y < 10; y++) {
        rows[y] = 0;
        for (int x = 0; x < 5; x++)
            if (c.pixels[(y * 6 + x) * 3] == 0)
                rows[y] |= (uint8_t)(0x10 >> x);
    }
    sp_canvas_free(&c);
}

int main(void)
{
    const char *below = "gjpqy", *pairs[][2] = {{"p", "P"}, {"g", "9"}, {"q", "a"}, {"y", "v"}};
    uint8_t a[10], b[10];
    for (const char *p = below; *p; p++) {
        glyph(*p, a);
        CHECK(a[7] || a[8], "'%c' does not reach below the baseline", *p);
    }
    for (const char *p = "abcdefhiklmnorstuvwxzABPQ09"; *p; p++) {
        glyph(*p, a);
        CHECK(!a[7] && !a[8] && !a[9], "'%c' reaches below the baseline", *p);
    }
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        glyph(pairs[i][0][0], a);
        glyph(pairs[i][1][0], b);
        CHECK(memcmp(a, b, sizeof a) != 0, "'%s' draws as '%s'", pairs[i][0], pairs[i][1]);
    }
    CHECK(sp_text_height(1) >= 9 && sp_text_height(2) == 2 * sp_text_height(1), "a line of %d pixels",
          sp_text_height(1));
    return 0;
}
