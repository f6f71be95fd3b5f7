/*  mg_test.h - a minimal test harness: CHECK records failures and goes
    on; mg_test_done prints "N passed, N failed" and gives the exit code. */
#ifndef MG_TEST_H
#define MG_TEST_H

#include <stdio.h>
#include <string.h>

static int mg_test_passed_ = 0;
static int mg_test_failed_ = 0;

#define CHECK(cond)                                                        \
    do {                                                                   \
        if (cond) {                                                        \
            mg_test_passed_++;                                             \
        } else {                                                           \
            mg_test_failed_++;                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__,         \
                    __LINE__, #cond);                                      \
        }                                                                  \
    } while (0)

#define CHECK_RC(expr, expected)                                           \
    do {                                                                   \
        int rc_ = (expr);                                                  \
        if (rc_ == (expected)) {                                           \
            mg_test_passed_++;                                             \
        } else {                                                           \
            mg_test_failed_++;                                             \
            fprintf(stderr, "%s:%d: %s returned %d, expected %d\n",        \
                    __FILE__, __LINE__, #expr, rc_, (int) (expected));     \
        }                                                                  \
    } while (0)

#define CHECK_STR(a, b)                                                    \
    do {                                                                   \
        const char *a_ = (a), *b_ = (b);                                   \
        if (a_ && b_ && strcmp(a_, b_) == 0) {                             \
            mg_test_passed_++;                                             \
        } else {                                                           \
            mg_test_failed_++;                                             \
            fprintf(stderr, "%s:%d: \"%s\" != \"%s\"\n", __FILE__,         \
                    __LINE__, a_ ? a_ : "(null)", b_ ? b_ : "(null)");     \
        }                                                                  \
    } while (0)

static inline int mg_test_done(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, mg_test_passed_,
           mg_test_failed_);
    return mg_test_failed_ == 0 ? 0 : 1;
}

#endif
