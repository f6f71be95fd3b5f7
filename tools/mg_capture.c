/*  mg_capture.c - thread-local capture of a command's output (mg_capture.h). */
#include "mg_capture.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local mg_capture_t *s_active = NULL;
/* Whether s_active->error holds an error rather than a warning. */
static _Thread_local bool s_is_error = false;

void mg_capture_begin(mg_capture_t *c)
{
    memset(c, 0, sizeof *c);
    s_active = c;
    s_is_error = false;
}

void mg_capture_end(mg_capture_t *c)
{
    if (s_active == c)
        s_active = NULL;
}

void mg_capture_clear(mg_capture_t *c)
{
    mg_capture_end(c);
    json_decref(c->json);
    c->json = NULL;
}

bool mg_capture_active(void)
{
    return s_active != NULL;
}

bool mg_capture_json(json_t *j)
{
    if (!s_active)
        return false;
    if (!s_active->json && j)
        s_active->json = json_incref(j);
    return true;
}

void mg_capture_rc(int rc)
{
    if (s_active && !s_active->rc)
        s_active->rc = rc;
}

void mg_errorf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (!s_active) {
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        return;
    }
    char text[sizeof s_active->error];
    vsnprintf(text, sizeof text, fmt, ap);
    const char *t = text;
    bool error = strncmp(t, "maillage : ", 11) == 0;
    /* Errors ("maillage : ...") win over warnings ("Attention : ..."). */
    if (!s_active->error[0] || (error && !s_is_error)) {
        if (error)
            t += 11;
        s_is_error = error;
        snprintf(s_active->error, sizeof s_active->error, "%s", t);
        /* One sentence: the "Voir « maillage … --help »" line is for a
           terminal, not for a form. */
        char *nl = strchr(s_active->error, '\n');
        if (nl)
            *nl = '\0';
    }
    va_end(ap);
}
