/*  wrk_name: names as screening compares them (sanctions lists, blocked
    beneficiaries). Two spellings a person reads as one name must compare
    equal, or a list is bypassed by "ben-sanctioned", a trailing space or a
    look-alike hyphen.

    wrk_name_normalize folds case (ASCII, and the Latin-looking letters of
    Cyrillic and Greek to their Latin twins), maps every Unicode dash and
    minus to '-', every Unicode space to ' ', drops zero-width characters,
    maps fullwidth ASCII to ASCII, trims and collapses runs of spaces and
    drops those next to a hyphen. It
    refuses control characters, NUL and invalid UTF-8. Other non-ASCII
    letters are kept as they are. Any thread.
*/
#ifndef ZSAGA_WRK_NAME_H
#define ZSAGA_WRK_NAME_H

#include <stddef.h>

/* 0, or -1 with the reason in err. out holds at most outlen - 1 bytes. */
int wrk_name_normalize(const char *in, size_t len, char *out, size_t outlen, char *err,
                       size_t errlen);

#endif
