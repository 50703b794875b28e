/*  Fuzz target for the protocol decoder: any bytes must decode or be
    refused with a reason, never crash, assert or leak.

    Built with -fsanitize=fuzzer (clang) it is a libFuzzer target; built
    normally it is a program that replays every file given on the command
    line (or in the directories given), which ctest runs over the corpus in
    tests/fuzz/corpus, under the sanitizers in the sanitizer build. */
#include "messages/msg.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    msg_t m;
    char err[MSG_TEXT_MAX + 1];
    const char *code = msg_decode(data, size, &m, err, sizeof err);
    if (code && !err[0])
        abort(); /* a refusal must say why */
    if (!code) {
        /* What decodes must encode and decode again to the same type. */
        msgpack_sbuffer b;
        msgpack_packer pk;
        msgpack_sbuffer_init(&b);
        msgpack_packer_init(&pk, &b, msgpack_sbuffer_write);
        if (m.type != MSG_SAGA && m.type != MSG_SAGAS && m.type != MSG_STATS_REPLY) {
            msg_pack(&m, &pk);
            msg_t again;
            if (msg_decode(b.data, b.size, &again, err, sizeof err) || again.type != m.type)
                abort();
            msg_clear(&again);
        }
        msgpack_sbuffer_destroy(&b);
        msg_clear(&m);
    }
    return 0;
}

#ifndef ZSAGA_LIBFUZZER
static int s_replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    uint8_t *buf = malloc(MSG_MAX_BYTES + 2);
    size_t n = fread(buf, 1, MSG_MAX_BYTES + 1, f);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, n);
    /* And every prefix of it: truncation is the commonest damage. */
    for (size_t k = 0; k < n && k < 4096; k++)
        LLVMFuzzerTestOneInput(buf, k);
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    int files = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            DIR *d = opendir(argv[i]);
            struct dirent *e;
            while (d && (e = readdir(d))) {
                char p[4096];
                if (e->d_name[0] == '.')
                    continue;
                snprintf(p, sizeof p, "%s/%s", argv[i], e->d_name);
                files += s_replay_file(p) == 0;
            }
            if (d)
                closedir(d);
        } else
            files += s_replay_file(argv[i]) == 0;
    }
    printf("replayed %d inputs and their prefixes\n", files);
    return files > 0 ? 0 : 1;
}
#endif
