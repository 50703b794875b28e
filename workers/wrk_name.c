/*  wrk_name: screening normal form. See wrk_name.h. */
#include "wrk_name.h"

#include <stdint.h>
#include <stdio.h>

/* Decode one UTF-8 sequence; -1 if invalid (overlong, surrogate, cut). */
static int s_utf8(const unsigned char *p, size_t n, uint32_t *cp)
{
    if (p[0] < 0x80) {
        *cp = p[0];
        return 1;
    }
    int len = (p[0] & 0xe0) == 0xc0 ? 2 : (p[0] & 0xf0) == 0xe0 ? 3 : (p[0] & 0xf8) == 0xf0 ? 4 : 0;
    if (!len || (size_t)len > n)
        return -1;
    uint32_t c = p[0] & (0x7f >> len);
    for (int i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return -1;
        c = c << 6 | (p[i] & 0x3f);
    }
    static const uint32_t min[] = { 0, 0, 0x80, 0x800, 0x10000 };
    if (c < min[len] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return -1;
    *cp = c;
    return len;
}

/* Cyrillic and Greek capitals and smalls that look like Latin letters. */
static const struct {
    uint32_t cp;
    char ascii;
} s_confusables[] = {
    { 0x0410, 'A' }, { 0x0412, 'B' }, { 0x0415, 'E' }, { 0x041a, 'K' }, { 0x041c, 'M' },
    { 0x041d, 'H' }, { 0x041e, 'O' }, { 0x0420, 'P' }, { 0x0421, 'C' }, { 0x0422, 'T' },
    { 0x0425, 'X' }, { 0x0430, 'A' }, { 0x0435, 'E' }, { 0x043e, 'O' }, { 0x0440, 'P' },
    { 0x0441, 'C' }, { 0x0443, 'Y' }, { 0x0445, 'X' }, { 0x0455, 'S' }, { 0x0456, 'I' },
    { 0x0458, 'J' }, { 0x0391, 'A' }, { 0x0392, 'B' }, { 0x0395, 'E' }, { 0x0396, 'Z' },
    { 0x0397, 'H' }, { 0x0399, 'I' }, { 0x039a, 'K' }, { 0x039c, 'M' }, { 0x039d, 'N' },
    { 0x039f, 'O' }, { 0x03a1, 'P' }, { 0x03a4, 'T' }, { 0x03a5, 'Y' }, { 0x03a7, 'X' },
    { 0x03bf, 'O' },
};

static int s_is_dash(uint32_t c)
{
    return (c >= 0x2010 && c <= 0x2015) || c == 0x2212 || c == 0x2043 || c == 0xfe58 ||
           c == 0xfe63 || c == 0xff0d || c == 0x00ad || c == 0x058a || c == 0x2e3a || c == 0x2e3b;
}

static int s_is_space(uint32_t c)
{
    return c == ' ' || c == 0x00a0 || (c >= 0x2000 && c <= 0x200a) || c == 0x202f || c == 0x205f ||
           c == 0x3000 || c == 0x1680;
}

static int s_is_invisible(uint32_t c)
{
    return (c >= 0x200b && c <= 0x200d) || c == 0x2060 || c == 0xfeff || c == 0x180e;
}

int wrk_name_normalize(const char *in, size_t len, char *out, size_t outlen, char *err,
                       size_t errlen)
{
    const unsigned char *p = (const unsigned char *)in;
    size_t o = 0;
    int pending_space = 0;
    for (size_t i = 0; i < len;) {
        uint32_t c;
        int n = s_utf8(p + i, len - i, &c);
        if (n < 0) {
            snprintf(err, errlen, "name is not valid UTF-8 (byte %zu)", i);
            return -1;
        }
        if (c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0)) {
            snprintf(err, errlen, "name holds a control character (U+%04X at byte %zu)",
                     (unsigned)c, i);
            return -1;
        }
        i += (size_t)n;
        if (s_is_invisible(c))
            continue;
        if (s_is_space(c)) {
            /* Spaces around a hyphen do not make another name. */
            pending_space = o > 0 && out[o - 1] != '-';
            continue;
        }
        if (c >= 0xff01 && c <= 0xff5e) /* fullwidth ASCII */
            c = c - 0xff01 + 0x21;
        if (s_is_dash(c))
            c = '-';
        for (size_t k = 0; k < sizeof s_confusables / sizeof s_confusables[0]; k++)
            if (s_confusables[k].cp == c)
                c = (uint32_t)s_confusables[k].ascii;
        if (c >= 'a' && c <= 'z')
            c -= 'a' - 'A';
        if (c == '-')
            pending_space = 0;
        size_t need = pending_space + (c < 0x80 ? 1 : (size_t)n);
        if (o + need >= outlen) {
            snprintf(err, errlen, "name longer than %zu bytes", outlen - 1);
            return -1;
        }
        if (pending_space)
            out[o++] = ' ';
        pending_space = 0;
        if (c < 0x80)
            out[o++] = (char)c;
        else
            for (int k = 0; k < n; k++)
                out[o++] = (char)p[i - (size_t)n + (size_t)k];
    }
    out[o] = 0;
    return 0;
}
