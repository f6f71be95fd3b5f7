/*  fuzz_hours.c - libFuzzer target: the opening-hours parser
    (store/mg_hours.h), which reads the `horaires` text of offers received
    from any peer.

    Input: the text (a NUL is added; an embedded NUL simply ends it).
    Invariants checked, from mg_hours.h: a refused text explains itself
    with a position and leaves `out` cleared; an accepted one gives at
    most MG_HOURS_MAX_SLOTS slots, sorted, disjoint, never touching, each
    with start < end <= 10080; the open minutes are the sum of the slots
    and mg_hours_open_at agrees at every slot edge; the canonical form
    (mg_hours_format) parses back to the same week, and truncated
    formatting is snprintf-like; intersecting with itself and with 24/7
    gives the same week.

    Built as a fuzzer by tests/fuzz/CMakeLists.txt; tests/test_hostile.c
    replays the committed corpus through it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_hours.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define S_CHECK(cond)                                                      \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__,     \
                    __LINE__, #cond);                                      \
            abort();                                                       \
        }                                                                  \
    } while (0)

static bool s_same_slots(const mg_hours_t *a, const mg_hours_t *b)
{
    if (a->count != b->count)
        return false;
    for (size_t i = 0; i < a->count; i++)
        if (a->slots[i].start != b->slots[i].start
            || a->slots[i].end != b->slots[i].end)
            return false;
    return true;
}

static void s_check_week(const mg_hours_t *h)
{
    S_CHECK(h->count <= MG_HOURS_MAX_SLOTS);
    uint32_t minutes = 0;
    for (size_t i = 0; i < h->count; i++) {
        const mg_slot_t *s = &h->slots[i];
        S_CHECK(s->start < s->end && s->end <= MG_WEEK_MINUTES);
        /* Sorted, disjoint and never touching: a gap between slots. */
        if (i)
            S_CHECK(h->slots[i - 1].end < s->start);
        minutes += (uint32_t) (s->end - s->start);
        S_CHECK(mg_hours_open_at(h, s->start));
        S_CHECK(mg_hours_open_at(h, (uint32_t) s->end - 1u));
        if (s->start > 0)
            S_CHECK(!mg_hours_open_at(h, (uint32_t) s->start - 1u));
        if (s->end < MG_WEEK_MINUTES)
            S_CHECK(!mg_hours_open_at(h, s->end));
    }
    S_CHECK(mg_hours_minutes(h) == minutes);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    if (size)
        memcpy(text, data, size);
    text[size] = '\0';
    mg_hours_t h;
    mg_why_t why;
    mg_why_clear(&why);
    int rc = mg_hours_parse(text, &h, &why);
    if (rc != MG_OK) {
        S_CHECK(rc == MG_ERR_SCHEMA || rc == MG_ERR_TOO_LARGE);
        S_CHECK(why.text[0] != '\0');
        S_CHECK(h.count == 0 && !h.ph_off && !h.ph_open && !h.comment);
        free(text);
        return 0;
    }
    s_check_week(&h);

    /* The canonical form, whole and cut short. */
    size_t need = mg_hours_format(&h, NULL, 0);
    char *canon = malloc(need + 1);
    if (!canon) {
        free(text);
        return 0;
    }
    S_CHECK(mg_hours_format(&h, canon, need + 1) == need);
    S_CHECK(strlen(canon) == need);
    char small[8];
    for (size_t n = 1; n <= sizeof small; n++) {
        memset(small, 'x', sizeof small);
        S_CHECK(mg_hours_format(&h, small, n) == need);
        size_t got = strlen(small);
        S_CHECK(got < n && got == (need < n - 1 ? need : n - 1));
        S_CHECK(memcmp(small, canon, got) == 0);
    }
    mg_hours_t back;
    if (mg_hours_parse(canon, &back, &why) != MG_OK) {
        fprintf(stderr, "canonical form \"%s\" of \"%s\" refused: %s\n", canon,
                text, why.text);
        abort();
    }
    if (!s_same_slots(&h, &back)) {
        fprintf(stderr, "canonical form \"%s\" of \"%s\" is another week\n",
                canon, text);
        abort();
    }
    free(canon);

    /* Intersections. */
    mg_hours_t x, all;
    mg_hours_intersect(&h, &h, &x);
    S_CHECK(s_same_slots(&h, &x) && !x.ph_off && !x.ph_open && !x.comment);
    S_CHECK(mg_hours_parse("24/7", &all, &why) == MG_OK);
    mg_hours_intersect(&all, &h, &x);
    S_CHECK(s_same_slots(&h, &x));
    x = h;
    mg_hours_intersect(&x, &all, &x); /* out may alias a */
    S_CHECK(s_same_slots(&h, &x));
    free(text);
    return 0;
}
