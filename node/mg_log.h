/*  mg_log.h - logging: one macro family over zsys_*, node name first,
    then key=value fields. */
#ifndef MG_LOG_H
#define MG_LOG_H

#include <czmq.h>

#define MG_LOG_INFO(name, fmt, ...) zsys_info("%s " fmt, (name), ##__VA_ARGS__)
#define MG_LOG_WARN(name, fmt, ...) zsys_warning("%s " fmt, (name), ##__VA_ARGS__)
#define MG_LOG_ERROR(name, fmt, ...) zsys_error("%s " fmt, (name), ##__VA_ARGS__)
#define MG_LOG_DEBUG(verbose, name, fmt, ...)                                 \
    do {                                                                       \
        if (verbose)                                                           \
            zsys_debug("%s " fmt, (name), ##__VA_ARGS__);                      \
    } while (0)

#endif
