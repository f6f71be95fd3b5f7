/*  test_analysis.c - the coordinator's analyses (store/mg_analysis.c) and
    their commands (tools/mg_cmd_analysis.c): on the real Charente file
    (188 lieux, 365 rows of communes), on small hand-built cases whose
    answer is known, and end to end through the real binary. */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mg_analysis.h"
#include "mg_import.h"
#include "mg_offer.h"
#include "mg_store.h"
#include "mg_test.h"
#include "mg_testlib.h"

static char s_tmp[256];

/* ------------------------------------------------------------------ */
/* Running the binary (as test_cli.c does)                              */

/* ------------------------------------------------------------------ */
/* Hand-built stores                                                    */

/* One offer of a hand-built case. */
typedef struct {
    int author;            /* identity seed */
    const char *rid;
    const char *nom, *commune, *cp, *adresse;
    double lat, lng;       /* NAN: no coordinates */
    const char *services;  /* "|"-joined */
    const char *publics;   /* "|"-joined, or NULL: everyone */
    const char *horaires;  /* or NULL */
    const char *pivot;     /* or NULL: the placeholder */
    const char *source;    /* or NULL: written by its node */
    const char *telephone; /* or NULL */
} s_spec_t;

static void s_identity(int n, mg_identity_t *id)
{
    uint8_t seed[32] = {0};
    snprintf((char *) seed, sizeof seed, "test-analysis-%d", n);
    mg_identity_from_seed(id, seed);
}

static mg_body_t *s_body(const s_spec_t *s)
{
    mg_body_t *b = mg_body_new();
    mg_body_set_str(b, "id", s->rid);
    mg_body_set_str(b, "pivot", s->pivot ? s->pivot : "00000000000000");
    mg_body_set_str(b, "nom", s->nom);
    mg_body_set_str(b, "commune", s->commune);
    mg_body_set_str(b, "code_postal", s->cp);
    mg_body_set_str(b, "adresse", s->adresse);
    mg_body_set_str(b, "date_maj", "2024-01-15");
    if (!isnan(s->lat)) {
        mg_body_set_num(b, "latitude", s->lat);
        mg_body_set_num(b, "longitude", s->lng);
    }
    mg_body_set_list_split(b, "services", s->services, '|');
    if (s->publics)
        mg_body_set_list_split(b, "publics_specifiquement_adresses", s->publics, '|');
    if (s->horaires)
        mg_body_set_str(b, "horaires", s->horaires);
    if (s->source)
        mg_body_set_str(b, "source", s->source);
    if (s->telephone)
        mg_body_set_str(b, "telephone", s->telephone);
    return b;
}

/* A fresh store holding the offers. */
static mg_store_t *s_store(const char *name, const s_spec_t *specs, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.db", s_tmp, name);
    mg_store_t *st = NULL;
    mg_why_t why;
    mg_why_clear(&why);
    CHECK_RC(mg_store_open(path, &st, &why), MG_OK);
    for (size_t i = 0; st && i < n; i++) {
        mg_identity_t id;
        s_identity(specs[i].author, &id);
        mg_body_t *b = s_body(&specs[i]);
        mg_record_t *rec = NULL;
        uint64_t counter = 0;
        mg_store_max_counter(st, id.pk, &counter);
        int rc = mg_record_sign(&id, "offer", specs[i].rid, counter + 1, 1700000000000, false,
                                b, &rec, &why);
        if (rc != MG_OK)
            fprintf(stderr, "sign %s: %s\n", specs[i].rid, why.text);
        CHECK_RC(rc, MG_OK);
        mg_apply_t outcome;
        if (rec)
            CHECK_RC(mg_store_apply_record(st, rec, &outcome, &why), MG_OK);
        mg_record_destroy(&rec);
        mg_body_destroy(&b);
    }
    return st;
}

static mg_analysis_t *s_load(mg_store_t *st, const mg_communes_t *communes)
{
    mg_analysis_t *an = NULL;
    mg_why_t why;
    mg_why_clear(&why);
    CHECK_RC(mg_analysis_load(st, NULL, communes, NULL, &an, &why), MG_OK);
    return an;
}

/* The index of the offer with this rid, or -1. */
static long s_by_rid(const mg_analysis_t *an, const char *rid)
{
    for (size_t i = 0; i < mg_analysis_count(an); i++)
        if (strcmp(mg_analysis_offer(an, i)->rid, rid) == 0)
            return (long) i;
    return -1;
}

static mg_overlaps_t *s_overlaps(const mg_analysis_t *an, double within_km)
{
    mg_overlaps_t *ov = NULL;
    mg_overlap_opts_t opts = {.within_km = within_km};
    mg_why_t why;
    mg_why_clear(&why);
    CHECK_RC(mg_overlaps_find(an, &opts, &ov, &why), MG_OK);
    return ov;
}

#define S_RUELLE "Ruelle-sur-Touvre", "16600"
static const char *const S_MAITRISE = "Maîtrise des outils numériques du quotidien";
static const char *const S_DEMARCHES = "Aide aux démarches administratives";

/* ------------------------------------------------------------------ */
/* Small pieces                                                         */

static void test_fuzzy(void)
{
    /* fuzzywuzzy's own README examples (python-Levenshtein ratio). */
    CHECK(mg_fuzzy_ratio("this is a test", "this is a test!") == 97);
    CHECK(mg_fuzzy_ratio("fuzzy wuzzy was a bear", "wuzzy fuzzy was a bear") == 91);
    CHECK(mg_fuzzy_ratio("abc", "abc") == 100);
    CHECK(mg_fuzzy_ratio("abc", "xyz") == 0);
    CHECK(mg_fuzzy_ratio("", "abc") == 0);
    /* Code points, not bytes: "é" is one character. */
    CHECK(mg_fuzzy_ratio("été", "ete") == 33);
    char *p = mg_fuzzy_process("  Mairie de SOYAUX - 16800 !");
    CHECK_STR(p, "mairie de soyaux 16800");
    free(p);
    p = mg_fuzzy_process("Angoulême");
    CHECK_STR(p, "angoulême"); /* fuzzball keeps accents */
    free(p);
    char *a = mg_address_normalize("9 boulevard Léon Blum 16800 SOYAUX", "16800", "Soyaux");
    CHECK_STR(a, "9 boulevard leon blum");
    free(a);
    a = mg_address_normalize("235 AV DU GENERAL DE GAULLE", "16800", "Soyaux");
    CHECK_STR(a, "235 avenue du general de gaulle");
    free(a);
    a = mg_address_normalize("3 RTE DU SERGENT SOURBE", "16440", "Roullet");
    CHECK_STR(a, "3 route du sergent sourbe");
    free(a);
    CHECK(mg_pivot_placeholder("00000000000000"));
    CHECK(mg_pivot_placeholder(NULL));
    CHECK(mg_pivot_placeholder(""));
    CHECK(!mg_pivot_placeholder("22160001800016"));
    /* Paris - Lyon, about 392 km. */
    double d = mg_haversine_km(48.8566, 2.3522, 45.7640, 4.8357);
    CHECK(d > 390 && d < 394);
}

static void test_communes_table(void)
{
    mg_communes_t *cs = mg_communes_new();
    mg_why_t why;
    mg_why_clear(&why);
    CHECK_RC(mg_communes_add(cs, "16110", "Courcôme", NULL, "16240", "COM", NULL, true,
                             45.98623, 0.14319, 789, &why), MG_OK);
    /* The same commune again with its second postal code: one commune. */
    CHECK_RC(mg_communes_add(cs, "16110", "Courcôme", NULL, "16700", "COM", NULL, true,
                             45.98623, 0.14319, 789, &why), MG_OK);
    CHECK(mg_communes_count(cs) == 1);
    CHECK(mg_communes_at(cs, 0)->postal_more_count == 1);
    mg_locate_t how;
    CHECK(mg_communes_locate(cs, NULL, "16700", "COURCOME", &how) == 0 && how == MG_LOCATE_NAME);
    CHECK(mg_communes_has_postal(cs, "16700") && !mg_communes_has_postal(cs, "16000"));
    /* Another name under the same code is an error. */
    CHECK_RC(mg_communes_add(cs, "16110", "Autre", NULL, "16700", "COM", NULL, true, 1, 1, 1,
                             &why), MG_ERR_EXISTS);
    CHECK_RC(mg_communes_add(cs, "1611", "Trop court", NULL, "16700", "COM", NULL, true, 1, 1,
                             1, &why), MG_ERR_SCHEMA);
    CHECK_RC(mg_communes_add(cs, "16015", "Angoulême", NULL, "16000", "COM", NULL, true,
                             45.65, 0.16, 41086, &why), MG_OK);
    CHECK_RC(mg_communes_add(cs, "16102", "Cognac", NULL, "16100", "COM", NULL, true,
                             45.69, -0.33, 18448, &why), MG_OK);
    CHECK(mg_communes_locate(cs, "16102", NULL, NULL, &how) == 2 && how == MG_LOCATE_INSEE);
    /* A CEDEX postal code: the name alone, unique in the table. */
    CHECK(mg_communes_locate(cs, NULL, "16024", "ANGOULEME", &how) == 1
          && how == MG_LOCATE_NAME_ONLY);
    CHECK(mg_communes_locate(cs, NULL, "16100", NULL, &how) == 2 && how == MG_LOCATE_POSTAL);
    CHECK(mg_communes_locate(cs, NULL, "99999", "Nulle part", &how) == -1
          && how == MG_LOCATE_NONE);
    mg_communes_destroy(&cs);
    CHECK(cs == NULL);
    mg_communes_destroy(&cs);
}

/* ------------------------------------------------------------------ */
/* Overlaps: hand-built cases where the answer is known                */

static void test_overlaps_cases(void)
{
    const double N = NAN;
    /* Same commune, same service, everyone, hours that meet: one group,
       and the common slot is said. */
    {
        s_spec_t o[] = {
            {1, "a", "Médiathèque", S_RUELLE, "1 rue de la Paix", N, N, S_MAITRISE, NULL,
             "Mo 09:00-12:00", NULL, NULL, NULL},
            {2, "b", "Centre social", S_RUELLE, "5 avenue Jean Jaurès", N, N,
             "Maîtrise des outils numériques du quotidien|Aide aux démarches administratives",
             NULL, "Mo 10:00-11:30; Tu 14:00-16:00", NULL, NULL, NULL},
        };
        mg_store_t *st = s_store("ov1", o, 2);
        mg_analysis_t *an = s_load(st, NULL);
        mg_overlaps_t *ov = s_overlaps(an, 0);
        CHECK(ov && ov->group_count == 1);
        if (ov && ov->group_count == 1) {
            const mg_overlap_group_t *g = &ov->groups[0];
            CHECK(g->offer_count == 2 && g->structures == 2 && g->pair_total == 1);
            CHECK(g->pair_count == 1 && g->pairs[0].hours_known);
            CHECK(g->pairs[0].common_minutes == 90);
            CHECK(g->all_publics);
            CHECK(g->services == (uint64_t) 1 << mg_analysis_label_bit(an, MG_AF_SERVICES,
                                                                       S_MAITRISE));
            mg_hours_t h;
            char buf[128];
            mg_overlap_pair_slots(an, &g->pairs[0], &h);
            mg_hours_format(&h, buf, sizeof buf);
            CHECK_STR(buf, "Mo 10:00-11:30");
            mg_hours_format(&g->slots, buf, sizeof buf);
            CHECK_STR(buf, "Mo 10:00-11:30");
            CHECK(g->pairs[0].distance_km < 0 && g->pairs[0].same_commune);
        }
        mg_overlaps_destroy(&ov);
        CHECK(ov == NULL);
        mg_analysis_destroy(&an);
        mg_store_destroy(&st);
    }
    /* Same commune, disjoint hours: none. */
    {
        s_spec_t o[] = {
            {1, "a", "Médiathèque", S_RUELLE, "1 rue de la Paix", N, N, S_MAITRISE, NULL,
             "Mo 09:00-12:00", NULL, NULL, NULL},
            {2, "b", "Centre social", S_RUELLE, "5 avenue Jean Jaurès", N, N, S_MAITRISE, NULL,
             "Mo 12:00-17:00; Tu 09:00-12:00", NULL, NULL, NULL},
        };
        mg_store_t *st = s_store("ov2", o, 2);
        mg_analysis_t *an = s_load(st, NULL);
        mg_overlaps_t *ov = s_overlaps(an, 0);
        CHECK(ov && ov->group_count == 0 && ov->offers_considered == 2);
        mg_overlaps_destroy(&ov);
        mg_analysis_destroy(&an);
        mg_store_destroy(&st);
    }
    /* Different publics: none. One public and everyone: yes. */
    {
        s_spec_t o[] = {
            {1, "a", "Point jeunes", S_RUELLE, "1 rue de la Paix", N, N, S_MAITRISE,
             "Jeunes", NULL, NULL, NULL, NULL},
            {2, "b", "Club seniors", S_RUELLE, "5 avenue Jean Jaurès", N, N, S_MAITRISE,
             "Seniors", NULL, NULL, NULL, NULL},
        };
        mg_store_t *st = s_store("ov3", o, 2);
        mg_analysis_t *an = s_load(st, NULL);
        mg_overlaps_t *ov = s_overlaps(an, 0);
        CHECK(ov && ov->group_count == 0);
        mg_overlaps_destroy(&ov);
        mg_analysis_destroy(&an);
        mg_store_destroy(&st);
        s_spec_t o2[] = {
            {1, "a", "Club seniors", S_RUELLE, "1 rue de la Paix", N, N, S_MAITRISE,
             "Seniors", NULL, NULL, NULL, NULL},
            {2, "b", "Médiathèque", S_RUELLE, "5 avenue Jean Jaurès", N, N, S_MAITRISE, NULL,
             NULL, NULL, NULL, NULL},
        };
        st = s_store("ov3b", o2, 2);
        an = s_load(st, NULL);
        ov = s_overlaps(an, 0);
        CHECK(ov && ov->group_count == 1);
        if (ov && ov->group_count == 1) {
            CHECK(!ov->groups[0].pairs[0].all_publics);
            CHECK(ov->groups[0].publics
                  == (uint64_t) 1 << mg_analysis_label_bit(an, MG_AF_PUBLICS, "Seniors"));
            CHECK(!ov->groups[0].pairs[0].hours_known); /* unknown: not a condition */
        }
        mg_overlaps_destroy(&ov);
        mg_analysis_destroy(&an);
        mg_store_destroy(&st);
    }
    /* No common service; one node's own two offers: none. */
    {
        s_spec_t o[] = {
            {1, "a", "Médiathèque", S_RUELLE, "1 rue de la Paix", N, N, S_MAITRISE, NULL,
             NULL, NULL, NULL, NULL},
            {2, "b", "France services", S_RUELLE, "5 avenue Jean Jaurès", N, N, S_DEMARCHES,
             NULL, NULL, NULL, NULL, NULL},
            {1, "c", "Médiathèque, atelier", S_RUELLE, "1 rue de la Paix", N, N, S_MAITRISE,
             NULL, NULL, NULL, NULL, NULL},
        };
        mg_store_t *st = s_store("ov4", o, 3);
        mg_analysis_t *an = s_load(st, NULL);
        mg_overlaps_t *ov = s_overlaps(an, 0);
        CHECK(ov && ov->group_count == 0);
        mg_overlaps_destroy(&ov);
        mg_analysis_destroy(&an);
        mg_store_destroy(&st);
    }
    /* A coordinator's imports (one author, several lieux with a source)
       are several structures: they can juxtapose. */
    {
        s_spec_t o[] = {
            {1, "a", "Médiathèque", S_RUELLE, "1 rue de la Paix", N, N, S_MAITRISE, NULL,
             NULL, NULL, "dora", NULL},
            {1, "b", "Centre social", S_RUELLE, "5 avenue Jean Jaurès", N, N, S_MAITRISE,
             NULL, NULL, NULL, "dora", NULL},
        };
        mg_store_t *st = s_store("ov5", o, 2);
        mg_analysis_t *an = s_load(st, NULL);
        CHECK(mg_analysis_structure_count(an) == 2);
        mg_overlaps_t *ov = s_overlaps(an, 0);
        CHECK(ov && ov->group_count == 1);
        mg_overlaps_destroy(&ov);
        mg_analysis_destroy(&an);
        mg_store_destroy(&st);
    }
    /* --within: two communes 3.3 km apart juxtapose within 5 km, not
       within 2 km, and not by default (different communes). */
    {
        s_spec_t o[] = {
            {1, "a", "Médiathèque", "Ruelle-sur-Touvre", "16600", "1 rue de la Paix", 45.6800,
             0.2300, S_MAITRISE, NULL, NULL, NULL, NULL, NULL},
            {2, "b", "Centre social", "Gond-Pontouvre", "16160", "5 rue Victor Hugo", 45.6800,
             0.1875, S_MAITRISE, NULL, NULL, NULL, NULL, NULL},
        };
        mg_store_t *st = s_store("ov6", o, 2);
        mg_analysis_t *an = s_load(st, NULL);
        mg_overlaps_t *ov = s_overlaps(an, 5);
        CHECK(ov && ov->group_count == 1);
        if (ov && ov->group_count == 1) {
            double d = ov->groups[0].pairs[0].distance_km;
            CHECK(d > 3.2 && d < 3.4);
            CHECK(!ov->groups[0].pairs[0].same_commune);
        }
        mg_overlaps_destroy(&ov);
        ov = s_overlaps(an, 2);
        CHECK(ov && ov->group_count == 0);
        mg_overlaps_destroy(&ov);
        ov = s_overlaps(an, 0);
        CHECK(ov && ov->group_count == 0);
        mg_overlaps_destroy(&ov);
        mg_analysis_destroy(&an);
        mg_store_destroy(&st);
    }
    /* Unreadable horaires: reported and ignored (hours unknown). The same
       place listed twice (same SIRET, same address) is a duplicate, not
       a juxtaposition. */
    {
        s_spec_t o[] = {
            {1, "a", "Médiathèque", S_RUELLE, "1 rue de la Paix", 45.68, 0.23, S_MAITRISE,
             NULL, "Lu-Ve 9h-12h", "21160291300017", NULL, NULL},
            {2, "b", "Médiathèque de Ruelle", S_RUELLE, "1 rue de la Paix", 45.68, 0.23,
             S_MAITRISE, NULL, "Mo 09:00-12:00", NULL, "dora", NULL},
            {3, "c", "Centre social", S_RUELLE, "5 avenue Jean Jaurès", 45.681, 0.231,
             S_MAITRISE, NULL, "Mo 10:00-12:00", NULL, NULL, NULL},
        };
        mg_store_t *st = s_store("ov7", o, 3);
        mg_analysis_t *an = s_load(st, NULL);
        long a = s_by_rid(an, "a");
        CHECK(a >= 0 && mg_analysis_offer(an, (size_t) a)->hours_state == MG_HOURS_UNREADABLE);
        CHECK(a >= 0 && strstr(mg_analysis_offer(an, (size_t) a)->hours_why, "mot inconnu"));
        mg_overlaps_t *ov = s_overlaps(an, 0);
        CHECK(ov && ov->group_count == 1 && ov->duplicate_pairs == 1);
        if (ov && ov->group_count == 1) {
            /* a-c (hours unknown) and b-c (Mo 10-12); a-b left out. */
            CHECK(ov->groups[0].offer_count == 3 && ov->groups[0].pair_total == 2);
            CHECK(ov->groups[0].structures == 2);
            for (size_t k = 0; k < ov->groups[0].pair_count; k++) {
                const mg_overlap_pair_t *p = &ov->groups[0].pairs[k];
                CHECK(p->a == (uint32_t) s_by_rid(an, "c") || p->b == (uint32_t) s_by_rid(an, "c"));
            }
        }
        mg_overlaps_destroy(&ov);
        mg_analysis_destroy(&an);
        mg_store_destroy(&st);
    }
}

/* ------------------------------------------------------------------ */
/* Duplicates                                                           */

static void test_duplicates_cases(void)
{
    const double N = NAN;
    /* The national rule's flaw: a missing coordinate counts as distance
       0, so similar names and addresses (85 and 85) are enough. Ours
       needs 90 and 90 without coordinates. */
    s_spec_t o[] = {
        {1, "a", "Espace numérique de Ruelle", S_RUELLE, "12 rue de la Gare", 45.68, 0.23,
         S_MAITRISE, NULL, NULL, NULL, "source-a", NULL},
        {2, "b", "Espace numérique Ruelle Touvre", S_RUELLE, "12 rue de la Gare haute", N,
         N, S_MAITRISE, NULL, NULL, NULL, "source-b", NULL},
        /* Placeholder SIRET on both, different names and places. */
        {3, "c", "Mairie de Ruelle", S_RUELLE, "Place Auguste Briand", 45.6790, 0.2320,
         S_DEMARCHES, NULL, NULL, "00000000000000", "source-a", NULL},
        {4, "d", "Club informatique", S_RUELLE, "40 route de Montbron", 45.6900, 0.2500,
         S_MAITRISE, NULL, NULL, "00000000000000", "source-b", NULL},
        /* Same phone, same spot: duplicate by contact. */
        {5, "e", "PIJ Ruelle", S_RUELLE, "3 rue des Écoles", 45.6850, 0.2400, S_MAITRISE,
         NULL, NULL, NULL, "source-a", "+33545000001"},
        {6, "f", "Point information jeunesse", S_RUELLE, "3 rue des Ecoles", 45.6850, 0.2401,
         S_MAITRISE, NULL, NULL, NULL, "source-b", "+33545000001"},
    };
    mg_store_t *st = s_store("dup1", o, 6);
    mg_analysis_t *an = s_load(st, NULL);
    mg_duplicates_t *d = NULL;
    mg_why_t why;
    mg_why_clear(&why);
    CHECK_RC(mg_duplicates_find(an, NULL, &d, &why), MG_OK);
    long a = s_by_rid(an, "a"), b = s_by_rid(an, "b"), e = s_by_rid(an, "e"),
         f = s_by_rid(an, "f");
    bool ab = false, ef = false, cd = false;
    for (size_t g = 0; d && g < d->group_count; g++)
        for (size_t k = 0; k < d->groups[g].pair_count; k++) {
            const mg_dup_pair_t *p = &d->groups[g].pairs[k];
            uint32_t lo = p->a, hi = p->b;
            if ((lo == (uint32_t) a && hi == (uint32_t) b) || (lo == (uint32_t) b && hi == (uint32_t) a))
                ab = true;
            if ((lo == (uint32_t) e && hi == (uint32_t) f) || (lo == (uint32_t) f && hi == (uint32_t) e)) {
                ef = true;
                CHECK(p->rule == MG_DUP_RULE_CONTACT && (p->evidence & MG_DUP_PHONE));
            }
            if (strcmp(mg_analysis_offer(an, lo)->rid, "c") == 0
                || strcmp(mg_analysis_offer(an, hi)->rid, "c") == 0)
                cd = true;
        }
    CHECK(!ab); /* a missing coordinate is never a match */
    CHECK(ef);
    CHECK(!cd); /* placeholder SIRETs say nothing */
    mg_dup_pair_t judged;
    CHECK(!mg_duplicates_judge(an, NULL, (uint32_t) a, (uint32_t) b, &judged));
    CHECK(judged.evidence & MG_DUP_NO_COORDS);
    CHECK(judged.name_ratio >= 80 && judged.address_ratio >= 80);
    CHECK(judged.name_ratio < 90 || judged.address_ratio < 90);
    /* The national rule keeps it. */
    mg_national_pair_t *np = NULL;
    size_t nn = 0;
    CHECK_RC(mg_duplicates_national(an, &np, &nn, &why), MG_OK);
    bool national_ab = false;
    for (size_t k = 0; k < nn; k++)
        if ((np[k].a == (uint32_t) a && np[k].b == (uint32_t) b)
            || (np[k].a == (uint32_t) b && np[k].b == (uint32_t) a)) {
            national_ab = true;
            CHECK(np[k].distance == 100 && np[k].score > 83);
        }
    CHECK(national_ab);
    free(np);
    mg_duplicates_destroy(&d);
    mg_analysis_destroy(&an);
    mg_store_destroy(&st);
}

/* ------------------------------------------------------------------ */
/* The real Charente file                                               */

typedef struct {
    double lat[512], lng[512];
    char services[512][9][64];
    size_t nsvc[512];
    size_t n;
} s_lieux_t;

static int s_collect_lieu(const mg_record_t *rec, void *arg)
{
    s_lieux_t *l = arg;
    const mg_body_t *b = mg_record_body(rec);
    if (l->n >= 512)
        return 0;
    double lat, lng;
    if (mg_body_num(b, "latitude", &lat) != 0 || mg_body_num(b, "longitude", &lng) != 0)
        return 0;
    l->lat[l->n] = lat;
    l->lng[l->n] = lng;
    const char *const *items;
    size_t n = mg_body_list(b, "services", &items);
    for (size_t i = 0; i < n && i < 9; i++)
        snprintf(l->services[l->n][i], 64, "%s", items[i]);
    l->nsvc[l->n] = n < 9 ? n : 9;
    l->n++;
    return 0;
}

/* The test's own great-circle distance, written out independently. */
static double s_km(double lat1, double lng1, double lat2, double lng2)
{
    const double r = 6371.0088, rad = M_PI / 180;
    double a = sin((lat2 - lat1) * rad / 2), b = sin((lng2 - lng1) * rad / 2);
    double h = a * a + cos(lat1 * rad) * cos(lat2 * rad) * b * b;
    return 2 * r * asin(sqrt(h));
}

/* One commune of charente.csv, read with a plain split (the file has
   no quoted cells: checked below). */
typedef struct {
    char insee[8], nom[96];
    double lat, lng;
    long population;
} s_commune_row_t;

static size_t s_read_communes(s_commune_row_t *rows, size_t max, size_t *raw_rows,
                              long *raw_population)
{
    FILE *f = fopen(MG_TEST_DATA "/charente.csv", "r");
    CHECK(f != NULL);
    if (!f)
        return 0;
    char line[1024];
    size_t n = 0;
    *raw_rows = 0;
    *raw_population = 0;
    CHECK(fgets(line, sizeof line, f) != NULL); /* header */
    while (fgets(line, sizeof line, f)) {
        CHECK(strchr(line, '"') == NULL);
        char *cells[32];
        size_t nc = 0;
        for (char *p = line; nc < 32;) {
            cells[nc++] = p;
            char *comma = strchr(p, ',');
            if (!comma)
                break;
            *comma = '\0';
            p = comma + 1;
        }
        if (nc < 12)
            continue;
        (*raw_rows)++;
        *raw_population += atol(cells[11]);
        bool seen = false;
        for (size_t i = 0; i < n; i++)
            if (strcmp(rows[i].insee, cells[0]) == 0)
                seen = true;
        if (seen || n == max)
            continue;
        snprintf(rows[n].insee, sizeof rows[n].insee, "%s", cells[0]);
        snprintf(rows[n].nom, sizeof rows[n].nom, "%s", cells[3]);
        rows[n].lat = atof(cells[8]);
        rows[n].lng = atof(cells[9]);
        rows[n].population = atol(cells[11]);
        n++;
    }
    fclose(f);
    return n;
}

static const json_t *s_analysis(const json_t *gaps, const char *label)
{
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(gaps, "analyses"), i, a)
        if (strcmp(json_string_value(json_object_get(a, "libelle")), label) == 0)
            return a;
    return NULL;
}

static const json_t *s_row(const json_t *analysis, const char *insee)
{
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(analysis, "sans_offre"), i, r)
        if (strcmp(json_string_value(json_object_get(r, "code_insee")), insee) == 0)
            return r;
    return NULL;
}

static void test_charente(const char *dir, mg_store_t *st)
{
    /* Duplicates: the two DEPARTEMENT DE LA CHARENTE records at 31
       Boulevard Emile Roux are one group; placeholder SIRETs never group
       two lieux by themselves. */
    mg_analysis_t *an = s_load(st, NULL);
    CHECK(mg_analysis_count(an) == 188);
    mg_duplicates_t *d = NULL;
    mg_why_t why;
    mg_why_clear(&why);
    CHECK_RC(mg_duplicates_find(an, NULL, &d, &why), MG_OK);
    long dep[2] = {-1, -1};
    size_t ndep = 0, placeholders = 0;
    for (size_t i = 0; i < mg_analysis_count(an); i++) {
        const mg_aoffer_t *o = mg_analysis_offer(an, i);
        if (strcmp(o->nom, "DEPARTEMENT DE LA CHARENTE") == 0 && o->adresse
            && strcmp(o->adresse, "31 Boulevard Emile Roux") == 0 && ndep < 2)
            dep[ndep++] = (long) i;
        placeholders += o->placeholder_pivot;
    }
    CHECK(ndep == 2);
    CHECK(placeholders == 67);
    bool together = false;
    for (size_t g = 0; d && g < d->group_count; g++) {
        bool has0 = false, has1 = false;
        for (size_t k = 0; k < d->groups[g].offer_count; k++) {
            has0 = has0 || d->groups[g].offers[k] == (uint32_t) dep[0];
            has1 = has1 || d->groups[g].offers[k] == (uint32_t) dep[1];
        }
        if (has0 && has1) {
            together = true;
            /* Just the two of them: the département's other site, in
               Confolens with the same SIRET, is another place. */
            CHECK(d->groups[g].offer_count == 2);
            CHECK(d->groups[g].pairs[0].rule == MG_DUP_RULE_PIVOT);
            CHECK(d->groups[g].pairs[0].evidence & MG_DUP_SAME_SOURCE);
        }
        for (size_t k = 0; k < d->groups[g].pair_count; k++) {
            const mg_dup_pair_t *p = &d->groups[g].pairs[k];
            const mg_aoffer_t *x = mg_analysis_offer(an, p->a), *y = mg_analysis_offer(an, p->b);
            if (x->placeholder_pivot || y->placeholder_pivot) {
                CHECK(!(p->evidence & MG_DUP_PIVOT));
                CHECK(p->rule != MG_DUP_RULE_PIVOT);
            }
        }
    }
    CHECK(together);
    /* The same SIRET at other addresses is not a duplicate: the four
       sites of the Chambre d'agriculture are four places. */
    for (size_t g = 0; d && g < d->group_count; g++)
        for (size_t k = 0; k < d->groups[g].offer_count; k++)
            CHECK(strstr(mg_analysis_offer(an, d->groups[g].offers[k])->nom,
                         "Bureau décentralisé") == NULL);
    mg_duplicates_destroy(&d);

    /* Overlaps on the imported file find juxtapositions. */
    mg_overlaps_t *ov = s_overlaps(an, 0);
    CHECK(ov && ov->group_count > 5 && ov->offers_considered == 188);
    for (size_t g = 0; ov && g < ov->group_count; g++) {
        CHECK(ov->groups[g].structures >= 2);
        if (g)
            CHECK(ov->groups[g].score <= ov->groups[g - 1].score);
    }
    mg_overlaps_destroy(&ov);
    /* Every horaires of the file reads. */
    for (size_t i = 0; i < mg_analysis_count(an); i++)
        CHECK(mg_analysis_offer(an, i)->hours_state != MG_HOURS_UNREADABLE);
    mg_analysis_destroy(&an);

    /* Gaps, end to end: the CLI's figures against the test's own
       computation over every commune (brute force, its own CSV reading
       and distance), then a few communes checked by hand. */
    static s_commune_row_t rows[400];
    size_t raw_rows = 0;
    long raw_population = 0;
    size_t nrows = s_read_communes(rows, 400, &raw_rows, &raw_population);
    CHECK(raw_rows == 365 && nrows == 362);
    static s_lieux_t lieux;
    memset(&lieux, 0, sizeof lieux);
    CHECK_RC(mg_store_offers(st, NULL, s_collect_lieu, &lieux, NULL), MG_OK);
    CHECK(lieux.n == 188);
    int code = -1;
    json_t *gaps = mg_test_cli_json(dir, &code, "gaps --communes '%s/charente.csv' --json",
                              MG_TEST_DATA);
    CHECK(code == 0 && gaps);
    long total = 0;
    for (size_t c = 0; c < nrows; c++)
        total += rows[c].population;
    CHECK(total == 350867);
    /* Communes listed once per postal code count once. */
    CHECK(raw_population == 353154);
    CHECK(json_integer_value(json_object_get(gaps, "population")) == total);
    CHECK(json_integer_value(json_object_get(gaps, "lieux_evalues")) == 362);
    const mg_field_t *svc = mg_offer_field("services");
    for (size_t s = 0; svc->values[s]; s++) {
        long covered = 0;
        size_t uncovered = 0;
        for (size_t c = 0; c < nrows; c++) {
            bool near = false;
            for (size_t o = 0; o < lieux.n && !near; o++)
                for (size_t k = 0; k < lieux.nsvc[o] && !near; k++)
                    if (strcmp(lieux.services[o][k], svc->values[s]) == 0
                        && s_km(rows[c].lat, rows[c].lng, lieux.lat[o], lieux.lng[o]) <= 10.0)
                        near = true;
            if (near)
                covered += rows[c].population;
            else
                uncovered++;
        }
        const json_t *a = s_analysis(gaps, svc->values[s]);
        CHECK(a != NULL);
        if (!a)
            continue;
        json_int_t cli = json_integer_value(json_object_get(a, "population_a_portee"));
        if (cli != covered)
            fprintf(stderr, "%s: CLI %lld, test %ld\n", svc->values[s], (long long) cli, covered);
        CHECK(cli == covered);
        CHECK(json_array_size(json_object_get(a, "sans_offre")) == uncovered);
    }
    /* By hand (distances from the commune's centre in charente.csv to the
       nearest lieu offering the service, checked on a map):
       - Brigueuil (16064, 1 106 inhabitants): nearest "Aide aux démarches
         administratives" 14.7 km away (Chabanais) -> without access;
       - Saint-Séverin (16350, 803): 10.9 km -> without access;
       - Montbron (16223, 1 997): 8.1 km -> within reach, but 13.1 km from
         any "Insertion professionnelle via le numérique" -> without;
       - Angoulême (16015, 41 086): 1.0 km -> within reach;
       - Courcôme (16110, 789, listed twice in the table): 5.7 km. */
    const json_t *dem = s_analysis(gaps, S_DEMARCHES);
    const json_t *ins = s_analysis(gaps, "Insertion professionnelle via le numérique");
    const json_t *r = s_row(dem, "16064");
    CHECK(r && json_integer_value(json_object_get(r, "population")) == 1106);
    CHECK(r && fabs(json_real_value(json_object_get(r, "offre_la_plus_proche_km")) - 14.67) < 0.05);
    r = s_row(dem, "16350");
    CHECK(r && json_integer_value(json_object_get(r, "population")) == 803);
    CHECK(s_row(dem, "16223") == NULL && s_row(ins, "16223") != NULL);
    CHECK(s_row(dem, "16015") == NULL && s_row(dem, "16110") == NULL);
    CHECK(json_integer_value(json_object_get(dem, "population_a_portee")) == 340972);
    CHECK(json_integer_value(json_object_get(ins, "population_a_portee")) == 312891);
    /* Ranked by population without access. */
    json_t *rows_dem = json_object_get(dem, "sans_offre");
    for (size_t i = 1; i < json_array_size(rows_dem); i++)
        CHECK(json_integer_value(json_object_get(json_array_get(rows_dem, i), "population"))
              <= json_integer_value(json_object_get(json_array_get(rows_dem, i - 1), "population")));
    json_decref(gaps);

    /* GeoJSON: points of the uncovered communes. */
    json_t *geo = mg_test_cli_json(dir, &code, "gaps --communes '%s/charente.csv' --service '%s' "
                             "--geojson", MG_TEST_DATA, S_DEMARCHES);
    CHECK(code == 0 && geo);
    CHECK_STR(json_string_value(json_object_get(geo, "type")), "FeatureCollection");
    CHECK(json_array_size(json_object_get(geo, "features")) == 33);
    json_t *f0 = json_array_get(json_object_get(geo, "features"), 0);
    CHECK_STR(json_string_value(json_object_get(json_object_get(f0, "geometry"), "type")), "Point");
    json_decref(geo);
}

/* Delegated communes: counted once, by their own population. */
static void test_gaps_comd(void)
{
    char csv[512];
    snprintf(csv, sizeof csv, "%s/comd.csv", s_tmp);
    FILE *f = fopen(csv, "w");
    CHECK(f != NULL);
    if (!f)
        return;
    /* A commune nouvelle of 3 000 (1 000 in its chef-lieu, 2 000 in a
       former commune 8 km east), and a plain commune of 500. */
    fputs("insee_com,commune,code_postal,commune_type,insee_parente,lat,lng,population_2021\n"
          "16999,Grande-Commune,16600,COM,,45.6800,0.2300,3000\n"
          "16999,Chef-Lieu,16600,COMD,16999,45.6800,0.2300,1000\n"
          "16998,Ancienne,16600,COMD,16999,45.6800,0.3325,2000\n"
          "16997,Petite,16610,COM,,45.9000,0.2300,500\n", f);
    fclose(f);
    const double N = NAN;
    s_spec_t o[] = {
        /* At the chef-lieu; the former commune is 8 km away. */
        {1, "a", "Médiathèque", "Grande-Commune", "16600", "1 rue de la Paix", 45.6800, 0.2300,
         S_MAITRISE, NULL, NULL, NULL, NULL, NULL},
        /* No coordinates: placed at the centre of "Petite". */
        {2, "b", "Mairie", "PETITE", "16610", "Le bourg", N, N, S_DEMARCHES, NULL, NULL, NULL,
         NULL, NULL},
    };
    mg_store_t *st = s_store("comd", o, 2);
    mg_communes_t *cs = mg_communes_new();
    mg_why_t why;
    mg_why_clear(&why);
    CHECK_RC(mg_communes_add(cs, "16999", "Grande-Commune", NULL, "16600", "COM", NULL, true,
                             45.68, 0.23, 3000, &why), MG_OK);
    CHECK_RC(mg_communes_add(cs, "16999", "Chef-Lieu", NULL, "16600", "COMD", "16999", true,
                             45.68, 0.23, 1000, &why), MG_OK);
    CHECK_RC(mg_communes_add(cs, "16998", "Ancienne", NULL, "16600", "COMD", "16999", true,
                             45.68, 0.3325, 2000, &why), MG_OK);
    CHECK_RC(mg_communes_add(cs, "16997", "Petite", NULL, "16610", "COM", NULL, true, 45.90,
                             0.23, 500, &why), MG_OK);
    mg_analysis_t *an = s_load(st, cs);
    long b = s_by_rid(an, "b");
    CHECK(b >= 0 && mg_analysis_offer(an, (size_t) b)->loc == MG_LOC_CENTRE);
    CHECK(b >= 0 && strcmp(mg_analysis_offer(an, (size_t) b)->insee, "16997") == 0);
    mg_gaps_t *g = NULL;
    mg_gaps_opts_t opts = {.within_km = 5};
    CHECK_RC(mg_gaps_find(an, &opts, &g, &why), MG_OK);
    CHECK(g && g->population == 3500);    /* not 6 500 */
    CHECK(g && g->units == 3);            /* chef-lieu part, former commune, Petite */
    CHECK(g && g->offers_centre == 1 && g->offers_coords == 1);
    for (size_t k = 0; g && k < g->count; k++) {
        if (g->items[k].kind != MG_GAP_SERVICE)
            continue;
        if (strcmp(g->items[k].label, S_MAITRISE) == 0) {
            /* Chef-lieu within reach; "Ancienne" (8 km) and Petite not. */
            CHECK(g->items[k].covered == 1000);
            CHECK(g->items[k].row_count == 2);
            CHECK(g->items[k].rows[0].population == 2000);
            CHECK(strcmp(mg_communes_at(cs, g->items[k].rows[0].commune)->nom, "Ancienne") == 0);
        }
        if (strcmp(g->items[k].label, S_DEMARCHES) == 0)
            CHECK(g->items[k].covered == 500);
    }
    mg_gaps_destroy(&g);
    mg_analysis_destroy(&an);
    mg_communes_destroy(&cs);
    mg_store_destroy(&st);

    /* The same through the CLI and its CSV reader (libcsv). */
    char dir[512];
    snprintf(dir, sizeof dir, "%s/comd-node", s_tmp);
    char *out;
    CHECK(mg_test_cli(dir, &out, "init --name 'Coordination'") == 0);
    free(out);
    CHECK(mg_test_cli(dir, &out, "offer add --id a --pivot 00000000000000 --nom Médiathèque "
                "--commune Grande-Commune --code-postal 16600 --adresse '1 rue de la Paix' "
                "--latitude 45.68 --longitude 0.23 --date-maj 2024-01-15 "
                "--services 'Maîtrise des outils numériques du quotidien'") == 0);
    free(out);
    CHECK(mg_test_cli(dir, &out, "offer add --id b --pivot 00000000000000 --nom Mairie "
                "--commune PETITE --code-postal 16610 --adresse 'Le bourg' "
                "--date-maj 2024-01-15 --services 'Aide aux démarches administratives'") == 0);
    free(out);
    int code;
    json_t *j = mg_test_cli_json(dir, &code, "gaps --communes '%s' --within 5 --json", csv);
    CHECK(code == 0 && j);
    CHECK(json_integer_value(json_object_get(j, "population")) == 3500);
    CHECK(json_integer_value(json_object_get(json_object_get(j, "offres"),
                                             "au_centre_de_leur_commune")) == 1);
    const json_t *m = s_analysis(j, S_MAITRISE);
    CHECK(m && json_integer_value(json_object_get(m, "population_a_portee")) == 1000);
    CHECK(m && s_row(m, "16998") != NULL && s_row(m, "16997") != NULL);
    json_decref(j);
    /* A table with an unreadable number is refused with its line. */
    char bad[512];
    snprintf(bad, sizeof bad, "%s/bad.csv", s_tmp);
    f = fopen(bad, "w");
    if (f) {
        fputs("insee_com,commune,lat,lng,population_2021\n16001,Abzac,46,0.7,510\n"
              "16002,Adjots,46,0.2,5 29\n", f);
        fclose(f);
    }
    CHECK(mg_test_cli(dir, &out, "gaps --communes '%s'", bad) == 1);
    CHECK(strstr(out, "ligne 3") != NULL);
    free(out);
}

/* ------------------------------------------------------------------ */
/* Complementarities                                                    */

static void test_complements(void)
{
    s_spec_t o[] = {
        {1, "ours", "Médiathèque", S_RUELLE, "1 rue de la Paix", 45.68, 0.23, S_MAITRISE,
         NULL, NULL, NULL, NULL, NULL},
        {2, "partner", "Mission locale", "Angoulême", "16000", "2 rue du Port", 45.65, 0.16,
         "Insertion professionnelle via le numérique|Maîtrise des outils numériques du quotidien",
         "Jeunes", NULL, NULL, NULL, NULL},
        {3, "peer", "Centre social", "Gond-Pontouvre", "16160", "5 rue Victor Hugo", 45.69,
         0.19, S_MAITRISE, NULL, NULL, NULL, NULL, NULL},
        {4, "far", "Tiers-lieu", "Confolens", "16500", "1 place", 46.01, 0.67,
         "Loisirs et créations numériques", NULL, NULL, NULL, NULL, NULL},
    };
    mg_store_t *st = s_store("comp", o, 4);
    mg_analysis_t *an = s_load(st, NULL);
    uint32_t ours = (uint32_t) s_by_rid(an, "ours");
    mg_complements_t *c = NULL;
    mg_why_t why;
    mg_why_clear(&why);
    CHECK_RC(mg_complements_find(an, &ours, 1, 15, &c, &why), MG_OK);
    CHECK(c && c->partner_count == 1 && c->peer_count == 2);
    if (c && c->partner_count == 1) {
        const mg_partner_t *p = &c->partners[0];
        CHECK(p->offer == (uint32_t) s_by_rid(an, "partner"));
        CHECK(p->services_new
              == (uint64_t) 1 << mg_analysis_label_bit(an, MG_AF_SERVICES,
                                                       "Insertion professionnelle via le numérique"));
        CHECK(p->publics_new == (uint64_t) 1 << mg_analysis_label_bit(an, MG_AF_PUBLICS, "Jeunes"));
        CHECK(p->distance_km > 5 && p->distance_km < 7);
    }
    if (c && c->peer_count == 2)
        CHECK(c->peers[0].offer == (uint32_t) s_by_rid(an, "peer")); /* nearest first */
    mg_complements_destroy(&c);
    mg_analysis_destroy(&an);
    mg_store_destroy(&st);
}

/* ------------------------------------------------------------------ */
/* Check                                                                */

static void test_check_offer(void)
{
    mg_body_t *b = mg_body_new();
    mg_body_set_str(b, "nom", "Atelier seniors");
    mg_body_set_str(b, "pivot", "21160291300017");
    mg_body_set_str(b, "adresse", "1 place de la Mairie");
    mg_body_set_str(b, "commune", "Ruelle-sur-Touvre");
    mg_body_set_str(b, "code_postal", "16600");
    mg_body_set_num(b, "latitude", 45.68);
    mg_body_set_num(b, "longitude", 0.23);
    mg_body_set_str(b, "telephone", "+33545000000");
    mg_body_set_list_split(b, "typologie", "BIB", '|');
    mg_body_set_list_split(b, "services", S_MAITRISE, '|');
    mg_body_set_list_split(b, "publics_specifiquement_adresses", "Seniors", '|');
    mg_body_set_list_split(b, "modalites_accompagnement", "Dans un atelier collectif", '|');
    mg_body_set_list_split(b, "frais_a_charge", "Gratuit", '|');
    mg_body_set_list_split(b, "modalites_acces", "Téléphoner", '|');
    mg_body_set_str(b, "presentation_resume", "Des ateliers pour les seniors.");
    mg_body_set_str(b, "horaires", "Tu 14:00-16:00");
    mg_body_set_str(b, "date_maj", "2024-01-15");
    int64_t jan15 = 1705320000000; /* 2024-01-15 12:00 UTC */
    mg_check_t c;
    /* Missing duration and frequency: two questions, 75 %. */
    mg_check_offer(b, NULL, jan15, jan15 + 10 * 86400000ll, &c);
    CHECK(!c.answered[MG_Q_DUREE] && !c.answered[MG_Q_FREQUENCE]);
    CHECK(strstr(c.missing[MG_Q_DUREE], "--duree") != NULL);
    CHECK(strstr(c.missing[MG_Q_FREQUENCE], "--frequence") != NULL);
    for (int q = 0; q < MG_Q_COUNT; q++)
        if (q != MG_Q_DUREE && q != MG_Q_FREQUENCE) {
            if (!c.answered[q])
                fprintf(stderr, "unexpected: %s %s\n", mg_question_text(q), c.missing[q]);
            CHECK(c.answered[q]);
        }
    CHECK(c.score == 75);
    CHECK(!c.stale && c.days_since_update == 10);
    /* Complete. */
    mg_body_set_str(b, "duree", "parcours de 5 séances de 2 h");
    mg_body_set_str(b, "frequence", "chaque mardi après-midi");
    mg_check_offer(b, NULL, jan15, jan15, &c);
    CHECK(c.score == 100 && !c.hours_unreadable);
    /* Not updated for more than 6 months. */
    mg_check_offer(b, NULL, jan15, jan15 + 200 * 86400000ll, &c);
    CHECK(c.stale && c.days_since_update == 200);
    /* A newer signed version counts as an update. */
    mg_check_offer(b, NULL, jan15 + 150 * 86400000ll, jan15 + 200 * 86400000ll, &c);
    CHECK(!c.stale);
    /* "Qui ?" answered by the profile's contact; "Pour qui ?" by a
       presentation that says it is for everyone. */
    mg_body_remove(b, "telephone");
    mg_body_remove(b, "publics_specifiquement_adresses");
    mg_body_set_str(b, "presentation_resume", "Ouvert à tous, sans rendez-vous.");
    mg_check_offer(b, NULL, jan15, jan15, &c);
    CHECK(!c.answered[MG_Q_QUI] && c.answered[MG_Q_POUR_QUI]);
    mg_body_t *profile = mg_body_new();
    mg_body_set_list_split(profile, "courriels", "contact@example.org", '|');
    mg_check_offer(b, profile, jan15, jan15, &c);
    CHECK(c.answered[MG_Q_QUI]);
    /* Unreadable horaires are reported. */
    mg_body_set_str(b, "horaires", "le mardi");
    mg_check_offer(b, profile, jan15, jan15, &c);
    CHECK(c.hours_unreadable && c.hours_why[0]);
    mg_body_destroy(&profile);
    mg_body_destroy(&b);
    CHECK_STR(mg_question_text(MG_Q_POUR_QUI), "Pour qui ?");
}

/* ------------------------------------------------------------------ */
/* End to end                                                           */

static bool s_lines_fit(const char *text, int width)
{
    int col = 0;
    for (const unsigned char *p = (const unsigned char *) text; *p; p++) {
        if (*p == '\n') {
            col = 0;
            continue;
        }
        if ((*p & 0xC0) != 0x80)
            col++;
        if (col > width)
            return false;
    }
    return true;
}

static void test_cli(const char *dir)
{
    const char *cmds[] = {"overlaps", "duplicates", "gaps", "complementarities",
                          "diagnostic", "check", NULL};
    for (int i = 0; cmds[i]; i++) {
        char *out;
        CHECK(mg_test_cli(dir, &out, "%s --help", cmds[i]) == 0);
        CHECK(strstr(out, "Usage") != NULL);
        free(out);
        CHECK(mg_test_cli(dir, &out, "%s --frobnicate", cmds[i]) == 2);
        CHECK(strstr(out, "option inconnue") != NULL);
        free(out);
    }
    char *out;
    CHECK(mg_test_cli(dir, &out, "gaps") == 2);
    CHECK(strstr(out, "--communes") != NULL);
    free(out);
    CHECK(mg_test_cli(dir, &out, "overlaps --service 'pas un service'") == 2);
    CHECK(strstr(out, "Valeurs possibles") != NULL);
    free(out);
    CHECK(mg_test_cli(dir, &out, "gaps --communes /nonexistent.csv") == 1);
    free(out);

    /* Human outputs fit 80 columns. */
    const char *human[] = {"overlaps", "duplicates --national", "diagnostic --communes '"
                           MG_TEST_DATA "/charente.csv'", "gaps --communes '" MG_TEST_DATA
                           "/charente.csv'", "complementarities --structure apej", NULL};
    for (int i = 0; human[i]; i++) {
        CHECK(mg_test_cli(dir, &out, "%s", human[i]) == 0);
        if (!s_lines_fit(out, 80))
            fprintf(stderr, "wider than 80 columns: maillage %s\n", human[i]);
        CHECK(s_lines_fit(out, 80));
        free(out);
    }
    /* overlaps --json: groups ranked, each says why. */
    int code;
    json_t *j = mg_test_cli_json(dir, &code, "overlaps --json");
    CHECK(code == 0 && j && json_array_size(json_object_get(j, "groupes")) > 0);
    json_t *g0 = json_array_get(json_object_get(j, "groupes"), 0);
    CHECK(json_array_size(json_object_get(g0, "services_communs")) > 0);
    CHECK(json_object_get(g0, "score") && json_object_get(g0, "paires"));
    json_t *p0 = json_array_get(json_object_get(g0, "paires"), 0);
    CHECK(json_object_get(p0, "creneaux_communs") != NULL);
    json_decref(j);
    j = mg_test_cli_json(dir, &code, "overlaps --geojson --within 2");
    CHECK(code == 0 && j && json_array_size(json_object_get(j, "features")) > 0);
    json_decref(j);
    /* duplicates --json --national: the comparison is there. */
    j = mg_test_cli_json(dir, &code, "duplicates --json --national --communes '%s/charente.csv'",
                   MG_TEST_DATA);
    CHECK(code == 0 && j);
    json_t *cmp = json_object_get(j, "comparaison_nationale");
    CHECK(cmp && json_integer_value(json_object_get(cmp, "paires_nationales")) > 0);
    CHECK(json_integer_value(json_object_get(cmp, "paires_maillage"))
          > json_integer_value(json_object_get(cmp, "paires_nationales")));
    json_decref(j);
    /* diagnostic: the six cells and the manques. */
    j = mg_test_cli_json(dir, &code, "diagnostic --json --departement 16 --communes '%s/charente.csv'",
                   MG_TEST_DATA);
    CHECK(code == 0 && j);
    const char *cells[] = {"qui", "quoi", "ou", "comment", "pour_qui", "pour_quoi", "manques",
                           NULL};
    for (int i = 0; cells[i]; i++)
        CHECK(json_object_get(j, cells[i]) != NULL);
    CHECK(json_integer_value(json_object_get(json_object_get(j, "territoire"), "offres")) == 188);
    CHECK(json_array_size(json_object_get(json_object_get(j, "manques"), "couverture")) == 14);
    json_decref(j);
    CHECK(mg_test_cli(dir, &out, "diagnostic --format markdown") == 0);
    CHECK(strstr(out, "# Diagnostic de territoire") && strstr(out, "## POUR QUOI")
          && strstr(out, "| Service | Offres | Structures |"));
    free(out);
    /* complementarities: this node only imported, so it must be named. */
    CHECK(mg_test_cli(dir, &out, "complementarities") == 1);
    CHECK(strstr(out, "--structure") != NULL);
    free(out);
    CHECK(mg_test_cli(dir, &out, "complementarities --structure mairie") == 1);
    CHECK(strstr(out, "structures") != NULL);
    free(out);
    j = mg_test_cli_json(dir, &code, "complementarities --structure 33820960400028 --json");
    CHECK(code == 0 && j && json_array_size(json_object_get(json_object_get(j, "structure"),
                                                            "offres")) == 3);
    json_decref(j);
}

/* check, on a node of its own: an offer missing duration and frequency
   makes the exit status 1, and answering them makes it 0. */
static void test_check_cli(void)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/structure", s_tmp);
    char *out;
    CHECK(mg_test_cli(dir, &out, "init --name 'Médiathèque de Ruelle'") == 0);
    free(out);
    CHECK(mg_test_cli(dir, &out, "check") == 1); /* no offer yet */
    free(out);
    CHECK(mg_test_cli(dir, &out,
                "offer add --id atelier --pivot 21160291300017 --nom 'Atelier seniors' "
                "--commune Ruelle-sur-Touvre --code-postal 16600 --adresse '1 place de la Mairie' "
                "--latitude 45.68 --longitude 0.23 --telephone +33545000000 --typologie BIB "
                "--services 'Maîtrise des outils numériques du quotidien' "
                "--publics-specifiquement-adresses Seniors "
                "--modalites-accompagnement 'Dans un atelier collectif' --frais-a-charge Gratuit "
                "--modalites-acces Téléphoner --presentation-resume 'Ateliers pour seniors.' "
                "--horaires 'Tu 14:00-16:00' --date-maj 2024-01-15 --json") == 0);
    json_error_t err;
    json_t *added = json_loads(out, 0, &err);
    free(out);
    const char *rid = json_string_value(json_object_get(added, "id"));
    CHECK(rid != NULL);
    char today[16] = "2024-01-20";
    CHECK(mg_test_cli(dir, &out, "check --today %s", today) == 1);
    CHECK(strstr(out, "✗ Quelle durée ?") && strstr(out, "✗ Quelle fréquence ?"));
    CHECK(strstr(out, "Complétude : 75 %") != NULL);
    CHECK(s_lines_fit(out, 80));
    free(out);
    int code;
    json_t *j = mg_test_cli_json(dir, &code, "check --json --today %s", today);
    CHECK(code == 1 && j);
    json_t *o0 = json_array_get(json_object_get(j, "offres"), 0);
    CHECK(json_integer_value(json_object_get(o0, "score")) == 75);
    CHECK(!json_is_true(json_object_get(j, "tout_va_bien")));
    json_decref(j);
    CHECK(mg_test_cli(dir, &out, "offer update %s --duree 'parcours de 5 séances de 2 h' "
                "--frequence 'chaque mardi'", rid ? rid : "x") == 0);
    free(out);
    /* The update is dated today by the node: check as of then... */
    CHECK(mg_test_cli(dir, &out, "check %s", rid ? rid : "x") == 0);
    CHECK(strstr(out, "Complétude : 100 %") != NULL);
    free(out);
    /* ...and a year later, the reminder makes it fail again. */
    char later[16];
    {
        time_t t = time(NULL) + 365 * 86400;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(later, sizeof later, "%Y-%m-%d", &tm);
    }
    CHECK(mg_test_cli(dir, &out, "check --today %s", later) == 1);
    CHECK(strstr(out, "Communiquer régulièrement") != NULL);
    free(out);
    CHECK(mg_test_cli(dir, &out, "check nosuchid") == 1);
    CHECK(strstr(out, "aucune offre") != NULL);
    free(out);
    /* complementarities works on the node's own offers by default. */
    CHECK(mg_test_cli(dir, &out, "complementarities") == 0);
    CHECK(strstr(out, "Atelier seniors") || strstr(out, "Médiathèque de Ruelle"));
    free(out);
    json_decref(added);
}

int main(void)
{
    snprintf(s_tmp, sizeof s_tmp, "/tmp/test_analysis.XXXXXX");
    if (!mkdtemp(s_tmp)) {
        perror("mkdtemp");
        return 1;
    }
    test_fuzzy();
    test_communes_table();
    test_overlaps_cases();
    test_duplicates_cases();
    test_gaps_comd();
    test_complements();
    test_check_offer();

    /* A coordinator's node holding the Charente file. */
    char dir[512];
    snprintf(dir, sizeof dir, "%s/coordination", s_tmp);
    char *out;
    CHECK(mg_test_cli(dir, &out, "init --name 'Coordination Charente'") == 0);
    free(out);
    CHECK(mg_test_cli(dir, &out, "import '%s/charente-2023-07.json'", MG_TEST_DATA) == 0);
    free(out);
    /* The library's own store of the same file, imported with
       mg_import_file by an identity of the test. */
    char db[600];
    snprintf(db, sizeof db, "%s/charente.db", s_tmp);
    mg_store_t *st = NULL;
    mg_why_t why;
    mg_why_clear(&why);
    CHECK_RC(mg_store_open(db, &st, &why), MG_OK);
    mg_identity_t id;
    s_identity(99, &id);
    if (st) {
        int rc = mg_import_file(st, &id, MG_TEST_DATA "/charente-2023-07.json", MG_FORMAT_AUTO,
                                NULL, NULL, NULL, &why);
        if (rc != MG_OK)
            fprintf(stderr, "import: %s\n", why.text);
        CHECK_RC(rc, MG_OK);
        test_charente(dir, st);
    }
    mg_store_destroy(&st);
    test_cli(dir);
    test_check_cli();

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_tmp);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", s_tmp);
    return mg_test_done("test_analysis");
}
