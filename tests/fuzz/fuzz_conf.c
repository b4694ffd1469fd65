/*
 * Fuzz target for the configuration loader: the input becomes a service
 * file (and, from its first byte, sometimes the daemon file) in a private
 * directory, and conf_load() must either load it or report errors, each with
 * a file name, never crash, leak or hang. Every error must name a file.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"

static char dir[64];

static void put(const char *name, const uint8_t *data, size_t size)
{
        char path[128];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        FILE *f = fopen(path, "wb");
        if (!f)
                abort();
        if (size)
                fwrite(data, 1, size, f);
        fclose(f);
}

static void cleanup(void)
{
        char path[128];
        snprintf(path, sizeof path, "%s/svc.conf", dir);
        unlink(path);
        snprintf(path, sizeof path, "%s/vkd.conf.d", dir);
        unlink(path);
        rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (!dir[0]) {
                snprintf(dir, sizeof dir, "/tmp/fuzz_conf.%ld", (long)getpid());
                if (mkdir(dir, 0700) < 0)
                        abort();
                atexit(cleanup);
        }
        /* First byte even: all of it is a service; odd: the daemon file gets
         * the first half. */
        int daemon_too = size && (data[0] & 1);
        size_t half = daemon_too ? size / 2 : 0;
        put("svc.conf", data + half, size - half);
        char daemon_path[128];
        snprintf(daemon_path, sizeof daemon_path, "%s/vkd.conf.d", dir);
        if (daemon_too)
                put("vkd.conf.d", data, half);
        struct conf *c = NULL;
        struct conf_errors errs = {0};
        int r = conf_load(daemon_too ? daemon_path : NULL, dir, &c, &errs);
        /* checks that hold in release builds too (no assert: NDEBUG) */
        if ((r == 0) != (c != NULL) || (r == 0 && errs.n))
                abort();
        for (size_t i = 0; i < errs.n; i++)
                if (!errs.items[i].file || !errs.items[i].text)
                        abort();
        conf_free(c);
        conf_errors_done(&errs);
        return 0;
}
