/*  mg_error.h - the project-wide result codes.

    Every fallible function returns 0 (MG_OK) on success or one of these
    negative codes. Functions that can explain a failure to a person also
    fill a caller-supplied `mg_why_t` with a one-line, plain-French message.
*/
#ifndef MG_ERROR_H
#define MG_ERROR_H

#include <stddef.h>

typedef enum {
    MG_OK = 0,
    MG_ERR_NOMEM = -1,      /* allocation failed */
    MG_ERR_MALFORMED = -2,  /* bytes do not decode as the format says */
    MG_ERR_SIGNATURE = -3,  /* signature does not verify */
    MG_ERR_TOO_LARGE = -4,  /* a size limit is exceeded */
    MG_ERR_UTF8 = -5,       /* a string is not valid UTF-8 */
    MG_ERR_SCHEMA = -6,     /* a field is missing, of the wrong type or not allowed */
    MG_ERR_STALE = -7,      /* an older or equal version of a record */
    MG_ERR_DB = -8,         /* SQLite reported an error */
    MG_ERR_NOT_FOUND = -9,  /* no such record, key or file */
    MG_ERR_AMBIGUOUS = -10, /* an id prefix matches several records */
    MG_ERR_IO = -11,        /* a file could not be read or written */
    MG_ERR_EXISTS = -12,    /* refusing to overwrite something that exists */
    MG_ERR_BUSY = -13,      /* the database stayed locked past the timeout */
    MG_ERR_PERM = -14,      /* permissions are unsafe or insufficient */
    MG_ERR_ARG = -15,       /* a caller passed an invalid argument */
    MG_ERR_FORBIDDEN = -16, /* the operation is not allowed (e.g. not the author) */
} mg_rc_t;

/* A buffer for a human-readable explanation of the last failure. */
typedef struct {
    char text[1024];
} mg_why_t;

/* Returns a static, plain-French description of a result code. */
const char *mg_strerror(int rc);

/* Formats an explanation into `why` (which may be NULL) and returns `rc`,
   so that callers can write `return mg_why_set(why, MG_ERR_SCHEMA, ...)`. */
int mg_why_set(mg_why_t *why, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Clears `why` (which may be NULL). */
void mg_why_clear(mg_why_t *why);

#endif
