/*  mg_analysis.c - overlaps, duplicates, gaps, complementarities, check.

    Everything works on the offers read once by mg_analysis_load. The
    spatial index is a sorted grid: each point gets the cell of a square
    whose side is the search radius; points are sorted by cell, and a
    query visits the 3 x 3 (or (2r+1)^2) neighbouring cells by binary
    search. No pair of offers is ever compared unless they share a cell
    neighbourhood, a postal code, or a SIRET / phone / e-mail / address
    bucket. See docs/analysis.md for the methods and the measured times.
*/
#include "mg_analysis.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <utf8proc.h>

#include "mg_offer.h"
#include "mg_record.h"
#include "mg_text.h"

/* ------------------------------------------------------------------ */
/* Small containers                                                     */

/* Grows *ptr to hold `need` elements of `size` bytes (capacity doubles). */
static int s_grow(void *ptr, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return MG_OK;
    size_t n = *cap ? *cap : 16;
    while (n < need)
        n *= 2;
    void *p = realloc(*(void **) ptr, n * size);
    if (!p)
        return MG_ERR_NOMEM;
    *(void **) ptr = p;
    *cap = n;
    return MG_OK;
}

typedef struct {
    uint32_t *v;
    size_t n, cap;
} s_u32s_t;

static int s_u32s_push(s_u32s_t *a, uint32_t x)
{
    if (s_grow(&a->v, &a->cap, a->n + 1, sizeof *a->v) != MG_OK)
        return MG_ERR_NOMEM;
    a->v[a->n++] = x;
    return MG_OK;
}

/* String -> uint32 hash map, open addressing; keys are not owned. */
typedef struct {
    const char *key;
    uint32_t value;
    uint32_t hash;
} s_entry_t;

typedef struct {
    s_entry_t *e;
    size_t cap, count;
} s_map_t;

static uint32_t s_hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char) *s;
        h *= 16777619u;
    }
    return h;
}

static void s_map_free(s_map_t *m)
{
    free(m->e);
    memset(m, 0, sizeof *m);
}

/* Finds `key`; when absent inserts it with `value`. Returns 1 when
   inserted, 0 when found (*out = its value), MG_ERR_NOMEM. */
static int s_map_put(s_map_t *m, const char *key, uint32_t value,
                     uint32_t *out)
{
    if ((m->count + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        s_entry_t *e = calloc(cap, sizeof *e);
        if (!e)
            return MG_ERR_NOMEM;
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->e[i].key)
                continue;
            size_t j = m->e[i].hash & (cap - 1);
            while (e[j].key)
                j = (j + 1) & (cap - 1);
            e[j] = m->e[i];
        }
        free(m->e);
        m->e = e;
        m->cap = cap;
    }
    uint32_t h = s_hash(key);
    size_t j = h & (m->cap - 1);
    while (m->e[j].key) {
        if (m->e[j].hash == h && strcmp(m->e[j].key, key) == 0) {
            if (out)
                *out = m->e[j].value;
            return 0;
        }
        j = (j + 1) & (m->cap - 1);
    }
    m->e[j].key = key;
    m->e[j].hash = h;
    m->e[j].value = value;
    m->count++;
    if (out)
        *out = value;
    return 1;
}

static bool s_map_get(const s_map_t *m, const char *key, uint32_t *out)
{
    if (!m->cap)
        return false;
    uint32_t h = s_hash(key);
    size_t j = h & (m->cap - 1);
    while (m->e[j].key) {
        if (m->e[j].hash == h && strcmp(m->e[j].key, key) == 0) {
            *out = m->e[j].value;
            return true;
        }
        j = (j + 1) & (m->cap - 1);
    }
    return false;
}

/* Buckets: key -> list of offer indexes. Keys are copied. */
typedef struct {
    s_map_t map;
    s_u32s_t *lists;
    size_t cap_lists;
    char **keys;
    size_t cap_keys;
    size_t n;
} s_buckets_t;

static void s_buckets_free(s_buckets_t *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->lists[i].v);
        free(b->keys[i]);
    }
    free(b->lists);
    free(b->keys);
    s_map_free(&b->map);
    memset(b, 0, sizeof *b);
}

static int s_buckets_add(s_buckets_t *b, const char *key, uint32_t item)
{
    uint32_t idx;
    if (!s_map_get(&b->map, key, &idx)) {
        if (s_grow(&b->lists, &b->cap_lists, b->n + 1, sizeof *b->lists) != MG_OK
            || s_grow(&b->keys, &b->cap_keys, b->n + 1, sizeof *b->keys) != MG_OK)
            return MG_ERR_NOMEM;
        char *copy = strdup(key);
        if (!copy)
            return MG_ERR_NOMEM;
        idx = (uint32_t) b->n;
        memset(&b->lists[idx], 0, sizeof b->lists[idx]);
        b->keys[idx] = copy;
        b->n++;
        if (s_map_put(&b->map, copy, idx, NULL) < 0)
            return MG_ERR_NOMEM;
    }
    return s_u32s_push(&b->lists[idx], item);
}

/* Union-find over offer indexes. */
static uint32_t s_find(uint32_t *parent, uint32_t x)
{
    while (parent[x] != x) {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    return x;
}

static void s_union(uint32_t *parent, uint32_t a, uint32_t b)
{
    a = s_find(parent, a);
    b = s_find(parent, b);
    if (a != b) {
        if (a < b)
            parent[b] = a;
        else
            parent[a] = b;
    }
}

/* qsort, but never called with an empty (possibly NULL) array, which
   the C library does not allow. */
static void s_sort(void *base, size_t n, size_t size,
                   int (*cmp)(const void *, const void *))
{
    if (n > 1)
        qsort(base, n, size, cmp);
}

/* Pairs (a < b) packed in 64 bits, for sort + unique. */
static uint64_t s_pair_key(uint32_t a, uint32_t b)
{
    return a < b ? ((uint64_t) a << 32) | b : ((uint64_t) b << 32) | a;
}

static int s_cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *) x, b = *(const uint64_t *) y;
    return a < b ? -1 : a > b;
}

/* ------------------------------------------------------------------ */
/* Geometry                                                             */

#define S_EARTH_KM 6371.0088
#define S_KM_PER_DEG (S_EARTH_KM * M_PI / 180.0)

double mg_haversine_km(double lat1, double lng1, double lat2, double lng2)
{
    double p1 = lat1 * M_PI / 180.0, p2 = lat2 * M_PI / 180.0;
    double dp = p2 - p1, dl = (lng2 - lng1) * M_PI / 180.0;
    double h = sin(dp / 2) * sin(dp / 2)
               + cos(p1) * cos(p2) * sin(dl / 2) * sin(dl / 2);
    if (h > 1)
        h = 1;
    return 2 * S_EARTH_KM * asin(sqrt(h));
}

/* A sorted grid of points. Cell sides: `km` north-south, and east-west
   at the highest latitude of the points (plus one degree), so that two
   points within `km` are never more than one cell apart either way. */
typedef struct {
    double dlat, dlng;   /* cell size in degrees */
    uint64_t *cells;     /* cell key of each entry, sorted */
    uint32_t *items;     /* the point (caller's index) of each entry */
    size_t n;
} s_grid_t;

static int32_t s_cell_coord(double deg, double size)
{
    double c = floor(deg / size);
    if (c < -1e9)
        c = -1e9;
    if (c > 1e9)
        c = 1e9;
    return (int32_t) c;
}

static uint64_t s_cell_key(int32_t x, int32_t y)
{
    return ((uint64_t) (uint32_t) (x + INT32_MAX / 2) << 32)
           | (uint32_t) (y + INT32_MAX / 2);
}

typedef struct {
    uint64_t key;
    uint32_t item;
} s_cell_item_t;

static int s_cmp_cell_item(const void *x, const void *y)
{
    const s_cell_item_t *a = x, *b = y;
    if (a->key != b->key)
        return a->key < b->key ? -1 : 1;
    return a->item < b->item ? -1 : a->item > b->item;
}

/* Builds a grid of the points (lat[i], lng[i]) for i in items.
   `query_maxlat` is the highest |latitude| of the points that will be
   looked up around (0 when they are among the items). */
static int s_grid_build(s_grid_t *g, double km, const uint32_t *items,
                        size_t n, const double *lat, const double *lng,
                        double query_maxlat)
{
    memset(g, 0, sizeof *g);
    double maxlat = fabs(query_maxlat);
    for (size_t i = 0; i < n; i++)
        if (fabs(lat[items[i]]) > maxlat)
            maxlat = fabs(lat[items[i]]);
    maxlat += 1.0;
    if (maxlat > 89.0)
        maxlat = 89.0;
    g->dlat = km / S_KM_PER_DEG;
    g->dlng = km / (S_KM_PER_DEG * cos(maxlat * M_PI / 180.0));
    s_cell_item_t *tmp = malloc((n ? n : 1) * sizeof *tmp);
    g->cells = malloc((n ? n : 1) * sizeof *g->cells);
    g->items = malloc((n ? n : 1) * sizeof *g->items);
    if (!tmp || !g->cells || !g->items) {
        free(tmp);
        free(g->cells);
        free(g->items);
        memset(g, 0, sizeof *g);
        return MG_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t it = items[i];
        tmp[i].key = s_cell_key(s_cell_coord(lng[it], g->dlng),
                                s_cell_coord(lat[it], g->dlat));
        tmp[i].item = it;
    }
    s_sort(tmp, n, sizeof *tmp, s_cmp_cell_item);
    for (size_t i = 0; i < n; i++) {
        g->cells[i] = tmp[i].key;
        g->items[i] = tmp[i].item;
    }
    g->n = n;
    free(tmp);
    return MG_OK;
}

static void s_grid_free(s_grid_t *g)
{
    free(g->cells);
    free(g->items);
    memset(g, 0, sizeof *g);
}

/* The entries [*from, *to) of cell (x, y). */
static void s_grid_cell(const s_grid_t *g, int32_t x, int32_t y,
                        size_t *from, size_t *to)
{
    uint64_t key = s_cell_key(x, y);
    size_t lo = 0, hi = g->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (g->cells[mid] < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    *from = lo;
    hi = g->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (g->cells[mid] <= key)
            lo = mid + 1;
        else
            hi = mid;
    }
    *to = lo;
}

/* ------------------------------------------------------------------ */
/* Text                                                                 */

bool mg_pivot_placeholder(const char *pivot)
{
    if (!pivot || !*pivot)
        return true;
    for (const char *p = pivot + 1; *p; p++)
        if (*p != *pivot)
            return false;
    return true;
}

/* Decodes UTF-8 into code points (at most `max`); returns the count. */
static size_t s_codepoints(const char *s, int32_t *out, size_t max)
{
    size_t n = 0;
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *) s;
    utf8proc_ssize_t left = (utf8proc_ssize_t) strlen(s);
    while (left > 0 && n < max) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate(p, left, &cp);
        if (k <= 0) {
            cp = 0xFFFD;
            k = 1;
        }
        out[n++] = cp;
        p += k;
        left -= k;
    }
    return n;
}

#define S_RATIO_MAX 512

/* Length of the longest common subsequence, two rolling rows. */
static size_t s_lcs(const int32_t *a, size_t na, const int32_t *b, size_t nb)
{
    uint16_t row[2][S_RATIO_MAX + 1];
    memset(row[0], 0, (nb + 1) * sizeof row[0][0]);
    for (size_t i = 1; i <= na; i++) {
        uint16_t *cur = row[i & 1], *prev = row[(i - 1) & 1];
        cur[0] = 0;
        for (size_t j = 1; j <= nb; j++) {
            if (a[i - 1] == b[j - 1])
                cur[j] = (uint16_t) (prev[j - 1] + 1);
            else
                cur[j] = prev[j] > cur[j - 1] ? prev[j] : cur[j - 1];
        }
    }
    return row[na & 1][nb];
}

int mg_fuzzy_ratio(const char *a, const char *b)
{
    if (!a || !b)
        return 0;
    int32_t ca[S_RATIO_MAX], cb[S_RATIO_MAX];
    size_t na = s_codepoints(a, ca, S_RATIO_MAX);
    size_t nb = s_codepoints(b, cb, S_RATIO_MAX);
    if (na == 0 || nb == 0)
        return 0;
    /* Quick exits: equal, or too different in length to matter. */
    if (na == nb && memcmp(ca, cb, na * sizeof ca[0]) == 0)
        return 100;
    size_t lcs = s_lcs(ca, na, cb, nb);
    /* python-Levenshtein: (lensum - dist) / lensum with dist counting a
       substitution as 2, i.e. 2 * LCS / lensum; rounded half away from
       zero as Python's round() on these values (never exactly .5 of an
       even number in practice; we use the classic rounding). */
    double r = 200.0 * (double) lcs / (double) (na + nb);
    return (int) floor(r + 0.5);
}

char *mg_fuzzy_process(const char *text)
{
    if (!text)
        return strdup("");
    size_t len = strlen(text);
    char *out = malloc(len * 4 + 1);
    if (!out)
        return NULL;
    size_t w = 0;
    bool gap = false;
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *) text;
    utf8proc_ssize_t left = (utf8proc_ssize_t) len;
    while (left > 0) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate(p, left, &cp);
        if (k <= 0) {
            cp = ' ';
            k = 1;
        }
        p += k;
        left -= k;
        utf8proc_category_t cat = utf8proc_category(cp);
        bool keep = (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO)
                    || (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO);
        if (!keep) {
            gap = w > 0;
            continue;
        }
        if (gap) {
            out[w++] = ' ';
            gap = false;
        }
        cp = utf8proc_tolower(cp);
        w += (size_t) utf8proc_encode_char(cp, (utf8proc_uint8_t *) out + w);
    }
    out[w] = '\0';
    return out;
}

/* Folded text split into tokens of letters and digits (bytes >= 0x80 of
   what folding leaves, e.g. "œ", count as letters). */
typedef struct {
    char *buf;          /* folded copy, tokens NUL-separated */
    char *tok[128];
    size_t n;
} s_tokens_t;

static int s_tokenize(const char *text, s_tokens_t *t)
{
    memset(t, 0, sizeof *t);
    if (!text)
        return MG_OK;
    int rc = mg_store_fold(text, &t->buf);
    if (rc != MG_OK)
        return rc;
    char *p = t->buf;
    while (*p && t->n < 128) {
        while (*p && !(isalnum((unsigned char) *p) || (unsigned char) *p >= 0x80))
            *p++ = '\0';
        if (!*p)
            break;
        t->tok[t->n++] = p;
        while (*p && (isalnum((unsigned char) *p) || (unsigned char) *p >= 0x80))
            p++;
    }
    /* Cut what remains after the last token kept. */
    while (*p) {
        if (!(isalnum((unsigned char) *p) || (unsigned char) *p >= 0x80))
            *p = '\0';
        p++;
    }
    return MG_OK;
}

/* Street-type and common abbreviations of French addresses, folded. */
static const char *const s_abbrev[][2] = {
    {"bd", "boulevard"}, {"bld", "boulevard"}, {"blvd", "boulevard"},
    {"boul", "boulevard"}, {"av", "avenue"}, {"ave", "avenue"},
    {"aven", "avenue"}, {"r", "rue"}, {"pl", "place"}, {"rte", "route"},
    {"rt", "route"}, {"ch", "chemin"}, {"che", "chemin"}, {"chem", "chemin"},
    {"imp", "impasse"}, {"all", "allee"}, {"sq", "square"}, {"crs", "cours"},
    {"fg", "faubourg"}, {"fbg", "faubourg"}, {"qu", "quai"}, {"res", "residence"},
    {"resid", "residence"}, {"st", "saint"}, {"ste", "sainte"},
    {"gal", "general"}, {"gen", "general"}, {"gl", "general"},
    {"mal", "marechal"}, {"pdt", "president"}, {"dr", "docteur"},
    {"prof", "professeur"}, {"ctre", "centre"}, {"cial", "commercial"},
    {"lot", "lotissement"}, {"hab", "habitation"}, {"esp", "esplanade"},
    {"prom", "promenade"}, {"sent", "sentier"}, {"pass", "passage"},
    {NULL, NULL}};

static const char *s_expand(const char *tok)
{
    for (size_t i = 0; s_abbrev[i][0]; i++)
        if (strcmp(tok, s_abbrev[i][0]) == 0)
            return s_abbrev[i][1];
    return tok;
}

/* Joins tokens [0, n) with single spaces into a new string. */
static char *s_join(char *const *tok, size_t n)
{
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(tok[i]) + 1;
    char *out = malloc(len);
    if (!out)
        return NULL;
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (i)
            out[w++] = ' ';
        size_t k = strlen(tok[i]);
        memcpy(out + w, tok[i], k);
        w += k;
    }
    out[w] = '\0';
    return out;
}

char *mg_address_normalize(const char *adresse, const char *code_postal,
                           const char *commune)
{
    s_tokens_t t, c;
    if (s_tokenize(adresse, &t) != MG_OK)
        return NULL;
    if (s_tokenize(commune, &c) != MG_OK) {
        free(t.buf);
        return NULL;
    }
    char *keep[128];
    size_t n = 0;
    for (size_t i = 0; i < t.n; i++) {
        /* The postal code and "cedex N" say nothing about the street. */
        if (code_postal && strcmp(t.tok[i], code_postal) == 0)
            continue;
        if (strcmp(t.tok[i], "cedex") == 0) {
            if (i + 1 < t.n && isdigit((unsigned char) t.tok[i + 1][0]))
                i++;
            continue;
        }
        keep[n++] = (char *) s_expand(t.tok[i]);
    }
    /* The commune's name at the end ("9 bd Léon Blum 16800 SOYAUX"). */
    for (size_t k = 0; k < c.n; k++)
        c.tok[k] = (char *) s_expand(c.tok[k]);
    if (c.n > 0 && n > c.n) {
        bool tail = true;
        for (size_t k = 0; k < c.n; k++)
            if (strcmp(keep[n - c.n + k], c.tok[k]) != 0)
                tail = false;
        if (tail)
            n -= c.n;
    }
    char *out = s_join(keep, n);
    free(t.buf);
    free(c.buf);
    return out;
}

/* A name or commune folded with abbreviations spelled out. */
static char *s_name_normalize(const char *text)
{
    s_tokens_t t;
    if (s_tokenize(text, &t) != MG_OK)
        return NULL;
    char *keep[128];
    for (size_t i = 0; i < t.n; i++)
        keep[i] = (char *) ((strcmp(t.tok[i], "st") == 0)   ? "saint"
                            : (strcmp(t.tok[i], "ste") == 0) ? "sainte"
                                                             : t.tok[i]);
    char *out = s_join(keep, t.n);
    free(t.buf);
    return out;
}

/* Words that carry no identity in a name. */
static bool s_stopword(const char *w)
{
    static const char *const stop[] = {"de", "du", "des", "la", "le", "les",
                                       "l", "d", "et", "a", "au", "aux",
                                       "en", NULL};
    for (size_t i = 0; stop[i]; i++)
        if (strcmp(w, stop[i]) == 0)
            return true;
    return false;
}

static int s_cmp_str(const void *x, const void *y)
{
    return strcmp(*(char *const *) x, *(char *const *) y);
}

/* fuzzywuzzy's token_set_ratio on normalised names, stop words left
   out: names where one is the other plus words ("Rives de Charente" /
   "Association les rives de la Charente") score high. */
static int s_token_set_ratio(const char *a, const char *b)
{
    char *ca = strdup(a ? a : ""), *cb = strdup(b ? b : "");
    if (!ca || !cb) {
        free(ca);
        free(cb);
        return 0;
    }
    char *ta[64], *tb[64];
    size_t na = 0, nb = 0;
    for (char *s = strtok(ca, " "); s && na < 64; s = strtok(NULL, " "))
        if (!s_stopword(s))
            ta[na++] = s;
    for (char *s = strtok(cb, " "); s && nb < 64; s = strtok(NULL, " "))
        if (!s_stopword(s))
            tb[nb++] = s;
    s_sort(ta, na, sizeof ta[0], s_cmp_str);
    s_sort(tb, nb, sizeof tb[0], s_cmp_str);
    /* Sorted unique intersection and differences. */
    char *inter[64], *da[64], *db[64];
    size_t ni = 0, nda = 0, ndb = 0, i = 0, j = 0;
    while (i < na || j < nb) {
        if (i < na && i > 0 && strcmp(ta[i], ta[i - 1]) == 0) {
            i++;
            continue;
        }
        if (j < nb && j > 0 && strcmp(tb[j], tb[j - 1]) == 0) {
            j++;
            continue;
        }
        int c = i >= na ? 1 : j >= nb ? -1 : strcmp(ta[i], tb[j]);
        if (c == 0) {
            inter[ni++] = ta[i++];
            j++;
        } else if (c < 0) {
            da[nda++] = ta[i++];
        } else {
            db[ndb++] = tb[j++];
        }
    }
    int best = 0;
    if (ni > 0 || (nda > 0 && ndb > 0)) {
        char *t0 = s_join(inter, ni);
        char *all_a[128], *all_b[128];
        memcpy(all_a, inter, ni * sizeof inter[0]);
        memcpy(all_a + ni, da, nda * sizeof da[0]);
        memcpy(all_b, inter, ni * sizeof inter[0]);
        memcpy(all_b + ni, db, ndb * sizeof db[0]);
        char *t1 = s_join(all_a, ni + nda), *t2 = s_join(all_b, ni + ndb);
        if (t0 && t1 && t2) {
            int r;
            if (ni > 0) {
                r = mg_fuzzy_ratio(t0, t1);
                best = r > best ? r : best;
                r = mg_fuzzy_ratio(t0, t2);
                best = r > best ? r : best;
            }
            r = mg_fuzzy_ratio(t1, t2);
            best = r > best ? r : best;
        }
        free(t0);
        free(t1);
        free(t2);
    }
    free(ca);
    free(cb);
    return best;
}

/* ------------------------------------------------------------------ */
/* Communes                                                             */

typedef struct {
    const char *key;
    uint32_t idx;
} s_kv_t;

struct mg_communes_t {
    mg_commune_t *items;
    size_t n, cap;
    s_map_t by_code;      /* "INSEE/type" -> index, for repeated rows */
    char **codes;         /* the keys of by_code */
    size_t cap_codes;
    size_t n_postal_more; /* postal codes beyond the first, in all */
    /* Sorted indexes, rebuilt on the first lookup after an add. */
    bool dirty;
    s_kv_t *by_insee, *by_postal, *by_name;
    size_t n_insee, n_postal, n_name;
};

mg_communes_t *mg_communes_new(void)
{
    return calloc(1, sizeof(mg_communes_t));
}

void mg_communes_destroy(mg_communes_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    mg_communes_t *self = *self_p;
    for (size_t i = 0; i < self->n; i++) {
        free(self->items[i].nom);
        free(self->items[i].nom_fold);
        free(self->items[i].article_fold);
        free(self->items[i].postal_more);
        free(self->codes[i]);
    }
    free(self->items);
    free(self->codes);
    s_map_free(&self->by_code);
    free(self->by_insee);
    free(self->by_postal);
    free(self->by_name);
    free(self);
    *self_p = NULL;
}

static bool s_insee_ok(const char *v)
{
    if (!v || strlen(v) != 5)
        return false;
    for (int i = 2; i < 5; i++)
        if (!isdigit((unsigned char) v[i]))
            return false;
    if (v[0] == '2' && (v[1] == 'A' || v[1] == 'B'))
        return true;
    return isdigit((unsigned char) v[0]) && isdigit((unsigned char) v[1]);
}

static void s_copy_code(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

int mg_communes_add(mg_communes_t *self, const char *insee, const char *nom,
                    const char *article, const char *postal,
                    const char *type, const char *parent, bool has_pos,
                    double lat, double lng, int64_t population,
                    mg_why_t *why)
{
    if (!s_insee_ok(insee))
        return mg_why_set(why, MG_ERR_SCHEMA, "code INSEE invalide : « %s »",
                          insee ? insee : "");
    if (!nom || !*nom)
        return mg_why_set(why, MG_ERR_SCHEMA, "commune %s sans nom", insee);
    mg_commune_type_t t = MG_COMMUNE_OTHER;
    if (!type || !*type || strcmp(type, "COM") == 0)
        t = MG_COMMUNE_COM;
    else if (strcmp(type, "COMD") == 0)
        t = MG_COMMUNE_COMD;
    else if (strcmp(type, "ARM") == 0)
        t = MG_COMMUNE_ARM;
    char code[16];
    snprintf(code, sizeof code, "%s/%d", insee, (int) t);
    uint32_t prev;
    if (s_map_get(&self->by_code, code, &prev)) {
        mg_commune_t *c = &self->items[prev];
        char *f = s_name_normalize(nom);
        bool same = f && strcmp(f, c->nom_fold) == 0;
        free(f);
        if (!same)
            return mg_why_set(why, MG_ERR_EXISTS,
                              "commune %s présente deux fois sous deux noms (%s, %s)",
                              insee, c->nom, nom);
        /* Another postal code of the same commune. */
        if (!postal || !*postal || strcmp(postal, c->postal) == 0)
            return MG_OK;
        for (size_t k = 0; k < c->postal_more_count; k++)
            if (strcmp(c->postal_more[k], postal) == 0)
                return MG_OK;
        char (*more)[6] = realloc(c->postal_more, (c->postal_more_count + 1) * sizeof *more);
        if (!more)
            return MG_ERR_NOMEM;
        c->postal_more = more;
        s_copy_code(more[c->postal_more_count++], 6, postal);
        self->n_postal_more++;
        self->dirty = true;
        return MG_OK;
    }
    if (has_pos && (!isfinite(lat) || !isfinite(lng) || fabs(lat) > 90
                    || fabs(lng) > 180))
        return mg_why_set(why, MG_ERR_SCHEMA,
                          "commune %s : coordonnées hors limites", insee);
    if (s_grow(&self->items, &self->cap, self->n + 1, sizeof *self->items) != MG_OK
        || s_grow(&self->codes, &self->cap_codes, self->n + 1, sizeof *self->codes) != MG_OK)
        return MG_ERR_NOMEM;
    self->codes[self->n] = strdup(code);
    if (!self->codes[self->n])
        return MG_ERR_NOMEM;
    mg_commune_t *c = &self->items[self->n];
    memset(c, 0, sizeof *c);
    s_copy_code(c->insee, sizeof c->insee, insee);
    s_copy_code(c->postal, sizeof c->postal, postal);
    s_copy_code(c->parent, sizeof c->parent, parent);
    c->type = t;
    c->has_pos = has_pos;
    c->lat = lat;
    c->lng = lng;
    c->population = population;
    c->nom = strdup(nom);
    c->nom_fold = s_name_normalize(nom);
    if (article && *article && strcmp(article, nom) != 0)
        c->article_fold = s_name_normalize(article);
    if (!c->nom || !c->nom_fold
        || (article && *article && strcmp(article, nom) != 0 && !c->article_fold)) {
        free(c->nom);
        free(c->nom_fold);
        free(c->article_fold);
        free(self->codes[self->n]);
        return mg_why_set(why, MG_ERR_UTF8, "commune %s : nom illisible", insee);
    }
    if (s_map_put(&self->by_code, self->codes[self->n], (uint32_t) self->n, NULL) < 0) {
        free(c->nom);
        free(c->nom_fold);
        free(c->article_fold);
        free(self->codes[self->n]);
        return MG_ERR_NOMEM;
    }
    self->n++;
    self->dirty = true;
    return MG_OK;
}

size_t mg_communes_count(const mg_communes_t *self)
{
    return self ? self->n : 0;
}

const mg_commune_t *mg_communes_at(const mg_communes_t *self, size_t index)
{
    return self && index < self->n ? &self->items[index] : NULL;
}

static int s_cmp_kv(const void *x, const void *y)
{
    const s_kv_t *a = x, *b = y;
    int c = strcmp(a->key, b->key);
    return c ? c : (a->idx < b->idx ? -1 : a->idx > b->idx);
}

static int s_communes_index(mg_communes_t *self)
{
    if (!self->dirty)
        return MG_OK;
    free(self->by_insee);
    free(self->by_postal);
    free(self->by_name);
    size_t n = self->n ? self->n : 1;
    self->by_insee = malloc(n * sizeof(s_kv_t));
    self->by_postal = malloc((n + self->n_postal_more) * sizeof(s_kv_t));
    self->by_name = malloc(2 * n * sizeof(s_kv_t));
    if (!self->by_insee || !self->by_postal || !self->by_name)
        return MG_ERR_NOMEM;
    self->n_insee = self->n_postal = self->n_name = 0;
    for (size_t i = 0; i < self->n; i++) {
        mg_commune_t *c = &self->items[i];
        self->by_insee[self->n_insee++] = (s_kv_t){c->insee, (uint32_t) i};
        if (c->postal[0])
            self->by_postal[self->n_postal++] = (s_kv_t){c->postal, (uint32_t) i};
        for (size_t k = 0; k < c->postal_more_count; k++)
            self->by_postal[self->n_postal++] = (s_kv_t){c->postal_more[k], (uint32_t) i};
        self->by_name[self->n_name++] = (s_kv_t){c->nom_fold, (uint32_t) i};
        if (c->article_fold)
            self->by_name[self->n_name++] = (s_kv_t){c->article_fold, (uint32_t) i};
    }
    s_sort(self->by_insee, self->n_insee, sizeof(s_kv_t), s_cmp_kv);
    s_sort(self->by_postal, self->n_postal, sizeof(s_kv_t), s_cmp_kv);
    s_sort(self->by_name, self->n_name, sizeof(s_kv_t), s_cmp_kv);
    self->dirty = false;
    return MG_OK;
}

/* The range [*from, *to) of `key` in a sorted index. */
static void s_kv_range(const s_kv_t *kv, size_t n, const char *key,
                       size_t *from, size_t *to)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strcmp(kv[mid].key, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *from = lo;
    while (lo < n && strcmp(kv[lo].key, key) == 0)
        lo++;
    *to = lo;
}

static bool s_has_postal(const mg_commune_t *c, const char *postal)
{
    if (strcmp(c->postal, postal) == 0)
        return true;
    for (size_t k = 0; k < c->postal_more_count; k++)
        if (strcmp(c->postal_more[k], postal) == 0)
            return true;
    return false;
}

/* Distinct communes among the entries (the same commune appears twice
   in the name index when its name with article folds alike). */
static long s_single(const s_kv_t *kv, size_t from, size_t to)
{
    long found = -1;
    for (size_t i = from; i < to; i++) {
        if (found >= 0 && (long) kv[i].idx != found)
            return -2;
        found = kv[i].idx;
    }
    return found;
}

bool mg_communes_has_postal(const mg_communes_t *cself, const char *postal)
{
    mg_communes_t *self = (mg_communes_t *) cself; /* lazy index */
    if (!self || !postal || !*postal || s_communes_index(self) != MG_OK)
        return false;
    size_t from, to;
    s_kv_range(self->by_postal, self->n_postal, postal, &from, &to);
    return to > from;
}

long mg_communes_locate(const mg_communes_t *cself, const char *code_insee,
                        const char *code_postal, const char *commune,
                        mg_locate_t *how)
{
    mg_communes_t *self = (mg_communes_t *) cself; /* lazy index */
    if (how)
        *how = MG_LOCATE_NONE;
    if (!self || self->n == 0 || s_communes_index(self) != MG_OK)
        return -1;
    size_t from, to;
    if (code_insee && *code_insee) {
        s_kv_range(self->by_insee, self->n_insee, code_insee, &from, &to);
        long best = -1;
        for (size_t i = from; i < to; i++) {
            long idx = self->by_insee[i].idx;
            if (best < 0 || self->items[idx].type < self->items[best].type)
                best = idx;
        }
        if (best >= 0) {
            if (how)
                *how = MG_LOCATE_INSEE;
            return best;
        }
    }
    char *name = commune ? s_name_normalize(commune) : NULL;
    long found = -1;
    if (name && *name) {
        /* Postal code and name: the candidates of the lowest type (a COM
           before a COMD of the same name and code); two of them is
           ambiguous. */
        s_kv_range(self->by_name, self->n_name, name, &from, &to);
        long match = -1;
        int matches = 0;
        for (size_t i = from; i < to; i++) {
            long idx = self->by_name[i].idx;
            if (!code_postal || !s_has_postal(&self->items[idx], code_postal) || idx == match)
                continue;
            if (match < 0 || self->items[idx].type < self->items[match].type) {
                match = idx;
                matches = 1;
            } else if (self->items[idx].type == self->items[match].type) {
                matches++;
            }
        }
        if (match >= 0 && matches == 1) {
            found = match;
            if (how)
                *how = MG_LOCATE_NAME;
        } else if (match < 0) {
            long single = s_single(self->by_name, from, to);
            if (single >= 0) {
                found = single;
                if (how)
                    *how = MG_LOCATE_NAME_ONLY;
            }
        }
    }
    free(name);
    if (found < 0 && code_postal && *code_postal) {
        s_kv_range(self->by_postal, self->n_postal, code_postal, &from, &to);
        long single = s_single(self->by_postal, from, to);
        if (single >= 0) {
            found = single;
            if (how)
                *how = MG_LOCATE_POSTAL;
        }
    }
    return found;
}

/* ------------------------------------------------------------------ */
/* Loading offers                                                       */

typedef struct {
    char *label[MG_LABELS_MAX];
    unsigned n;
    size_t dropped;     /* labels met beyond MG_LABELS_MAX */
} s_labels_t;

typedef struct {
    uint8_t author[MG_KEY_BYTES];
    char *nom;
} s_profile_t;

struct mg_analysis_t {
    mg_aoffer_t *offers;
    size_t n, cap;
    s_labels_t labels[MG_AF_COUNT];
    mg_astructure_t *structs;
    size_t ns, cap_structs;
    s_map_t struct_map;
    const mg_communes_t *communes;
    s_profile_t *profiles;
    size_t np, cap_profiles;
    uint8_t self[MG_KEY_BYTES];
    bool has_self;
    double (*xyz)[3];    /* unit vector of each located offer: distances
                            without trigonometry in the pair loops */
    uint32_t *insee_id;  /* per offer: interned INSEE code, or UINT32_MAX */
    uint32_t *place_id;  /* per offer: interned "postal code + commune" */
    /* During load: each distinct (INSEE, postal code, commune) folded and
       located once. */
    s_map_t commune_cache;
    char **cache_keys, **cache_fold;
    long *cache_index;
    size_t cache_n, cache_cap;
    mg_why_t *why;       /* during load */
};

static void s_unit_vector(double lat, double lng, double out[3])
{
    double p = lat * M_PI / 180.0, l = lng * M_PI / 180.0;
    out[0] = cos(p) * cos(l);
    out[1] = cos(p) * sin(l);
    out[2] = sin(p);
}

/* Squared chord between two unit vectors. */
static double s_chord2(const double a[3], const double b[3])
{
    double dx = a[0] - b[0], dy = a[1] - b[1], dz = a[2] - b[2];
    return dx * dx + dy * dy + dz * dz;
}

/* The great-circle distance from a chord: the same spherical distance
   as the haversine formula (2R asin(c/2), c the chord), with one asin
   instead of four trigonometric calls per pair. */
static double s_chord_km(double chord2)
{
    double half = sqrt(chord2) / 2;
    return 2 * S_EARTH_KM * asin(half > 1 ? 1 : half);
}

/* The squared chord of a great-circle distance, for threshold tests. */
static double s_km_chord2(double km)
{
    double c = 2 * sin(km / (2 * S_EARTH_KM));
    return c * c;
}

static double s_dist_km(const mg_analysis_t *an, uint32_t i, uint32_t j)
{
    return s_chord_km(s_chord2(an->xyz[i], an->xyz[j]));
}

/* Field names of mg_afield_t, in its order. */
static const char *const s_afield_names[MG_AF_COUNT] = {
    "services", "publics_specifiquement_adresses",
    "prise_en_charge_specifique", "modalites_accompagnement",
    "modalites_acces", "frais_a_charge", "dispositif_programmes_nationaux",
    "typologie", "itinerance"};

/* The bit of `label` in `l`, adding it when new (or -1 when full). */
static int s_label_bit(s_labels_t *l, const char *label)
{
    for (unsigned i = 0; i < l->n; i++)
        if (strcmp(l->label[i], label) == 0)
            return (int) i;
    if (l->n == MG_LABELS_MAX) {
        l->dropped++;
        return -1;
    }
    char *copy = strdup(label);
    if (!copy)
        return -2;
    l->label[l->n] = copy;
    return (int) l->n++;
}

static char *s_dup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int s_profile_cmp(const void *x, const void *y)
{
    return memcmp(((const s_profile_t *) x)->author,
                  ((const s_profile_t *) y)->author, MG_KEY_BYTES);
}

static int s_load_profile(const mg_record_t *rec, void *arg)
{
    mg_analysis_t *an = arg;
    const char *nom = mg_body_str(mg_record_body(rec), "nom");
    if (!nom || strcmp(mg_record_rid(rec), "profile") != 0)
        return 0;
    if (s_grow(&an->profiles, &an->cap_profiles, an->np + 1,
               sizeof *an->profiles) != MG_OK)
        return MG_ERR_NOMEM;
    s_profile_t *p = &an->profiles[an->np];
    memcpy(p->author, mg_record_author(rec), MG_KEY_BYTES);
    p->nom = strdup(nom);
    if (!p->nom)
        return MG_ERR_NOMEM;
    an->np++;
    return 0;
}

static const char *s_profile_name(const mg_analysis_t *an,
                                  const uint8_t *author)
{
    if (an->np == 0)
        return NULL;
    s_profile_t key;
    memcpy(key.author, author, MG_KEY_BYTES);
    const s_profile_t *p = bsearch(&key, an->profiles, an->np,
                                   sizeof *an->profiles, s_profile_cmp);
    return p ? p->nom : NULL;
}

/* The structure an offer belongs to (see mg_astructure_t). */
static int s_structure_of(mg_analysis_t *an, mg_aoffer_t *o)
{
    char hex[2 * MG_KEY_BYTES + 1];
    mg_hex_encode(o->author, MG_KEY_BYTES, hex);
    char *key;
    size_t len;
    if (!o->placeholder_pivot) {
        len = strlen(o->pivot) + 3;
        key = malloc(len);
        if (!key)
            return MG_ERR_NOMEM;
        snprintf(key, len, "p:%s", o->pivot);
        for (char *p = key + 2; *p; p++)
            *p = (char) toupper((unsigned char) *p);
    } else if (o->source) {
        len = strlen(hex) + strlen(o->nom_fold) + 4;
        key = malloc(len);
        if (!key)
            return MG_ERR_NOMEM;
        snprintf(key, len, "n:%s:%s", hex, o->nom_fold);
    } else {
        len = strlen(hex) + 3;
        key = malloc(len);
        if (!key)
            return MG_ERR_NOMEM;
        snprintf(key, len, "a:%s", hex);
    }
    uint32_t idx;
    if (s_map_get(&an->struct_map, key, &idx)) {
        free(key);
        an->structs[idx].offer_count++;
        o->structure = idx;
        return MG_OK;
    }
    if (s_grow(&an->structs, &an->cap_structs, an->ns + 1,
               sizeof *an->structs) != MG_OK) {
        free(key);
        return MG_ERR_NOMEM;
    }
    mg_astructure_t *s = &an->structs[an->ns];
    memset(s, 0, sizeof *s);
    s->key = key;
    memcpy(s->author, o->author, MG_KEY_BYTES);
    s->name = key[0] == 'a' ? s_profile_name(an, o->author) : NULL;
    if (!s->name)
        s->name = o->nom;
    s->offer_count = 1;
    idx = (uint32_t) an->ns++;
    if (s_map_put(&an->struct_map, key, idx, NULL) < 0)
        return MG_ERR_NOMEM;
    o->structure = idx;
    return MG_OK;
}

/* A phone number reduced to '+' and digits. */
static char *s_phone_normalize(const char *t)
{
    if (!t)
        return NULL;
    char *out = malloc(strlen(t) + 1);
    if (!out)
        return NULL;
    size_t w = 0;
    for (const char *p = t; *p; p++)
        if (isdigit((unsigned char) *p) || (*p == '+' && w == 0))
            out[w++] = *p;
    out[w] = '\0';
    /* 0545... and +33545... are the same line. */
    if (w == 10 && out[0] == '0') {
        char *o2 = malloc(13);
        if (!o2) {
            free(out);
            return NULL;
        }
        snprintf(o2, 13, "+33%s", out + 1);
        free(out);
        return o2;
    }
    return out;
}

/* A NULL-terminated copy of a list field, each item transformed. */
static const char *const *s_list_copy(const mg_body_t *body, const char *key,
                                      bool lower, size_t *count)
{
    const char *const *items;
    size_t n = mg_body_list(body, key, &items);
    char **out = calloc(n + 1, sizeof *out);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        out[i] = strdup(items[i]);
        if (!out[i]) {
            for (size_t k = 0; k < i; k++)
                free(out[k]);
            free(out);
            return NULL;
        }
        if (lower)
            for (char *p = out[i]; *p; p++)
                *p = (char) tolower((unsigned char) *p);
    }
    if (count)
        *count = n;
    return (const char *const *) out;
}

static void s_list_free(const char *const *list)
{
    if (!list)
        return;
    for (size_t i = 0; list[i]; i++)
        free((char *) list[i]);
    free((void *) list);
}

static void s_offer_free(mg_aoffer_t *o)
{
    free((char *) o->nom);
    free((char *) o->commune);
    free((char *) o->code_postal);
    free((char *) o->code_insee);
    free((char *) o->adresse);
    free((char *) o->pivot);
    free((char *) o->source);
    free((char *) o->id_standard);
    free((char *) o->telephone);
    free((char *) o->date_maj);
    free((char *) o->horaires);
    s_list_free(o->courriels);
    s_list_free(o->objectifs);
    free(o->nom_fold);
    free(o->adresse_norm);
    free(o->commune_fold);
    free(o->slots);
    free(o->hours_why);
}

static int s_load_offer(const mg_record_t *rec, void *arg)
{
    mg_analysis_t *an = arg;
    const mg_body_t *b = mg_record_body(rec);
    if (an->n >= UINT32_MAX - 1)
        return mg_why_set(an->why, MG_ERR_TOO_LARGE, "trop d'offres à analyser");
    if (s_grow(&an->offers, &an->cap, an->n + 1, sizeof *an->offers) != MG_OK)
        return MG_ERR_NOMEM;
    mg_aoffer_t *o = &an->offers[an->n];
    memset(o, 0, sizeof *o);
    memcpy(o->author, mg_record_author(rec), MG_KEY_BYTES);
    snprintf(o->rid, sizeof o->rid, "%s", mg_record_rid(rec));
    o->nom = s_dup(mg_body_str(b, "nom"));
    o->commune = s_dup(mg_body_str(b, "commune"));
    o->code_postal = s_dup(mg_body_str(b, "code_postal"));
    o->code_insee = s_dup(mg_body_str(b, "code_insee"));
    o->adresse = s_dup(mg_body_str(b, "adresse"));
    o->pivot = s_dup(mg_body_str(b, "pivot"));
    o->source = s_dup(mg_body_str(b, "source"));
    o->id_standard = s_dup(mg_body_str(b, "id"));
    o->telephone = s_phone_normalize(mg_body_str(b, "telephone"));
    o->date_maj = s_dup(mg_body_str(b, "date_maj"));
    o->horaires = s_dup(mg_body_str(b, "horaires"));
    o->courriels = s_list_copy(b, "courriels", true, NULL);
    o->objectifs = s_list_copy(b, "objectifs", false, &o->objectif_count);
    o->commune_index = -1;
    an->n++; /* from here on, destroy frees what was set */
    if (!o->nom)
        o->nom = strdup("(sans nom)");
    if (!o->commune)
        o->commune = strdup("");
    if (!o->code_postal)
        o->code_postal = strdup("");
    o->nom_fold = s_name_normalize(o->nom);
    /* Communes repeat: fold and locate each distinct one once. */
    char ckey[512];
    snprintf(ckey, sizeof ckey, "%s|%s|%s", o->code_insee ? o->code_insee : "",
             o->code_postal, o->commune);
    uint32_t cached;
    if (s_map_get(&an->commune_cache, ckey, &cached)) {
        o->commune_fold = strdup(an->cache_fold[cached]);
        o->commune_index = an->cache_index[cached];
    } else {
        o->commune_fold = s_name_normalize(o->commune);
        if (an->communes)
            o->commune_index = mg_communes_locate(an->communes, o->code_insee,
                                                  o->code_postal, o->commune, NULL);
        size_t cap = an->cache_cap, cap2 = an->cache_cap, cap3 = an->cache_cap;
        char *key = strdup(ckey), *fold = o->commune_fold ? strdup(o->commune_fold) : NULL;
        if (!key || !fold || s_grow(&an->cache_keys, &cap, an->cache_n + 1, sizeof(char *))
            || s_grow(&an->cache_fold, &cap2, an->cache_n + 1, sizeof(char *))
            || s_grow(&an->cache_index, &cap3, an->cache_n + 1, sizeof(long))) {
            free(key);
            free(fold);
            return MG_ERR_NOMEM;
        }
        an->cache_cap = cap;
        an->cache_keys[an->cache_n] = key;
        an->cache_fold[an->cache_n] = fold;
        an->cache_index[an->cache_n] = o->commune_index;
        if (s_map_put(&an->commune_cache, key, (uint32_t) an->cache_n++, NULL) < 0)
            return MG_ERR_NOMEM;
    }
    o->adresse_norm = mg_address_normalize(o->adresse ? o->adresse : "",
                                           o->code_postal, o->commune);
    if (!o->nom || !o->commune || !o->code_postal || !o->nom_fold
        || !o->commune_fold || !o->adresse_norm || !o->courriels
        || !o->objectifs)
        return MG_ERR_NOMEM;
    o->placeholder_pivot = mg_pivot_placeholder(o->pivot);
    o->updated_ms = mg_record_created(rec);
    o->own = an->has_self && memcmp(o->author, an->self, MG_KEY_BYTES) == 0;
    o->has_duree = mg_body_str(b, "duree") != NULL;
    o->has_frequence = mg_body_str(b, "frequence") != NULL;
    o->has_demarche = mg_body_str(b, "demarche") != NULL;

    /* Place. */
    double lat, lng;
    if (mg_body_num(b, "latitude", &lat) == 0 && mg_body_num(b, "longitude", &lng) == 0
        && isfinite(lat) && isfinite(lng) && fabs(lat) <= 90 && fabs(lng) <= 180
        && !(lat == 0 && lng == 0)) {
        o->loc = MG_LOC_COORDS;
        o->lat = lat;
        o->lng = lng;
    }
    if (o->code_insee)
        snprintf(o->insee, sizeof o->insee, "%s", o->code_insee);
    if (an->communes) {
        const mg_commune_t *c = mg_communes_at(an->communes, (size_t) o->commune_index);
        if (o->commune_index >= 0 && c) {
            if (!o->insee[0])
                snprintf(o->insee, sizeof o->insee, "%s", c->insee);
            if (o->loc == MG_LOC_NONE && c->has_pos) {
                o->loc = MG_LOC_CENTRE;
                o->lat = c->lat;
                o->lng = c->lng;
            }
        }
    }
    if (mg_departement_of(o->insee[0] ? o->insee : NULL, o->code_postal,
                          o->departement) != 0)
        o->departement[0] = '\0';

    /* Enumerated fields. */
    for (int f = 0; f < MG_AF_COUNT; f++) {
        const char *const *items;
        size_t n = mg_body_list(b, s_afield_names[f], &items);
        for (size_t i = 0; i < n; i++) {
            int bit = s_label_bit(&an->labels[f], items[i]);
            if (bit == -2)
                return MG_ERR_NOMEM;
            if (bit >= 0)
                o->mask[f] |= (uint64_t) 1 << bit;
        }
    }

    /* Opening hours. */
    if (o->horaires) {
        mg_hours_t h;
        mg_why_t why;
        mg_why_clear(&why);
        if (mg_hours_parse(o->horaires, &h, &why) == MG_OK) {
            o->hours_state = MG_HOURS_OK;
            o->slot_count = h.count;
            if (h.count) {
                o->slots = malloc(h.count * sizeof *o->slots);
                if (!o->slots)
                    return MG_ERR_NOMEM;
                memcpy(o->slots, h.slots, h.count * sizeof *o->slots);
            }
        } else {
            o->hours_state = MG_HOURS_UNREADABLE;
            o->hours_why = strdup(why.text);
            if (!o->hours_why)
                return MG_ERR_NOMEM;
        }
    }
    return s_structure_of(an, o);
}

int mg_analysis_load(mg_store_t *store, const mg_offer_query_t *query,
                     const mg_communes_t *communes, const uint8_t *self,
                     mg_analysis_t **out, mg_why_t *why)
{
    *out = NULL;
    mg_analysis_t *an = calloc(1, sizeof *an);
    if (!an)
        return MG_ERR_NOMEM;
    an->communes = communes;
    an->why = why;
    if (self) {
        memcpy(an->self, self, MG_KEY_BYTES);
        an->has_self = true;
    }
    /* The standard's labels first, in its order: bit i is label i. */
    int rc = MG_OK;
    for (int f = 0; f < MG_AF_COUNT && rc == MG_OK; f++) {
        const mg_field_t *field = mg_offer_field(s_afield_names[f]);
        if (field && field->values)
            for (size_t i = 0; field->values[i] && rc == MG_OK; i++)
                if (s_label_bit(&an->labels[f], field->values[i]) < 0)
                    rc = MG_ERR_NOMEM;
    }
    if (rc == MG_OK)
        rc = mg_store_records(store, "profile", false, s_load_profile, an, why);
    if (rc == MG_OK)
        s_sort(an->profiles, an->np, sizeof *an->profiles, s_profile_cmp);
    if (rc == MG_OK)
        rc = mg_store_offers(store, query, s_load_offer, an, why);
    an->why = NULL;
    if (rc == MG_OK) {
        an->xyz = malloc((an->n ? an->n : 1) * sizeof *an->xyz);
        an->insee_id = malloc((an->n ? an->n : 1) * sizeof *an->insee_id);
        an->place_id = malloc((an->n ? an->n : 1) * sizeof *an->place_id);
        if (!an->xyz || !an->insee_id || !an->place_id)
            rc = MG_ERR_NOMEM;
        s_map_t insee = {0}, place = {0};
        char **keys = rc == MG_OK ? calloc(an->n ? an->n : 1, sizeof *keys) : NULL;
        if (rc == MG_OK && !keys)
            rc = MG_ERR_NOMEM;
        for (size_t i = 0; rc == MG_OK && i < an->n; i++) {
            mg_aoffer_t *o = &an->offers[i];
            s_unit_vector(o->lat, o->lng, an->xyz[i]);
            an->insee_id[i] = UINT32_MAX;
            if (o->insee[0] && s_map_put(&insee, o->insee, (uint32_t) insee.count,
                                         &an->insee_id[i]) < 0)
                rc = MG_ERR_NOMEM;
            size_t len = strlen(o->code_postal) + strlen(o->commune_fold) + 2;
            keys[i] = malloc(len);
            if (!keys[i]) {
                rc = MG_ERR_NOMEM;
                break;
            }
            snprintf(keys[i], len, "%s|%s", o->code_postal, o->commune_fold);
            if (s_map_put(&place, keys[i], (uint32_t) place.count, &an->place_id[i]) < 0)
                rc = MG_ERR_NOMEM;
        }
        for (size_t i = 0; keys && i < an->n; i++)
            free(keys[i]);
        free(keys);
        s_map_free(&insee);
        s_map_free(&place);
    }
    if (rc != MG_OK) {
        if (rc == MG_ERR_NOMEM && why && !why->text[0])
            mg_why_set(why, rc, "mémoire insuffisante pour l'analyse");
        mg_analysis_destroy(&an);
        return rc;
    }
    *out = an;
    return MG_OK;
}

void mg_analysis_destroy(mg_analysis_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    mg_analysis_t *an = *self_p;
    for (size_t i = 0; i < an->n; i++)
        s_offer_free(&an->offers[i]);
    free(an->offers);
    for (int f = 0; f < MG_AF_COUNT; f++)
        for (unsigned i = 0; i < an->labels[f].n; i++)
            free(an->labels[f].label[i]);
    for (size_t i = 0; i < an->ns; i++)
        free(an->structs[i].key);
    free(an->structs);
    s_map_free(&an->struct_map);
    for (size_t i = 0; i < an->np; i++)
        free(an->profiles[i].nom);
    free(an->profiles);
    for (size_t i = 0; i < an->cache_n; i++) {
        free(an->cache_keys[i]);
        free(an->cache_fold[i]);
    }
    free(an->cache_keys);
    free(an->cache_fold);
    free(an->cache_index);
    s_map_free(&an->commune_cache);
    free(an->xyz);
    free(an->insee_id);
    free(an->place_id);
    free(an);
    *self_p = NULL;
}

size_t mg_analysis_count(const mg_analysis_t *self)
{
    return self ? self->n : 0;
}

const mg_aoffer_t *mg_analysis_offer(const mg_analysis_t *self, size_t i)
{
    return self && i < self->n ? &self->offers[i] : NULL;
}

const mg_communes_t *mg_analysis_communes(const mg_analysis_t *self)
{
    return self ? self->communes : NULL;
}

size_t mg_analysis_structure_count(const mg_analysis_t *self)
{
    return self ? self->ns : 0;
}

const mg_astructure_t *mg_analysis_structure(const mg_analysis_t *self,
                                             size_t i)
{
    return self && i < self->ns ? &self->structs[i] : NULL;
}

unsigned mg_analysis_label_count(const mg_analysis_t *self, mg_afield_t f)
{
    return self && f < MG_AF_COUNT ? self->labels[f].n : 0;
}

const char *mg_analysis_label(const mg_analysis_t *self, mg_afield_t f,
                              unsigned bit)
{
    if (!self || f >= MG_AF_COUNT || bit >= self->labels[f].n)
        return NULL;
    return self->labels[f].label[bit];
}

int mg_analysis_label_bit(const mg_analysis_t *self, mg_afield_t f,
                          const char *label)
{
    if (!self || f >= MG_AF_COUNT || !label)
        return -1;
    char *want = NULL;
    if (mg_store_fold(label, &want) != MG_OK)
        return -1;
    int found = -1;
    for (unsigned i = 0; i < self->labels[f].n && found < 0; i++) {
        char *have = NULL;
        if (mg_store_fold(self->labels[f].label[i], &have) == MG_OK
            && strcmp(have, want) == 0)
            found = (int) i;
        free(have);
    }
    free(want);
    return found;
}

/* ------------------------------------------------------------------ */
/* Shared helpers of the analyses                                       */

/* Bits set (SWAR: no popcnt instruction is assumed). */
static int s_popcount(uint64_t x)
{
    x = x - ((x >> 1) & 0x5555555555555555ull);
    x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0Full;
    return (int) ((x * 0x0101010101010101ull) >> 56);
}

/* Same commune: same INSEE code when both have one, else same postal
   code and folded name. Integer ids interned at load. */
static bool s_same_commune_ids(const mg_analysis_t *an, uint32_t i, uint32_t j)
{
    if (an->insee_id[i] != UINT32_MAX && an->insee_id[j] != UINT32_MAX)
        return an->insee_id[i] == an->insee_id[j];
    return an->place_id[i] == an->place_id[j];
}

#define s_same_commune(a, b)                                               \
    s_same_commune_ids(an, (uint32_t) ((a) - an->offers),                  \
                       (uint32_t) ((b) - an->offers))

/* Minutes open in both slot lists. */
static uint32_t s_common_minutes(const mg_slot_t *a, size_t na,
                                 const mg_slot_t *b, size_t nb)
{
    uint32_t total = 0;
    size_t i = 0, j = 0;
    while (i < na && j < nb) {
        uint16_t s = a[i].start > b[j].start ? a[i].start : b[j].start;
        uint16_t e = a[i].end < b[j].end ? a[i].end : b[j].end;
        if (s < e)
            total += (uint32_t) (e - s);
        if (a[i].end < b[j].end)
            i++;
        else
            j++;
    }
    return total;
}

static uint32_t s_offer_minutes(const mg_aoffer_t *o)
{
    uint32_t total = 0;
    for (size_t i = 0; i < o->slot_count; i++)
        total += (uint32_t) (o->slots[i].end - o->slots[i].start);
    return total;
}

/* Visits the pairs (i < j) of a list. Returns the callback's non-zero. */
typedef int (s_pair_fn)(uint32_t i, uint32_t j, void *arg);

static int s_pairs_of_list(const uint32_t *v, size_t n, s_pair_fn *fn,
                           void *arg)
{
    for (size_t x = 0; x < n; x++)
        for (size_t y = x + 1; y < n; y++) {
            uint32_t i = v[x], j = v[y];
            if (i == j)
                continue;
            int rc = fn(i < j ? i : j, i < j ? j : i, arg);
            if (rc)
                return rc;
        }
    return 0;
}

/* Visits the pairs of `items` (offers with a position) that are within
   `km` of each other, by the grid. */
static int s_pairs_within(const mg_analysis_t *an, const uint32_t *items,
                          size_t n, double km, s_pair_fn *fn, void *arg)
{
    double *lat = malloc((an->n ? an->n : 1) * sizeof *lat);
    double *lng = malloc((an->n ? an->n : 1) * sizeof *lng);
    double (*gxyz)[3] = malloc((n ? n : 1) * sizeof *gxyz);
    if (!lat || !lng || !gxyz) {
        free(lat);
        free(lng);
        free(gxyz);
        return MG_ERR_NOMEM;
    }
    for (size_t i = 0; i < an->n; i++) {
        lat[i] = an->offers[i].lat;
        lng[i] = an->offers[i].lng;
    }
    s_grid_t g;
    int rc = s_grid_build(&g, km, items, n, lat, lng, 0);
    /* Walk the points in grid order, with their vectors copied in that
       order too: neighbours are then close in memory. */
    for (size_t k = 0; rc == MG_OK && k < g.n; k++)
        memcpy(gxyz[k], an->xyz[g.items[k]], sizeof gxyz[k]);
    double max2 = s_km_chord2(km);
    for (size_t x = 0; rc == MG_OK && x < g.n; x++) {
        uint32_t i = g.items[x];
        int32_t cx = s_cell_coord(lng[i], g.dlng), cy = s_cell_coord(lat[i], g.dlat);
        for (int dx = -1; dx <= 1 && rc == MG_OK; dx++)
            for (int dy = -1; dy <= 1 && rc == MG_OK; dy++) {
                size_t from, to;
                s_grid_cell(&g, cx + dx, cy + dy, &from, &to);
                for (size_t k = from; k < to && rc == MG_OK; k++) {
                    uint32_t j = g.items[k];
                    if (j <= i)
                        continue; /* each pair once */
                    if (s_chord2(gxyz[x], gxyz[k]) <= max2)
                        rc = fn(i, j, arg);
                }
            }
    }
    s_grid_free(&g);
    free(gxyz);
    free(lat);
    free(lng);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Duplicates                                                           */

/* Street-type words, never the identifying word of an address. */
static bool s_street_word(const char *w)
{
    static const char *const words[] = {
        "rue", "avenue", "boulevard", "place", "chemin", "route", "impasse",
        "allee", "square", "cours", "faubourg", "quai", "residence",
        "lotissement", "lieu", "dit", "saint", "sainte", "general",
        "marechal", "docteur", "president", "bis", "ter", "centre",
        "commercial", "zone", "batiment", "bat", "esplanade", "promenade",
        "passage", "sentier", "hameau", "cite", "parvis", NULL};
    for (size_t i = 0; words[i]; i++)
        if (strcmp(w, words[i]) == 0)
            return true;
    return s_stopword(w);
}

/* An address without its street-type and linking words: "5 halage"
   for "5 chemin du halage". Caller frees. */
static char *s_address_core(const char *norm)
{
    char *copy = strdup(norm), *keep[128];
    if (!copy)
        return NULL;
    size_t n = 0;
    for (char *t = strtok(copy, " "); t && n < 128; t = strtok(NULL, " "))
        if (!s_street_word(t) || !strcmp(t, "saint") || !strcmp(t, "sainte")
            || !strcmp(t, "general") || !strcmp(t, "marechal") || !strcmp(t, "docteur")
            || !strcmp(t, "president"))
            keep[n++] = t;
    char *out = s_join(keep, n);
    free(copy);
    return out;
}

/* Address similarity: the better of the ratio of the whole addresses
   and that of their cores, since the street type is often the part that
   differs between sources ("5 rue du Halage" / "5 chemin du Halage"). */
static int s_address_ratio(const char *a, const char *b)
{
    int r = mg_fuzzy_ratio(a, b);
    if (r == 100 || !*a || !*b)
        return r;
    char *ca = s_address_core(a), *cb = s_address_core(b);
    if (ca && cb && *ca && *cb && strchr(ca, ' ') && strchr(cb, ' ')) {
        /* Only cores with a number and a word: "halage" alone against
           "5 halage" says little. */
        int c = mg_fuzzy_ratio(ca, cb);
        if (c > r)
            r = c;
    }
    free(ca);
    free(cb);
    return r;
}

/* The blocking key of an address: postal code, house number, and its
   longest identifying word ("16000:31:roux"). NULL when it has no word. */
static char *s_address_key(const mg_aoffer_t *o)
{
    char *copy = strdup(o->adresse_norm);
    if (!copy)
        return NULL;
    const char *number = "", *best = NULL;
    bool first = true;
    for (char *t = strtok(copy, " "); t; t = strtok(NULL, " ")) {
        if (first && isdigit((unsigned char) t[0]))
            number = t;
        first = false;
        if (isdigit((unsigned char) t[0]) || s_street_word(t) || strlen(t) < 3)
            continue;
        if (!best || strlen(t) > strlen(best)
            || (strlen(t) == strlen(best) && strcmp(t, best) < 0))
            best = t;
    }
    char *key = NULL;
    if (best) {
        size_t len = strlen(o->code_postal) + strlen(number) + strlen(best) + 3;
        key = malloc(len);
        if (key)
            snprintf(key, len, "%s:%s:%s", o->code_postal, number, best);
    }
    free(copy);
    return key;
}

/* The house number an address starts with ("" when none). */
static void s_house_number(const char *addr, char out[16])
{
    size_t n = 0;
    while (isdigit((unsigned char) addr[n]) && n < 15) {
        out[n] = addr[n];
        n++;
    }
    out[n] = '\0';
}

/* Judges one pair; true when it is a duplicate. *p is filled when it
   is, and always when `full` (then rule is 0 for a non-duplicate). */
static bool s_dup_eval(const mg_analysis_t *an, double max_m, uint32_t i,
                       uint32_t j, mg_dup_pair_t *p, bool full)
{
    const mg_aoffer_t *a = &an->offers[i], *b = &an->offers[j];
    bool same_commune = s_same_commune(a, b);
    double d = -1;
    if (a->loc == MG_LOC_COORDS && b->loc == MG_LOC_COORDS)
        d = s_dist_km(an, i, j) * 1000.0;
    bool near = d >= 0 && d <= max_m;
    /* Every rule needs the same commune or the same spot. */
    if (!same_commune && !near && !full)
        return false;
    /* One structure's own offers (same author, neither imported from
       another source) are its separate services, not a place listed
       twice: a structure publishes one offer per service. */
    if (memcmp(a->author, b->author, MG_KEY_BYTES) == 0 && !a->source && !b->source)
        return false;
    memset(p, 0, sizeof *p);
    p->a = i < j ? i : j;
    p->b = i < j ? j : i;
    p->distance_m = (float) d;
    if (near)
        p->evidence |= MG_DUP_NEAR;
    if (d > 1000)
        p->evidence |= MG_DUP_FAR;
    if (d < 0)
        p->evidence |= MG_DUP_NO_COORDS;
    if (a->source && b->source && strcmp(a->source, b->source) == 0)
        p->evidence |= MG_DUP_SAME_SOURCE;
    bool pivot = !a->placeholder_pivot && !b->placeholder_pivot
                 && strcasecmp(a->pivot, b->pivot) == 0;
    bool phone = a->telephone && b->telephone && strlen(a->telephone) >= 8
                 && strcmp(a->telephone, b->telephone) == 0;
    bool email = false;
    for (size_t x = 0; a->courriels[x] && !email; x++)
        for (size_t y = 0; b->courriels[y] && !email; y++)
            email = strcmp(a->courriels[x], b->courriels[y]) == 0;
    if (pivot)
        p->evidence |= MG_DUP_PIVOT;
    if (phone)
        p->evidence |= MG_DUP_PHONE;
    if (email)
        p->evidence |= MG_DUP_EMAIL;
    int name = mg_fuzzy_ratio(a->nom_fold, b->nom_fold);
    if (name < 100) {
        int ts = s_token_set_ratio(a->nom_fold, b->nom_fold);
        if (ts > name)
            name = ts;
    }
    int addr = s_address_ratio(a->adresse_norm, b->adresse_norm);
    char na[16], nb[16];
    s_house_number(a->adresse_norm, na);
    s_house_number(b->adresse_norm, nb);
    bool numbers_differ = na[0] && nb[0] && strcmp(na, nb) != 0;
    p->name_ratio = (uint8_t) name;
    p->address_ratio = (uint8_t) addr;
    if (name >= 80)
        p->evidence |= MG_DUP_NAME;
    if (same_commune && addr >= 80)
        p->evidence |= MG_DUP_ADDRESS;
    bool same_place = near || (same_commune && addr >= 80 && !numbers_differ);
    if (!same_commune && !near)
        return false;
    if (pivot && same_place)
        p->rule = MG_DUP_RULE_PIVOT;
    else if ((phone || email) && same_place)
        p->rule = MG_DUP_RULE_CONTACT;
    else if (name >= 80 && addr >= 80
             && (near || (same_commune && name >= 90 && addr >= 90
                          && !numbers_differ)))
        p->rule = MG_DUP_RULE_PLACE;
    else
        return false;
    /* Score: the mean of what is known, never a missing coordinate
       counted as a match, plus strong identifiers. */
    double base;
    if (d >= 0) {
        double ds = d <= 25 ? 100 : d >= 1000 ? 0 : 100.0 * (1.0 - (d - 25) / 975.0);
        base = (name + addr + ds) / 3.0;
    } else {
        base = (name + addr) / 2.0 - 5;
    }
    double bonus = (pivot ? 15 : 0) + (phone ? 10 : 0) + (email ? 10 : 0);
    if (bonus > 20)
        bonus = 20;
    if (d > 1000)
        base -= 15;
    double score = floor(base + bonus + 0.5);
    p->score = (uint8_t) (score < 0 ? 0 : score > 100 ? 100 : score);
    return true;
}

typedef struct {
    uint64_t *v;
    size_t n, cap;
} s_u64s_t;

static int s_collect_pair(uint32_t i, uint32_t j, void *arg)
{
    s_u64s_t *c = arg;
    if (s_grow(&c->v, &c->cap, c->n + 1, sizeof *c->v) != MG_OK)
        return MG_ERR_NOMEM;
    c->v[c->n++] = s_pair_key(i, j);
    return 0;
}

/* Buckets larger than this are not discriminating (a national hotline,
   the SIRET of a network with hundreds of sites): their pairs are only
   compared when another key brings them together. */
#define S_BUCKET_MAX 64

static int s_pairs_of_buckets(const s_buckets_t *b, s_pair_fn *fn, void *arg)
{
    for (size_t k = 0; k < b->n; k++) {
        if (b->lists[k].n < 2 || b->lists[k].n > S_BUCKET_MAX)
            continue;
        int rc = s_pairs_of_list(b->lists[k].v, b->lists[k].n, fn, arg);
        if (rc)
            return rc;
    }
    return 0;
}

static int s_cmp_dup_pair(const void *x, const void *y)
{
    const mg_dup_pair_t *a = x, *b = y;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    if (a->a != b->a)
        return a->a < b->a ? -1 : 1;
    return a->b < b->b ? -1 : a->b > b->b;
}

static int s_cmp_dup_group(const void *x, const void *y)
{
    const mg_dup_group_t *a = x, *b = y;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    if (a->offer_count != b->offer_count)
        return a->offer_count > b->offer_count ? -1 : 1;
    return a->offers[0] < b->offers[0] ? -1 : a->offers[0] > b->offers[0];
}

static int s_cmp_u32(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *) x, b = *(const uint32_t *) y;
    return a < b ? -1 : a > b;
}

void mg_duplicates_destroy(mg_duplicates_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    mg_duplicates_t *d = *self_p;
    for (size_t g = 0; g < d->group_count; g++) {
        free(d->groups[g].offers);
        free(d->groups[g].pairs);
    }
    free(d->groups);
    free(d);
    *self_p = NULL;
}

/* The candidate pairs of the duplicate search, sorted and unique. */
static int s_dup_candidates(const mg_analysis_t *an, double max_m,
                            s_u64s_t *cand)
{
    s_buckets_t pivots = {0}, phones = {0}, emails = {0}, streets = {0};
    s_u32s_t located = {0};
    int rc = MG_OK;
    for (uint32_t i = 0; i < an->n && rc == MG_OK; i++) {
        const mg_aoffer_t *o = &an->offers[i];
        if (!o->placeholder_pivot) {
            char key[64];
            snprintf(key, sizeof key, "%s", o->pivot);
            for (char *p = key; *p; p++)
                *p = (char) toupper((unsigned char) *p);
            rc = s_buckets_add(&pivots, key, i);
        }
        if (rc == MG_OK && o->telephone && strlen(o->telephone) >= 8)
            rc = s_buckets_add(&phones, o->telephone, i);
        for (size_t k = 0; rc == MG_OK && o->courriels[k]; k++)
            rc = s_buckets_add(&emails, o->courriels[k], i);
        if (rc == MG_OK) {
            char *key = s_address_key(o);
            if (key)
                rc = s_buckets_add(&streets, key, i);
            free(key);
        }
        if (rc == MG_OK && o->loc == MG_LOC_COORDS)
            rc = s_u32s_push(&located, i);
    }
    if (rc == MG_OK)
        rc = s_pairs_of_buckets(&pivots, s_collect_pair, cand);
    if (rc == MG_OK)
        rc = s_pairs_of_buckets(&phones, s_collect_pair, cand);
    if (rc == MG_OK)
        rc = s_pairs_of_buckets(&emails, s_collect_pair, cand);
    if (rc == MG_OK)
        rc = s_pairs_of_buckets(&streets, s_collect_pair, cand);
    if (rc == MG_OK)
        rc = s_pairs_within(an, located.v, located.n, max_m / 1000.0,
                            s_collect_pair, cand);
    s_buckets_free(&pivots);
    s_buckets_free(&phones);
    s_buckets_free(&emails);
    s_buckets_free(&streets);
    free(located.v);
    if (rc == MG_OK && cand->n) {
        s_sort(cand->v, cand->n, sizeof *cand->v, s_cmp_u64);
        size_t w = 1;
        for (size_t r = 1; r < cand->n; r++)
            if (cand->v[r] != cand->v[w - 1])
                cand->v[w++] = cand->v[r];
        cand->n = w;
    }
    return rc;
}

int mg_duplicates_find(const mg_analysis_t *an, const mg_dup_opts_t *opts,
                       mg_duplicates_t **out, mg_why_t *why)
{
    *out = NULL;
    double max_m = opts && opts->max_m > 0 ? opts->max_m : 100.0;
    mg_duplicates_t *res = calloc(1, sizeof *res);
    s_u64s_t cand = {0};
    mg_dup_pair_t *pairs = NULL;
    size_t np = 0, cap = 0;
    uint32_t *parent = malloc((an->n ? an->n : 1) * sizeof *parent);
    int rc = res && parent ? MG_OK : MG_ERR_NOMEM;
    if (rc == MG_OK)
        rc = s_dup_candidates(an, max_m, &cand);
    for (size_t k = 0; rc == MG_OK && k < cand.n; k++) {
        uint32_t i = (uint32_t) (cand.v[k] >> 32), j = (uint32_t) cand.v[k];
        mg_dup_pair_t p;
        if (!s_dup_eval(an, max_m, i, j, &p, false))
            continue;
        if (s_grow(&pairs, &cap, np + 1, sizeof *pairs) != MG_OK)
            rc = MG_ERR_NOMEM;
        else
            pairs[np++] = p;
    }
    if (rc == MG_OK) {
        res->candidates = cand.n;
        res->pair_count = np;
        for (uint32_t i = 0; i < an->n; i++)
            parent[i] = i;
        for (size_t k = 0; k < np; k++)
            s_union(parent, pairs[k].a, pairs[k].b);
        s_sort(pairs, np, sizeof *pairs, s_cmp_dup_pair);
        /* One group per root that has pairs. */
        uint32_t *group_of = malloc((an->n ? an->n : 1) * sizeof *group_of);
        if (!group_of)
            rc = MG_ERR_NOMEM;
        for (uint32_t i = 0; rc == MG_OK && i < an->n; i++)
            group_of[i] = UINT32_MAX;
        size_t ng = 0, capg = 0;
        for (size_t k = 0; rc == MG_OK && k < np; k++) {
            uint32_t root = s_find(parent, pairs[k].a);
            if (group_of[root] == UINT32_MAX) {
                if (s_grow(&res->groups, &capg, ng + 1, sizeof *res->groups) != MG_OK) {
                    rc = MG_ERR_NOMEM;
                    break;
                }
                memset(&res->groups[ng], 0, sizeof res->groups[ng]);
                group_of[root] = (uint32_t) ng++;
                res->group_count = ng;
            }
            res->groups[group_of[root]].pair_count++;
        }
        for (size_t g = 0; rc == MG_OK && g < ng; g++) {
            res->groups[g].pairs = malloc(res->groups[g].pair_count * sizeof(mg_dup_pair_t));
            if (!res->groups[g].pairs)
                rc = MG_ERR_NOMEM;
            res->groups[g].pair_count = 0;
        }
        for (size_t k = 0; rc == MG_OK && k < np; k++) {
            mg_dup_group_t *gr = &res->groups[group_of[s_find(parent, pairs[k].a)]];
            if (gr->pair_count == 0)
                gr->score = pairs[k].score; /* pairs are sorted */
            gr->pairs[gr->pair_count++] = pairs[k];
        }
        /* Members: the offers of each pair, once. */
        for (size_t g = 0; rc == MG_OK && g < ng; g++) {
            mg_dup_group_t *gr = &res->groups[g];
            gr->offers = malloc(2 * gr->pair_count * sizeof *gr->offers);
            if (!gr->offers) {
                rc = MG_ERR_NOMEM;
                break;
            }
            for (size_t k = 0; k < gr->pair_count; k++) {
                gr->offers[gr->offer_count++] = gr->pairs[k].a;
                gr->offers[gr->offer_count++] = gr->pairs[k].b;
            }
            s_sort(gr->offers, gr->offer_count, sizeof *gr->offers, s_cmp_u32);
            size_t w = 0;
            for (size_t r = 0; r < gr->offer_count; r++)
                if (w == 0 || gr->offers[r] != gr->offers[w - 1])
                    gr->offers[w++] = gr->offers[r];
            gr->offer_count = w;
        }
        if (rc == MG_OK)
            s_sort(res->groups, res->group_count, sizeof *res->groups, s_cmp_dup_group);
        free(group_of);
    }
    free(cand.v);
    free(pairs);
    free(parent);
    if (rc != MG_OK) {
        mg_duplicates_destroy(&res);
        return mg_why_set(why, rc, "recherche de doublons : %s", mg_strerror(rc));
    }
    *out = res;
    return MG_OK;
}

bool mg_duplicates_judge(const mg_analysis_t *an, const mg_dup_opts_t *opts,
                         uint32_t i, uint32_t j, mg_dup_pair_t *pair)
{
    memset(pair, 0, sizeof *pair);
    if (i >= an->n || j >= an->n || i == j)
        return false;
    double max_m = opts && opts->max_m > 0 ? opts->max_m : 100.0;
    return s_dup_eval(an, max_m, i, j, pair, true);
}

/* The national rule on one pair, from processed names and addresses. */
static bool s_national_eval(const mg_analysis_t *an, const char *name_a,
                            const char *name_b, const char *addr_a,
                            const char *addr_b, uint32_t i, uint32_t j,
                            mg_national_pair_t *p, const char **why_not)
{
    const mg_aoffer_t *a = &an->offers[i], *b = &an->offers[j];
    memset(p, 0, sizeof *p);
    p->a = i < j ? i : j;
    p->b = i < j ? j : i;
    const char *reason = NULL;
    char ka[32], kb[32];
    snprintf(ka, sizeof ka, "%s%s", a->insee[0] ? "" : "cp:",
             a->insee[0] ? a->insee : a->code_postal);
    snprintf(kb, sizeof kb, "%s%s", b->insee[0] ? "" : "cp:",
             b->insee[0] ? b->insee : b->code_postal);
    if (strcmp(ka, kb) != 0)
        reason = "communes différentes";
    else if (strcmp(a->source ? a->source : "", b->source ? b->source : "") == 0)
        reason = "même source";
    else if (strcmp(a->id_standard ? a->id_standard : a->rid,
                    b->id_standard ? b->id_standard : b->rid) == 0)
        reason = "même identifiant";
    int n = mg_fuzzy_ratio(name_a, name_b);
    int ad = mg_fuzzy_ratio(addr_a, addr_b);
    double d = 0; /* a missing coordinate: distance 0 */
    if (a->loc == MG_LOC_COORDS && b->loc == MG_LOC_COORDS)
        d = sqrt((a->lat - b->lat) * (a->lat - b->lat)
                 + (a->lng - b->lng) * (a->lng - b->lng));
    int ds = d < 0.0004 ? 100 : (int) trunc(100.0 / (d * 1000.0 + 1.0));
    p->name = (uint8_t) n;
    p->address = (uint8_t) ad;
    p->distance = (uint8_t) ds;
    p->score = (uint8_t) trunc((n + ad + ds) / 3.0);
    if (!reason && p->score <= 83)
        reason = "score national de 83 ou moins";
    if (why_not)
        *why_not = reason;
    return reason == NULL;
}

bool mg_duplicates_national_judge(const mg_analysis_t *an, uint32_t i,
                                  uint32_t j, mg_national_pair_t *pair,
                                  const char **why_not)
{
    memset(pair, 0, sizeof *pair);
    if (why_not)
        *why_not = "offre inconnue";
    if (i >= an->n || j >= an->n || i == j)
        return false;
    char *na = mg_fuzzy_process(an->offers[i].nom);
    char *nb = mg_fuzzy_process(an->offers[j].nom);
    char *aa = mg_fuzzy_process(an->offers[i].adresse ? an->offers[i].adresse : "");
    char *ab = mg_fuzzy_process(an->offers[j].adresse ? an->offers[j].adresse : "");
    bool ok = false;
    if (na && nb && aa && ab)
        ok = s_national_eval(an, na, nb, aa, ab, i, j, pair, why_not);
    else if (why_not)
        *why_not = "mémoire insuffisante";
    free(na);
    free(nb);
    free(aa);
    free(ab);
    return ok;
}

/* The national cartography's rule (see mg_analysis.h). */
static int s_cmp_national(const void *x, const void *y)
{
    const mg_national_pair_t *a = x, *b = y;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    if (a->a != b->a)
        return a->a < b->a ? -1 : 1;
    return a->b < b->b ? -1 : a->b > b->b;
}

int mg_duplicates_national(const mg_analysis_t *an,
                           mg_national_pair_t **pairs_out, size_t *count,
                           mg_why_t *why)
{
    *pairs_out = NULL;
    *count = 0;
    char **names = calloc(an->n ? an->n : 1, sizeof *names);
    char **addrs = calloc(an->n ? an->n : 1, sizeof *addrs);
    s_buckets_t communes = {0};
    mg_national_pair_t *pairs = NULL;
    size_t np = 0, cap = 0;
    int rc = names && addrs ? MG_OK : MG_ERR_NOMEM;
    for (uint32_t i = 0; rc == MG_OK && i < an->n; i++) {
        const mg_aoffer_t *o = &an->offers[i];
        names[i] = mg_fuzzy_process(o->nom);
        addrs[i] = mg_fuzzy_process(o->adresse ? o->adresse : "");
        if (!names[i] || !addrs[i]) {
            rc = MG_ERR_NOMEM;
            break;
        }
        char key[32];
        if (o->insee[0])
            snprintf(key, sizeof key, "%s", o->insee);
        else
            snprintf(key, sizeof key, "cp:%s", o->code_postal);
        rc = s_buckets_add(&communes, key, i);
    }
    for (size_t k = 0; rc == MG_OK && k < communes.n; k++) {
        const s_u32s_t *l = &communes.lists[k];
        for (size_t x = 0; rc == MG_OK && x < l->n; x++)
            for (size_t y = x + 1; rc == MG_OK && y < l->n; y++) {
                uint32_t i = l->v[x], j = l->v[y];
                const mg_aoffer_t *a = &an->offers[i], *b = &an->offers[j];
                /* Cheap refusals first: the ratios cost the most. */
                if (strcmp(a->source ? a->source : "", b->source ? b->source : "") == 0)
                    continue;
                mg_national_pair_t p;
                if (!s_national_eval(an, names[i], names[j], addrs[i], addrs[j],
                                     i, j, &p, NULL))
                    continue;
                if (s_grow(&pairs, &cap, np + 1, sizeof *pairs) != MG_OK) {
                    rc = MG_ERR_NOMEM;
                    break;
                }
                pairs[np++] = p;
            }
    }
    for (size_t i = 0; names && i < an->n; i++)
        free(names[i]);
    for (size_t i = 0; addrs && i < an->n; i++)
        free(addrs[i]);
    free(names);
    free(addrs);
    s_buckets_free(&communes);
    if (rc != MG_OK) {
        free(pairs);
        return mg_why_set(why, rc, "règle nationale : %s", mg_strerror(rc));
    }
    s_sort(pairs, np, sizeof *pairs, s_cmp_national);
    *pairs_out = pairs;
    *count = np;
    return MG_OK;
}

/* ------------------------------------------------------------------ */
/* Overlaps                                                             */

/* A pair found: its offers and score. */
typedef struct {
    uint32_t a, b;
    uint8_t score;
} s_cpair_t;

/* "Better" order of pairs: higher score, then lower (a, b). */
static bool s_cpair_better(const s_cpair_t *x, const s_cpair_t *y)
{
    if (x->score != y->score)
        return x->score > y->score;
    if (x->a != y->a)
        return x->a < y->a;
    return x->b < y->b;
}

/* The best pairs of one offer: a min-heap of at most `cap` pairs (the
   worst at the root), or every pair when cap is 0. Keeping each pair in
   the heap of its lower offer is enough: a pair among its group's K best
   has fewer than K better pairs in the group, hence fewer than K better
   pairs at its lower offer. So no list of all pairs is ever held. */
typedef struct {
    s_cpair_t *v;
    uint32_t n, cap_alloc;
} s_heap_t;

static void s_heap_sift_down(s_heap_t *h, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < h->n && s_cpair_better(&h->v[w], &h->v[l]))
            w = l;
        if (r < h->n && s_cpair_better(&h->v[w], &h->v[r]))
            w = r;
        if (w == i)
            return;
        s_cpair_t t = h->v[i];
        h->v[i] = h->v[w];
        h->v[w] = t;
        i = w;
    }
}

static int s_heap_push(s_heap_t *h, size_t cap, s_cpair_t p)
{
    if (cap && h->n == cap) {
        if (!s_cpair_better(&p, &h->v[0]))
            return MG_OK;
        h->v[0] = p;
        s_heap_sift_down(h, 0);
        return MG_OK;
    }
    if (h->n == h->cap_alloc) {
        uint32_t c = h->cap_alloc ? 2 * h->cap_alloc : 4;
        if (cap && c > cap)
            c = (uint32_t) cap;
        s_cpair_t *v = realloc(h->v, c * sizeof *v);
        if (!v)
            return MG_ERR_NOMEM;
        h->v = v;
        h->cap_alloc = c;
    }
    uint32_t i = h->n++;
    h->v[i] = p;
    if (cap) /* sift up */
        while (i > 0 && s_cpair_better(&h->v[(i - 1) / 2], &h->v[i])) {
            s_cpair_t t = h->v[i];
            h->v[i] = h->v[(i - 1) / 2];
            h->v[(i - 1) / 2] = t;
            i = (i - 1) / 2;
        }
    return MG_OK;
}

typedef struct {
    const mg_analysis_t *an;
    double within_km;        /* 0: same commune */
    double within2;          /* squared chord of within_km */
    int service_bit;         /* -1: any */
    size_t max_pairs;        /* heap size per offer (0: all) */
    uint32_t *entity;        /* per structure: root after merging duplicates */
    uint32_t *minutes;       /* per offer: weekly open minutes */
    bool *considered;        /* per offer: has the service */
    /* Per offer, over the pairs where it is the lower index (a group's
       figures are then the union over its members). */
    uint32_t *parent;        /* union-find over offers */
    s_heap_t *heaps;
    uint64_t *agg_services, *agg_publics;
    bool *agg_all, *agg_hours;
    float *agg_dist;         /* largest known distance */
    size_t *agg_pairs;       /* pairs counted */
    uint8_t *best;           /* best score of any pair touching the offer */
} s_ov_t;

/* Judges a pair; true when it juxtaposes (then *p is filled). */
static bool s_ov_eval(const s_ov_t *ov, uint32_t i, uint32_t j,
                      mg_overlap_pair_t *p)
{
    const mg_analysis_t *an = ov->an;
    const mg_aoffer_t *a = &an->offers[i], *b = &an->offers[j];
    if (!ov->considered[i] || !ov->considered[j])
        return false;
    if (ov->entity[a->structure] == ov->entity[b->structure])
        return false;
    uint64_t sa = a->mask[MG_AF_SERVICES], sb = b->mask[MG_AF_SERVICES];
    uint64_t shared = sa & sb;
    if (ov->service_bit >= 0 ? !(shared & ((uint64_t) 1 << ov->service_bit)) : !shared)
        return false;
    uint64_t pa = a->mask[MG_AF_PUBLICS], pb = b->mask[MG_AF_PUBLICS];
    if (pa && pb && !(pa & pb))
        return false;
    bool both_coords = a->loc == MG_LOC_COORDS && b->loc == MG_LOC_COORDS;
    double chord2 = both_coords ? s_chord2(an->xyz[i], an->xyz[j]) : 0;
    bool same_commune;
    if (ov->within_km > 0 && both_coords) {
        if (chord2 > ov->within2)
            return false;
        same_commune = s_same_commune(a, b);
    } else if (!(same_commune = s_same_commune(a, b))) {
        return false;
    }
    bool hours = a->hours_state == MG_HOURS_OK && b->hours_state == MG_HOURS_OK;
    uint32_t common = 0;
    if (hours) {
        common = s_common_minutes(a->slots, a->slot_count, b->slots, b->slot_count);
        if (common == 0)
            return false;
    }
    double d = both_coords ? s_chord_km(chord2) : -1;
    p->a = i < j ? i : j;
    p->b = i < j ? j : i;
    p->services = shared;
    p->all_publics = !pa && !pb;
    p->publics = pa && pb ? (pa & pb) : (pa | pb);
    p->same_commune = same_commune;
    p->distance_km = (float) d;
    p->hours_known = hours;
    p->common_minutes = common;
    /* Score, out of 100 (docs/analysis.md): services 35, publics 15,
       distance 20, hours 20, modalités d'accompagnement 10; an unknown
       factor counts half. */
    int ns = s_popcount(sa), nsb = s_popcount(sb);
    double fs = (double) s_popcount(shared) / (ns < nsb ? ns : nsb);
    double fp;
    if (!pa && !pb)
        fp = 1.0;
    else if (!pa || !pb)
        fp = 0.5;
    else
        fp = (double) s_popcount(pa & pb)
             / (s_popcount(pa) < s_popcount(pb) ? s_popcount(pa) : s_popcount(pb));
    double scale = ov->within_km > 0 ? ov->within_km : 5.0;
    double fd = d >= 0 ? (d >= scale ? 0 : 1.0 - d / scale) : 0.5;
    double fh = 0.5;
    if (hours) {
        uint32_t m = ov->minutes[i] < ov->minutes[j] ? ov->minutes[i] : ov->minutes[j];
        fh = m ? (double) common / m : 0;
    }
    uint64_t ma = a->mask[MG_AF_ACCOMPAGNEMENT], mb = b->mask[MG_AF_ACCOMPAGNEMENT];
    double fm = 0.5;
    if (ma && mb)
        fm = (double) s_popcount(ma & mb)
             / (s_popcount(ma) < s_popcount(mb) ? s_popcount(ma) : s_popcount(mb));
    double score = 100.0 * (0.35 * fs + 0.15 * fp + 0.20 * fd + 0.20 * fh + 0.10 * fm);
    score = floor(score + 0.5);
    p->score = (uint8_t) (score > 100 ? 100 : score < 0 ? 0 : score);
    return true;
}

static int s_ov_pair(uint32_t i, uint32_t j, void *arg)
{
    s_ov_t *ov = arg;
    mg_overlap_pair_t p;
    if (!s_ov_eval(ov, i, j, &p))
        return 0;
    uint32_t a = p.a;
    s_union(ov->parent, p.a, p.b);
    ov->agg_services[a] |= p.services;
    if (p.all_publics)
        ov->agg_all[a] = true;
    else
        ov->agg_publics[a] |= p.publics;
    if (p.hours_known)
        ov->agg_hours[a] = true;
    if (p.distance_km > ov->agg_dist[a])
        ov->agg_dist[a] = p.distance_km;
    ov->agg_pairs[a]++;
    if (p.score > ov->best[p.a])
        ov->best[p.a] = p.score;
    if (p.score > ov->best[p.b])
        ov->best[p.b] = p.score;
    s_cpair_t cp = {p.a, p.b, p.score};
    return s_heap_push(&ov->heaps[a], ov->max_pairs, cp);
}

/* Same-commune pairs: by INSEE code when both have one, else by postal
   code (then s_same_commune compares names). `skip_both_coords`: leave
   out pairs where both have coordinates (the grid handles those). */
typedef struct {
    s_ov_t *ov;
    bool skip_both_coords;
    bool by_insee;   /* pairs from the INSEE buckets: both have INSEE */
} s_commune_pass_t;

static int s_commune_pair(uint32_t i, uint32_t j, void *arg)
{
    s_commune_pass_t *cp = arg;
    const mg_aoffer_t *a = &cp->ov->an->offers[i], *b = &cp->ov->an->offers[j];
    if (cp->skip_both_coords && a->loc == MG_LOC_COORDS && b->loc == MG_LOC_COORDS)
        return 0;
    /* Postal buckets leave pairs with two INSEE codes to the INSEE pass. */
    if (!cp->by_insee && a->insee[0] && b->insee[0])
        return 0;
    return s_ov_pair(i, j, cp->ov);
}

static int s_commune_pairs(s_ov_t *ov, bool skip_both_coords)
{
    const mg_analysis_t *an = ov->an;
    s_buckets_t insee = {0}, postal = {0};
    int rc = MG_OK;
    for (uint32_t i = 0; i < an->n && rc == MG_OK; i++) {
        if (!ov->considered[i])
            continue;
        const mg_aoffer_t *o = &an->offers[i];
        if (o->insee[0])
            rc = s_buckets_add(&insee, o->insee, i);
        if (rc == MG_OK)
            rc = s_buckets_add(&postal, o->code_postal, i);
    }
    s_commune_pass_t cp = {ov, skip_both_coords, true};
    for (size_t k = 0; rc == MG_OK && k < insee.n; k++)
        rc = s_pairs_of_list(insee.lists[k].v, insee.lists[k].n, s_commune_pair, &cp);
    cp.by_insee = false;
    for (size_t k = 0; rc == MG_OK && k < postal.n; k++)
        rc = s_pairs_of_list(postal.lists[k].v, postal.lists[k].n, s_commune_pair, &cp);
    s_buckets_free(&insee);
    s_buckets_free(&postal);
    return rc;
}

void mg_overlap_pair_slots(const mg_analysis_t *an,
                           const mg_overlap_pair_t *pair, mg_hours_t *out)
{
    memset(out, 0, sizeof *out);
    const mg_aoffer_t *a = &an->offers[pair->a], *b = &an->offers[pair->b];
    if (a->hours_state != MG_HOURS_OK || b->hours_state != MG_HOURS_OK)
        return;
    mg_hours_t ha, hb;
    memset(&ha, 0, sizeof ha);
    memset(&hb, 0, sizeof hb);
    if (a->slot_count)
        memcpy(ha.slots, a->slots, a->slot_count * sizeof *a->slots);
    ha.count = a->slot_count;
    if (b->slot_count)
        memcpy(hb.slots, b->slots, b->slot_count * sizeof *b->slots);
    hb.count = b->slot_count;
    mg_hours_intersect(&ha, &hb, out);
}

void mg_overlaps_destroy(mg_overlaps_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    mg_overlaps_t *o = *self_p;
    for (size_t g = 0; g < o->group_count; g++) {
        free(o->groups[g].offers);
        free(o->groups[g].pairs);
    }
    free(o->groups);
    free(o);
    *self_p = NULL;
}

static int s_cmp_cpair(const void *x, const void *y)
{
    const s_cpair_t *a = x, *b = y;
    if (s_cpair_better(a, b))
        return -1;
    return s_cpair_better(b, a) ? 1 : 0;
}

static int s_cmp_ov_group(const void *x, const void *y)
{
    const mg_overlap_group_t *a = x, *b = y;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    if (a->structures != b->structures)
        return a->structures > b->structures ? -1 : 1;
    if (a->offer_count != b->offer_count)
        return a->offer_count > b->offer_count ? -1 : 1;
    return a->offers[0] < b->offers[0] ? -1 : a->offers[0] > b->offers[0];
}

/* Slots when at least two of the members (with readable horaires) are
   open: +1 at each slot's start, -1 at its end, then a running sum. */
static int s_group_slots(const mg_analysis_t *an, const uint32_t *members,
                         size_t n, mg_hours_t *out)
{
    memset(out, 0, sizeof *out);
    int32_t *delta = calloc(MG_WEEK_MINUTES + 1, sizeof *delta);
    if (!delta)
        return MG_ERR_NOMEM;
    for (size_t k = 0; k < n; k++) {
        const mg_aoffer_t *o = &an->offers[members[k]];
        if (o->hours_state != MG_HOURS_OK)
            continue;
        for (size_t s = 0; s < o->slot_count; s++) {
            delta[o->slots[s].start]++;
            delta[o->slots[s].end]--;
        }
    }
    bool open = false;
    uint32_t start = 0;
    int32_t level = 0;
    for (uint32_t m = 0; m <= MG_WEEK_MINUTES; m++) {
        level += delta[m];
        bool o = m < MG_WEEK_MINUTES && level >= 2;
        if (o && !open) {
            start = m;
            open = true;
        } else if (!o && open) {
            if (out->count < sizeof out->slots / sizeof out->slots[0]) {
                out->slots[out->count].start = (uint16_t) start;
                out->slots[out->count].end = (uint16_t) m;
                out->count++;
            }
            open = false;
        }
    }
    free(delta);
    return MG_OK;
}

/* Orders a group's members: best pair first. */
static const uint8_t *s_sort_best;
static int s_cmp_member(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *) x, b = *(const uint32_t *) y;
    if (s_sort_best[a] != s_sort_best[b])
        return s_sort_best[a] > s_sort_best[b] ? -1 : 1;
    return a < b ? -1 : a > b;
}

static void s_ov_free(s_ov_t *ov)
{
    if (ov->heaps)
        for (size_t i = 0; i < ov->an->n; i++)
            free(ov->heaps[i].v);
    free(ov->heaps);
    free(ov->entity);
    free(ov->minutes);
    free(ov->considered);
    free(ov->parent);
    free(ov->agg_services);
    free(ov->agg_publics);
    free(ov->agg_all);
    free(ov->agg_hours);
    free(ov->agg_dist);
    free(ov->agg_pairs);
    free(ov->best);
}

int mg_overlaps_find(const mg_analysis_t *an, const mg_overlap_opts_t *opts,
                     mg_overlaps_t **out, mg_why_t *why)
{
    *out = NULL;
    static const mg_overlap_opts_t defaults = {0};
    if (!opts)
        opts = &defaults;
    if (opts->within_km < 0 || !isfinite(opts->within_km))
        return mg_why_set(why, MG_ERR_ARG, "distance invalide");
    s_ov_t ov;
    memset(&ov, 0, sizeof ov);
    ov.an = an;
    ov.within_km = opts->within_km;
    ov.within2 = s_km_chord2(opts->within_km);
    ov.max_pairs = opts->max_pairs;
    ov.service_bit = -1;
    if (opts->service) {
        ov.service_bit = mg_analysis_label_bit(an, MG_AF_SERVICES, opts->service);
        if (ov.service_bit < 0)
            return mg_why_set(why, MG_ERR_ARG, "service inconnu : « %s »",
                              opts->service);
    }
    size_t n = an->n ? an->n : 1;
    mg_overlaps_t *res = calloc(1, sizeof *res);
    ov.entity = malloc((an->ns ? an->ns : 1) * sizeof *ov.entity);
    ov.minutes = malloc(n * sizeof *ov.minutes);
    ov.considered = calloc(n, sizeof *ov.considered);
    ov.parent = malloc(n * sizeof *ov.parent);
    ov.heaps = calloc(n, sizeof *ov.heaps);
    ov.agg_services = calloc(n, sizeof *ov.agg_services);
    ov.agg_publics = calloc(n, sizeof *ov.agg_publics);
    ov.agg_all = calloc(n, sizeof *ov.agg_all);
    ov.agg_hours = calloc(n, sizeof *ov.agg_hours);
    ov.agg_dist = malloc(n * sizeof *ov.agg_dist);
    ov.agg_pairs = calloc(n, sizeof *ov.agg_pairs);
    ov.best = calloc(n, sizeof *ov.best);
    uint32_t *group_of = malloc(n * sizeof *group_of);
    s_u32s_t located = {0};
    mg_duplicates_t *dups = NULL;
    int rc = res && ov.entity && ov.minutes && ov.considered && ov.parent && ov.heaps
                 && ov.agg_services && ov.agg_publics && ov.agg_all && ov.agg_hours
                 && ov.agg_dist && ov.agg_pairs && ov.best && group_of
                 ? MG_OK : MG_ERR_NOMEM;
    /* Entities: structures, merged when their listings are duplicates of
       each other (the same place twice is not a juxtaposition). */
    if (rc == MG_OK)
        rc = mg_duplicates_find(an, NULL, &dups, why);
    if (rc == MG_OK) {
        for (uint32_t s = 0; s < an->ns; s++)
            ov.entity[s] = s;
        for (size_t g = 0; g < dups->group_count; g++)
            for (size_t k = 0; k < dups->groups[g].pair_count; k++) {
                const mg_dup_pair_t *p = &dups->groups[g].pairs[k];
                uint32_t sa = an->offers[p->a].structure, sb = an->offers[p->b].structure;
                if (s_find(ov.entity, sa) != s_find(ov.entity, sb))
                    res->duplicate_pairs++;
                s_union(ov.entity, sa, sb);
            }
        for (uint32_t s = 0; s < an->ns; s++)
            ov.entity[s] = s_find(ov.entity, s);
        for (uint32_t i = 0; i < an->n; i++) {
            const mg_aoffer_t *o = &an->offers[i];
            ov.parent[i] = i;
            group_of[i] = UINT32_MAX;
            ov.agg_dist[i] = -1;
            ov.minutes[i] = s_offer_minutes(o);
            ov.considered[i] = ov.service_bit < 0
                                   ? o->mask[MG_AF_SERVICES] != 0
                                   : (o->mask[MG_AF_SERVICES] >> ov.service_bit) & 1;
            if (ov.considered[i])
                res->offers_considered++;
            if (ov.considered[i] && o->loc == MG_LOC_COORDS && rc == MG_OK)
                rc = s_u32s_push(&located, i);
        }
    }
    mg_duplicates_destroy(&dups);
    /* Candidate pairs: the grid for pairs with coordinates (within KM),
       the commune buckets for the others (or for all, by default). */
    if (rc == MG_OK && ov.within_km > 0)
        rc = s_pairs_within(an, located.v, located.n, ov.within_km, s_ov_pair, &ov);
    if (rc == MG_OK)
        rc = s_commune_pairs(&ov, ov.within_km > 0);
    free(located.v);

    /* Groups: the connected sets of pairs. */
    size_t ng = 0, capg = 0;
    for (uint32_t i = 0; rc == MG_OK && i < an->n; i++) {
        /* best[] is set on both offers of every pair, and a pair scores
           at least 4 (one shared service of nine weighs 35/9): zero
           means the offer has no pair. */
        if (!ov.best[i])
            continue;
        uint32_t root = s_find(ov.parent, i);
        if (group_of[root] == UINT32_MAX) {
            if (s_grow(&res->groups, &capg, ng + 1, sizeof *res->groups) != MG_OK) {
                rc = MG_ERR_NOMEM;
                break;
            }
            memset(&res->groups[ng], 0, sizeof res->groups[ng]);
            res->groups[ng].max_distance_km = -1;
            group_of[root] = (uint32_t) ng++;
            res->group_count = ng;
        }
        mg_overlap_group_t *gr = &res->groups[group_of[root]];
        gr->offer_count++;
        gr->pair_total += ov.agg_pairs[i];
        gr->services |= ov.agg_services[i];
        gr->publics |= ov.agg_publics[i];
        gr->all_publics = gr->all_publics || ov.agg_all[i];
        gr->hours_known = gr->hours_known || ov.agg_hours[i];
        if (ov.agg_dist[i] > gr->max_distance_km)
            gr->max_distance_km = ov.agg_dist[i];
        if (ov.best[i] > gr->score)
            gr->score = ov.best[i];
    }
    for (size_t g = 0; rc == MG_OK && g < ng; g++) {
        res->groups[g].offers = malloc(res->groups[g].offer_count * sizeof(uint32_t));
        if (!res->groups[g].offers)
            rc = MG_ERR_NOMEM;
        res->groups[g].offer_count = 0;
    }
    for (uint32_t i = 0; rc == MG_OK && i < an->n; i++)
        if (ov.best[i]) {
            mg_overlap_group_t *gr = &res->groups[group_of[s_find(ov.parent, i)]];
            gr->offers[gr->offer_count++] = i;
        }
    /* Each group's best pairs, from its members' heaps. */
    for (size_t g = 0; rc == MG_OK && g < ng; g++) {
        mg_overlap_group_t *gr = &res->groups[g];
        /* The group's best pairs among its members' best: a bounded
           heap, then a sort of what it kept. */
        s_heap_t top = {0};
        for (size_t k = 0; rc == MG_OK && k < gr->offer_count; k++) {
            const s_heap_t *h = &ov.heaps[gr->offers[k]];
            for (uint32_t x = 0; rc == MG_OK && x < h->n; x++)
                rc = s_heap_push(&top, ov.max_pairs, h->v[x]);
        }
        if (rc != MG_OK) {
            free(top.v);
            break;
        }
        s_cpair_t *all = top.v;
        size_t w = top.n;
        s_sort(all, w, sizeof *all, s_cmp_cpair);
        size_t keep = w;
        gr->pairs = malloc((keep ? keep : 1) * sizeof *gr->pairs);
        if (!gr->pairs) {
            free(all);
            rc = MG_ERR_NOMEM;
            break;
        }
        for (size_t k = 0; k < keep; k++)
            if (s_ov_eval(&ov, all[k].a, all[k].b, &gr->pairs[gr->pair_count]))
                gr->pair_count++;
        free(all);
        /* Members, best first; distinct structures (duplicates merged). */
        s_sort_best = ov.best;
        s_sort(gr->offers, gr->offer_count, sizeof *gr->offers, s_cmp_member);
        uint32_t *ents = malloc(gr->offer_count * sizeof *ents);
        if (!ents) {
            rc = MG_ERR_NOMEM;
            break;
        }
        for (size_t k = 0; k < gr->offer_count; k++)
            ents[k] = ov.entity[an->offers[gr->offers[k]].structure];
        s_sort(ents, gr->offer_count, sizeof *ents, s_cmp_u32);
        for (size_t k = 0; k < gr->offer_count; k++)
            if (k == 0 || ents[k] != ents[k - 1])
                gr->structures++;
        free(ents);
        rc = s_group_slots(an, gr->offers, gr->offer_count, &gr->slots);
    }
    if (rc == MG_OK)
        s_sort(res->groups, res->group_count, sizeof *res->groups, s_cmp_ov_group);
    s_ov_free(&ov);
    free(group_of);
    if (rc != MG_OK) {
        mg_overlaps_destroy(&res);
        if (why && !why->text[0])
            mg_why_set(why, rc, "juxtapositions : %s", mg_strerror(rc));
        return rc;
    }
    *out = res;
    return MG_OK;
}

/* ------------------------------------------------------------------ */
/* Gaps                                                                 */

typedef struct {
    uint32_t commune;
    int64_t population;
} s_unit_t;

void mg_gaps_destroy(mg_gaps_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    mg_gaps_t *g = *self_p;
    for (size_t i = 0; i < g->count; i++)
        free(g->items[i].rows);
    free(g->items);
    free(g);
    *self_p = NULL;
}

static const mg_communes_t *s_communes_of(const mg_analysis_t *an)
{
    return an->communes;
}

/* Places of the territory: a COM's own population (minus its parts'),
   each COMD/ARM part with its own. */
static int s_gap_units(const mg_communes_t *cs, s_unit_t **units_out,
                       size_t *n_out, mg_gaps_t *res)
{
    size_t n = mg_communes_count(cs);
    int64_t *parts = calloc(n ? n : 1, sizeof *parts);
    bool *has_parts = calloc(n ? n : 1, sizeof *has_parts);
    s_unit_t *units = malloc((n ? n : 1) * sizeof *units);
    if (!parts || !has_parts || !units) {
        free(parts);
        free(has_parts);
        free(units);
        return MG_ERR_NOMEM;
    }
    /* Index of each part's parent COM (a COMD may share its parent's
       INSEE code: the chef-lieu's delegated commune). */
    long *parent = malloc((n ? n : 1) * sizeof *parent);
    if (!parent) {
        free(parts);
        free(has_parts);
        free(units);
        return MG_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const mg_commune_t *c = mg_communes_at(cs, i);
        parent[i] = -1;
        if (c->type != MG_COMMUNE_COMD && c->type != MG_COMMUNE_ARM)
            continue;
        const char *p = c->parent[0] ? c->parent : c->insee;
        long idx = mg_communes_locate(cs, p, NULL, NULL, NULL);
        if (idx >= 0 && mg_communes_at(cs, (size_t) idx)->type == MG_COMMUNE_COM) {
            parent[i] = idx;
            has_parts[idx] = true;
            if (c->population > 0)
                parts[idx] += c->population;
        }
    }
    size_t nu = 0;
    for (size_t i = 0; i < n; i++) {
        const mg_commune_t *c = mg_communes_at(cs, i);
        int64_t pop = c->population > 0 ? c->population : 0;
        if (c->type == MG_COMMUNE_COM) {
            pop -= parts[i];
            if (pop < 0)
                pop = 0;
            if (pop == 0 && has_parts[i])
                continue; /* all of it is in its parts */
        } else if (c->type == MG_COMMUNE_OTHER) {
            continue;
        }
        if (!c->has_pos) {
            res->units_unplaced++;
            res->population_unplaced += pop;
            continue;
        }
        units[nu].commune = (uint32_t) i;
        units[nu].population = pop;
        nu++;
    }
    free(parts);
    free(has_parts);
    free(parent);
    *units_out = units;
    *n_out = nu;
    return MG_OK;
}

static int s_cmp_gap_row(const void *x, const void *y, void *cs_)
{
    const mg_gap_row_t *a = x, *b = y;
    if (a->population != b->population)
        return a->population > b->population ? -1 : 1;
    const mg_communes_t *cs = cs_;
    return strcmp(mg_communes_at(cs, a->commune)->nom,
                  mg_communes_at(cs, b->commune)->nom);
}

/* qsort_r is a GNU extension; a file-static context keeps this C11. */
static const mg_communes_t *s_sort_communes;
static int s_cmp_gap_row_static(const void *x, const void *y)
{
    return s_cmp_gap_row(x, y, (void *) s_sort_communes);
}

int mg_gaps_find(const mg_analysis_t *an, const mg_gaps_opts_t *opts,
                 mg_gaps_t **out, mg_why_t *why)
{
    *out = NULL;
    const mg_communes_t *cs = s_communes_of(an);
    if (!cs || mg_communes_count(cs) == 0)
        return mg_why_set(why, MG_ERR_ARG,
                          "l'analyse des manques demande une table des communes");
    static const mg_gaps_opts_t defaults = {0};
    if (!opts)
        opts = &defaults;
    double R = opts->within_km > 0 ? opts->within_km : 10.0;
    if (!isfinite(R))
        return mg_why_set(why, MG_ERR_ARG, "distance invalide");
    int svc = -1, pub = -1;
    if (opts->service
        && (svc = mg_analysis_label_bit(an, MG_AF_SERVICES, opts->service)) < 0)
        return mg_why_set(why, MG_ERR_ARG, "service inconnu : « %s »", opts->service);
    if (opts->public_
        && (pub = mg_analysis_label_bit(an, MG_AF_PUBLICS, opts->public_)) < 0)
        return mg_why_set(why, MG_ERR_ARG, "public inconnu : « %s »", opts->public_);

    mg_gaps_t *res = calloc(1, sizeof *res);
    if (!res)
        return MG_ERR_NOMEM;
    res->within_km = R;
    /* The analyses: services, then publics. */
    unsigned nsvc = mg_analysis_label_count(an, MG_AF_SERVICES);
    unsigned npub = mg_analysis_label_count(an, MG_AF_PUBLICS);
    /* Public rows: each public when no service is asked for; with a
       service, only the public asked for (if any). */
    bool public_rows = pub >= 0 || svc < 0;
    size_t nitems = (svc >= 0 ? 1 : nsvc) + (public_rows ? (pub >= 0 ? 1 : npub) : 0);
    res->items = calloc(nitems ? nitems : 1, sizeof *res->items);
    size_t caps[2 * MG_LABELS_MAX] = {0};
    s_unit_t *units = NULL;
    size_t nu = 0;
    s_u32s_t located = {0};
    s_grid_t grid;
    memset(&grid, 0, sizeof grid);
    double *lat = malloc((an->n ? an->n : 1) * sizeof *lat);
    double *lng = malloc((an->n ? an->n : 1) * sizeof *lng);
    int rc = res->items && lat && lng ? MG_OK : MG_ERR_NOMEM;
    for (unsigned b = 0; rc == MG_OK && b < nsvc; b++)
        if (svc < 0 || (int) b == svc) {
            mg_gap_t *g = &res->items[res->count++];
            g->kind = MG_GAP_SERVICE;
            g->bit = b;
            g->label = mg_analysis_label(an, MG_AF_SERVICES, b);
        }
    for (unsigned b = 0; rc == MG_OK && public_rows && b < npub; b++)
        if (pub < 0 || (int) b == pub) {
            mg_gap_t *g = &res->items[res->count++];
            g->kind = MG_GAP_PUBLIC;
            g->bit = b;
            g->label = mg_analysis_label(an, MG_AF_PUBLICS, b);
        }
    /* Offers that count: located; for service rows, serving the public
       asked for (or everyone); for public rows, of the service asked. */
    for (uint32_t i = 0; rc == MG_OK && i < an->n; i++) {
        const mg_aoffer_t *o = &an->offers[i];
        lat[i] = o->lat;
        lng[i] = o->lng;
        if (o->loc == MG_LOC_COORDS)
            res->offers_coords++;
        else if (o->loc == MG_LOC_CENTRE)
            res->offers_centre++;
        else
            res->offers_unlocated++;
        if (o->loc == MG_LOC_NONE)
            continue;
        rc = s_u32s_push(&located, i);
        for (size_t k = 0; k < res->count; k++) {
            mg_gap_t *g = &res->items[k];
            if (g->kind == MG_GAP_SERVICE) {
                if (((o->mask[MG_AF_SERVICES] >> g->bit) & 1)
                    && (pub < 0 || !o->mask[MG_AF_PUBLICS]
                        || ((o->mask[MG_AF_PUBLICS] >> pub) & 1)))
                    g->offers++;
            } else if (((o->mask[MG_AF_PUBLICS] >> g->bit) & 1)
                       && (svc < 0 || ((o->mask[MG_AF_SERVICES] >> svc) & 1))) {
                g->offers++;
            }
        }
    }
    if (rc == MG_OK)
        rc = s_gap_units(cs, &units, &nu, res);
    /* Cells of at least 10 km: the 3 x 3 neighbourhood still holds every
       offer within R, and the search for the nearest offer (up to
       MG_GAPS_SEARCH_KM) visits at most 20 rings of cells. */
    double cell_km = R > 10.0 ? R : 10.0;
    double query_maxlat = 0;
    for (size_t c = 0; c < mg_communes_count(cs); c++) {
        const mg_commune_t *mc = mg_communes_at(cs, c);
        if (mc->has_pos && fabs(mc->lat) > query_maxlat)
            query_maxlat = fabs(mc->lat);
    }
    if (rc == MG_OK)
        rc = s_grid_build(&grid, cell_km, located.v, located.n, lat, lng, query_maxlat);
    res->units = nu;
    for (size_t k = 0; rc == MG_OK && k < res->count; k++)
        res->items[k].units = nu;
    for (size_t u = 0; rc == MG_OK && u < nu; u++) {
        const mg_commune_t *c = mg_communes_at(cs, units[u].commune);
        res->population += units[u].population;
        int32_t cx = s_cell_coord(c->lng, grid.dlng), cy = s_cell_coord(c->lat, grid.dlat);
        double cx3[3];
        s_unit_vector(c->lat, c->lng, cx3);
        /* best[k]: nearest qualifying offer for item k, in km. */
        double best[2 * MG_LABELS_MAX];
        for (size_t k = 0; k < res->count; k++)
            best[k] = INFINITY;
        double reach = 0;
        for (int r = 0; reach <= MG_GAPS_SEARCH_KM; r++) {
            for (int dx = -r; dx <= r; dx++)
                for (int dy = -r; dy <= r; dy++) {
                    if (abs(dx) != r && abs(dy) != r)
                        continue; /* only the ring */
                    size_t from, to;
                    s_grid_cell(&grid, cx + dx, cy + dy, &from, &to);
                    for (size_t e = from; e < to; e++) {
                        const mg_aoffer_t *o = &an->offers[grid.items[e]];
                        double d = s_chord_km(s_chord2(cx3, an->xyz[grid.items[e]]));
                        for (size_t k = 0; k < res->count; k++) {
                            if (d >= best[k])
                                continue;
                            const mg_gap_t *g = &res->items[k];
                            bool q = g->kind == MG_GAP_SERVICE
                                         ? ((o->mask[MG_AF_SERVICES] >> g->bit) & 1)
                                               && (pub < 0 || !o->mask[MG_AF_PUBLICS]
                                                   || ((o->mask[MG_AF_PUBLICS] >> pub) & 1))
                                         : ((o->mask[MG_AF_PUBLICS] >> g->bit) & 1)
                                               && (svc < 0 || ((o->mask[MG_AF_SERVICES] >> svc) & 1));
                            if (q)
                                best[k] = d;
                        }
                    }
                }
            /* Anything in ring r+1 or beyond is at least r cells away:
               a best distance within that is final. */
            reach = (double) r * cell_km;
            bool done = true;
            for (size_t k = 0; k < res->count && done; k++)
                if (best[k] > reach && !(best[k] <= R && r >= 1))
                    done = false;
            if (done)
                break;
        }
        for (size_t k = 0; rc == MG_OK && k < res->count; k++) {
            mg_gap_t *g = &res->items[k];
            g->population += units[u].population;
            if (best[k] <= R) {
                g->covered += units[u].population;
                continue;
            }
            g->uncovered_units++;
            if (s_grow(&g->rows, &caps[k], g->row_count + 1, sizeof *g->rows) != MG_OK) {
                rc = MG_ERR_NOMEM;
                break;
            }
            mg_gap_row_t *row = &g->rows[g->row_count++];
            row->commune = units[u].commune;
            row->population = units[u].population;
            row->nearest_km = best[k] <= MG_GAPS_SEARCH_KM ? (float) best[k] : -1.0f;
        }
    }
    s_sort_communes = cs;
    for (size_t k = 0; rc == MG_OK && k < res->count; k++)
        s_sort(res->items[k].rows, res->items[k].row_count,
              sizeof(mg_gap_row_t), s_cmp_gap_row_static);
    s_grid_free(&grid);
    free(located.v);
    free(units);
    free(lat);
    free(lng);
    if (rc != MG_OK) {
        mg_gaps_destroy(&res);
        return mg_why_set(why, rc, "manques : %s", mg_strerror(rc));
    }
    *out = res;
    return MG_OK;
}

/* ------------------------------------------------------------------ */
/* Complementarities                                                    */

void mg_complements_destroy(mg_complements_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->partners);
    free((*self_p)->peers);
    free(*self_p);
    *self_p = NULL;
}

static int s_partner_weight(const mg_partner_t *p)
{
    return 3 * s_popcount(p->services_new) + 2 * s_popcount(p->publics_new)
           + 2 * s_popcount(p->prise_new) + s_popcount(p->accomp_new);
}

static int s_cmp_partner(const void *x, const void *y)
{
    const mg_partner_t *a = x, *b = y;
    int wa = s_partner_weight(a), wb = s_partner_weight(b);
    if (wa != wb)
        return wa > wb ? -1 : 1;
    if (a->distance_km != b->distance_km)
        return a->distance_km < b->distance_km ? -1 : 1;
    return a->structure < b->structure ? -1 : a->structure > b->structure;
}

static int s_cmp_peer(const void *x, const void *y)
{
    const mg_partner_t *a = x, *b = y;
    if (a->distance_km != b->distance_km)
        return a->distance_km < b->distance_km ? -1 : 1;
    int sa = s_popcount(a->services_shared), sb = s_popcount(b->services_shared);
    if (sa != sb)
        return sa > sb ? -1 : 1;
    return a->structure < b->structure ? -1 : a->structure > b->structure;
}

int mg_complements_find(const mg_analysis_t *an, const uint32_t *ours,
                        size_t our_count, double within_km,
                        mg_complements_t **out, mg_why_t *why)
{
    *out = NULL;
    if (!(within_km > 0) || !isfinite(within_km))
        return mg_why_set(why, MG_ERR_ARG, "distance invalide");
    mg_complements_t *res = calloc(1, sizeof *res);
    bool *mine = calloc(an->ns ? an->ns : 1, sizeof *mine);
    mg_partner_t *acc = calloc(an->ns ? an->ns : 1, sizeof *acc);
    bool *met = calloc(an->ns ? an->ns : 1, sizeof *met);
    double *lat = malloc((an->n ? an->n : 1) * sizeof *lat);
    double *lng = malloc((an->n ? an->n : 1) * sizeof *lng);
    s_u32s_t located = {0};
    s_grid_t grid;
    memset(&grid, 0, sizeof grid);
    int rc = res && mine && acc && met && lat && lng ? MG_OK : MG_ERR_NOMEM;
    for (size_t k = 0; rc == MG_OK && k < our_count; k++) {
        if (ours[k] >= an->n) {
            rc = mg_why_set(why, MG_ERR_ARG, "offre hors de l'analyse");
            break;
        }
        const mg_aoffer_t *o = &an->offers[ours[k]];
        mine[o->structure] = true;
        res->services |= o->mask[MG_AF_SERVICES];
        res->publics |= o->mask[MG_AF_PUBLICS];
        res->prise |= o->mask[MG_AF_PRISE_EN_CHARGE];
        res->accomp |= o->mask[MG_AF_ACCOMPAGNEMENT];
    }
    for (uint32_t i = 0; rc == MG_OK && i < an->n; i++) {
        lat[i] = an->offers[i].lat;
        lng[i] = an->offers[i].lng;
        if (an->offers[i].loc != MG_LOC_NONE && !mine[an->offers[i].structure])
            rc = s_u32s_push(&located, i);
    }
    if (rc == MG_OK)
        rc = s_grid_build(&grid, within_km, located.v, located.n, lat, lng, 0);
    for (size_t k = 0; rc == MG_OK && k < our_count; k++) {
        const mg_aoffer_t *o = &an->offers[ours[k]];
        if (o->loc == MG_LOC_NONE)
            continue;
        res->our_offers++;
        int32_t cx = s_cell_coord(o->lng, grid.dlng), cy = s_cell_coord(o->lat, grid.dlat);
        for (int dx = -1; dx <= 1; dx++)
            for (int dy = -1; dy <= 1; dy++) {
                size_t from, to;
                s_grid_cell(&grid, cx + dx, cy + dy, &from, &to);
                for (size_t e = from; e < to; e++) {
                    uint32_t j = grid.items[e];
                    const mg_aoffer_t *p = &an->offers[j];
                    double d = s_dist_km(an, ours[k], j);
                    if (d > within_km)
                        continue;
                    mg_partner_t *a = &acc[p->structure];
                    if (!met[p->structure] || d < a->distance_km) {
                        a->distance_km = (float) d;
                        a->offer = j;
                    }
                    met[p->structure] = true;
                    a->structure = p->structure;
                    a->services_new |= p->mask[MG_AF_SERVICES];
                    a->publics_new |= p->mask[MG_AF_PUBLICS];
                    a->prise_new |= p->mask[MG_AF_PRISE_EN_CHARGE];
                    a->accomp_new |= p->mask[MG_AF_ACCOMPAGNEMENT];
                }
            }
    }
    size_t capp = 0, capq = 0;
    for (uint32_t s = 0; rc == MG_OK && s < an->ns; s++) {
        if (!met[s])
            continue;
        mg_partner_t p = acc[s];
        uint64_t services = p.services_new, publics = p.publics_new;
        p.services_shared = services & res->services;
        p.publics_shared = publics & res->publics;
        p.services_new = services & ~res->services;
        /* An offer for everyone has no specific public to bring. */
        p.publics_new = publics & ~res->publics;
        p.prise_new &= ~res->prise;
        p.accomp_new &= ~res->accomp;
        if (p.services_new || p.publics_new || p.prise_new || p.accomp_new) {
            if (s_grow(&res->partners, &capp, res->partner_count + 1, sizeof p) != MG_OK)
                rc = MG_ERR_NOMEM;
            else
                res->partners[res->partner_count++] = p;
        }
        if (rc == MG_OK && p.services_shared) {
            if (s_grow(&res->peers, &capq, res->peer_count + 1, sizeof p) != MG_OK)
                rc = MG_ERR_NOMEM;
            else
                res->peers[res->peer_count++] = p;
        }
    }
    if (rc == MG_OK) {
        s_sort(res->partners, res->partner_count, sizeof(mg_partner_t), s_cmp_partner);
        s_sort(res->peers, res->peer_count, sizeof(mg_partner_t), s_cmp_peer);
    }
    s_grid_free(&grid);
    free(located.v);
    free(mine);
    free(acc);
    free(met);
    free(lat);
    free(lng);
    if (rc != MG_OK) {
        mg_complements_destroy(&res);
        if (why && !why->text[0])
            mg_why_set(why, rc, "complémentarités : %s", mg_strerror(rc));
        return rc;
    }
    *out = res;
    return MG_OK;
}

/* ------------------------------------------------------------------ */
/* Check                                                                */

const char *mg_question_text(mg_question_t q)
{
    static const char *const text[MG_Q_COUNT] = {
        "Qui êtes-vous ?", "Que proposez-vous ?", "Pour qui ?", "Où ?",
        "Quelle durée ?", "Quelle fréquence ?", "Quelles modalités ?",
        "Quelle démarche ?"};
    return q < MG_Q_COUNT ? text[q] : "?";
}

static bool s_has(const mg_body_t *b, const char *key)
{
    if (!b)
        return false;
    const char *const *items;
    double num;
    return mg_body_list(b, key, &items) > 0 || mg_body_num(b, key, &num) == 0;
}

/* "tout public", "tous publics", "ouvert à tous"... in a text. */
static bool s_says_everyone(const char *text)
{
    if (!text)
        return false;
    char *f = NULL;
    if (mg_store_fold(text, &f) != MG_OK)
        return false;
    static const char *const words[] = {"tout public", "tous publics",
                                        "tous les publics", "ouvert a tous",
                                        "ouverte a tous", "pour tous",
                                        "toute personne", NULL};
    bool found = false;
    for (size_t i = 0; words[i] && !found; i++)
        found = strstr(f, words[i]) != NULL;
    free(f);
    return found;
}

/* Milliseconds of noon UTC on a YYYY-MM-DD date, or -1. */
static int64_t s_date_ms(const char *date)
{
    int y, m, d;
    if (!date || sscanf(date, "%4d-%2d-%2d", &y, &m, &d) != 3 || m < 1
        || m > 12 || d < 1 || d > 31)
        return -1;
    /* Days from civil (H. Hinnant's algorithm), no timegm needed. */
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = era * 146097 + doe - 719468;
    return days * 86400000 + 12 * 3600000;
}

static void s_missing(mg_check_t *c, mg_question_t q, const char *text)
{
    c->answered[q] = false;
    size_t used = strlen(c->missing[q]);
    snprintf(c->missing[q] + used, sizeof c->missing[q] - used, "%s%s",
             used ? " ; " : "", text);
}

static void s_advice(mg_check_t *c, mg_question_t q, const char *text)
{
    size_t used = strlen(c->advice[q]);
    snprintf(c->advice[q] + used, sizeof c->advice[q] - used, "%s%s",
             used ? " ; " : "", text);
}

void mg_check_offer(const mg_body_t *b, const mg_body_t *profile,
                    int64_t updated_ms, int64_t now_ms, mg_check_t *c)
{
    memset(c, 0, sizeof *c);
    for (int q = 0; q < MG_Q_COUNT; q++)
        c->answered[q] = true;
    /* Qui êtes-vous ? A name, and a way to reach you. */
    if (!s_has(b, "nom"))
        s_missing(c, MG_Q_QUI, "le nom du lieu (--nom)");
    if (!s_has(b, "telephone") && !s_has(b, "courriels") && !s_has(b, "site_web")
        && !s_has(profile, "telephone") && !s_has(profile, "courriels")
        && !s_has(profile, "site_web"))
        s_missing(c, MG_Q_QUI, "un contact : téléphone, courriel ou site web "
                               "(--telephone, --courriels, --site-web)");
    if (!s_has(b, "typologie") && !s_has(profile, "typologie"))
        s_advice(c, MG_Q_QUI, "précisez la typologie (--typologie, ex. ASSO, MUNI, BIB)");
    if (mg_pivot_placeholder(mg_body_str(b, "pivot")))
        s_advice(c, MG_Q_QUI, "indiquez votre SIRET ou RNA (--pivot)");
    /* Que proposez-vous ? */
    if (!s_has(b, "services"))
        s_missing(c, MG_Q_QUOI, "au moins un service (--services)");
    if (!s_has(b, "presentation_resume") && !s_has(b, "presentation_detail"))
        s_advice(c, MG_Q_QUOI, "présentez l'offre en quelques lignes (--presentation-resume)");
    /* Pour qui ? */
    if (!s_has(b, "publics_specifiquement_adresses")
        && !s_has(b, "prise_en_charge_specifique")
        && !s_says_everyone(mg_body_str(b, "presentation_resume"))
        && !s_says_everyone(mg_body_str(b, "presentation_detail")))
        s_missing(c, MG_Q_POUR_QUI,
                  "les publics (--publics-specifiquement-adresses, "
                  "--prise-en-charge-specifique) ou « tout public » dans la présentation");
    /* Où ? */
    if (!s_has(b, "adresse") || !s_has(b, "commune") || !s_has(b, "code_postal"))
        s_missing(c, MG_Q_OU, "l'adresse complète (--adresse, --commune, --code-postal)");
    if (!s_has(b, "latitude") || !s_has(b, "longitude"))
        s_advice(c, MG_Q_OU, "ajoutez latitude et longitude pour figurer sur les cartes");
    /* Quelle durée ? Quelle fréquence ? */
    if (!s_has(b, "duree"))
        s_missing(c, MG_Q_DUREE, "la durée (--duree, ex. « parcours de 5 séances de 2 h »)");
    if (!s_has(b, "frequence"))
        s_missing(c, MG_Q_FREQUENCE, "la fréquence (--frequence, ex. « chaque mardi matin »)");
    if (!s_has(b, "horaires"))
        s_advice(c, MG_Q_FREQUENCE, "ajoutez les horaires (--horaires \"Mo-Fr 09:00-12:00\")");
    /* Quelles modalités ? */
    if (!s_has(b, "modalites_accompagnement"))
        s_missing(c, MG_Q_MODALITES, "l'accompagnement (--modalites-accompagnement)");
    if (!s_has(b, "frais_a_charge"))
        s_missing(c, MG_Q_MODALITES, "les frais (--frais-a-charge)");
    /* Quelle démarche ? */
    if (!s_has(b, "demarche") && !s_has(b, "modalites_acces") && !s_has(b, "prise_rdv"))
        s_missing(c, MG_Q_DEMARCHE, "comment venir ou s'inscrire (--demarche, "
                                    "--modalites-acces ou --prise-rdv)");
    int answered = 0;
    for (int q = 0; q < MG_Q_COUNT; q++)
        answered += c->answered[q];
    c->score = (answered * 100 + MG_Q_COUNT / 2) / MG_Q_COUNT;
    /* Horaires that no one can read. */
    const char *h = mg_body_str(b, "horaires");
    if (h) {
        mg_hours_t hours;
        mg_why_t why;
        mg_why_clear(&why);
        if (mg_hours_parse(h, &hours, &why) != MG_OK) {
            c->hours_unreadable = true;
            snprintf(c->hours_why, sizeof c->hours_why, "%.250s", why.text);
        }
    }
    /* Freshness: the later of date_maj and the signed version. */
    int64_t last = s_date_ms(mg_body_str(b, "date_maj"));
    if (updated_ms > last)
        last = updated_ms;
    c->last_update_ms = last;
    int64_t days = last > 0 && now_ms > last ? (now_ms - last) / 86400000 : 0;
    c->days_since_update = (int) (days > INT32_MAX ? INT32_MAX : days);
    c->stale = days > MG_STALE_DAYS;
}

/* ------------------------------------------------------------------ */
/* Diagnostic helpers                                                   */

const char *mg_service_objective(const char *service)
{
    static const char *const map[][2] = {
        {"Aide aux démarches administratives", "Accès aux droits"},
        {"Maîtrise des outils numériques du quotidien", "Autonomie numérique au quotidien"},
        {"Insertion professionnelle via le numérique", "Insertion professionnelle et emploi"},
        {"Utilisation sécurisée du numérique", "Sécurité et confiance numériques"},
        {"Parentalité et éducation avec le numérique", "Parentalité et éducation"},
        {"Loisirs et créations numériques", "Culture, loisirs et lien social"},
        {"Compréhension du monde numérique", "Citoyenneté et esprit critique"},
        {"Accès internet et matériel informatique", "Équipement et connexion"},
        {"Acquisition de matériel informatique à prix solidaire", "Équipement et connexion"},
        {NULL, NULL}};
    for (size_t i = 0; service && map[i][0]; i++)
        if (strcmp(map[i][0], service) == 0)
            return map[i][1];
    return NULL;
}

const char *mg_typologie_name(const char *code)
{
    /* The codes of data.inclusion's structure typology, which the
       standard's `typologie` uses. Only codes whose meaning is certain. */
    static const char *const map[][2] = {
        {"ACI", "Atelier chantier d'insertion"},
        {"AFPA", "AFPA"},
        {"ASSO", "Association"},
        {"BIB", "Bibliothèque, médiathèque"},
        {"CAF", "Caisse d'allocations familiales"},
        {"CAP_EMPLOI", "Cap emploi"},
        {"CC", "Communauté de communes"},
        {"CCAS", "Centre communal d'action sociale"},
        {"CCONS", "Chambre consulaire"},
        {"CD", "Conseil départemental"},
        {"CHRS", "Centre d'hébergement et de réinsertion sociale"},
        {"CIAS", "Centre intercommunal d'action sociale"},
        {"CPAM", "Caisse primaire d'assurance maladie"},
        {"CS", "Centre social"},
        {"DEPT", "Services du département"},
        {"EPCI", "Intercommunalité"},
        {"MDS", "Maison départementale des solidarités"},
        {"MJC", "Maison des jeunes et de la culture"},
        {"ML", "Mission locale"},
        {"MQ", "Maison de quartier"},
        {"MSA", "Mutualité sociale agricole"},
        {"MUNI", "Mairie, commune"},
        {"PE", "Pôle emploi"},
        {"PIJ_BIJ", "Point ou bureau information jeunesse"},
        {"PIMMS", "Point information médiation multi-services"},
        {"RFS", "France Services"},
        {"TIERS_LIEUX", "Tiers-lieu"},
        {"UDAF", "Union départementale des associations familiales"},
        {NULL, NULL}};
    for (size_t i = 0; code && map[i][0]; i++)
        if (strcmp(map[i][0], code) == 0)
            return map[i][1];
    return NULL;
}
