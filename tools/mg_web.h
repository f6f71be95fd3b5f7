/*  mg_web.h - the dashboard's files (tools/web/), embedded in the binary
    at build time by tools/mg_embed.cmake. */
#ifndef MG_WEB_H
#define MG_WEB_H

#include <stddef.h>

typedef struct {
    const char *path;          /* relative to tools/web/: "index.html" */
    const char *mime;          /* Content-Type to serve it with */
    const unsigned char *data; /* its bytes (a NUL follows, not counted) */
    size_t size;               /* in bytes */
} mg_web_file_t;

/* Every embedded file, sorted by path, then an all-zero entry. */
extern const mg_web_file_t mg_web_files[];
extern const size_t mg_web_file_count;

#endif
