/*  mg_bench_analysis.c - how long the coordinator's analyses take on a
    realistic national-scale load: N generated offers (20,000 by default,
    France's whole count of lieux) spread over a real département's
    communes in proportion to their population, with the real variety of
    the standard's data (services, publics, opening hours, missing
    coordinates, placeholder SIRETs, duplicate listings by other sources).

    Prints one "key value" line per figure, so scripts can read it:
        offers 20000
        load_ms 512.3
        overlaps_ms 231.0
        ...
    Times are wall clock on this machine; docs/analysis.md keeps the
    figures. Exit status 1 when an analysis fails or a count is absurd
    (the smoke test, `--offers 500`, checks only that).

    Usage: mg_bench_analysis [--offers N] [--communes FILE] [--seed S]
                             [--keep DIR]
    --keep DIR writes the offers into DIR/maillage.db and keeps it, so
    the commands can be timed end to end on it:
        maillage --dir DIR init --name Bench && mg_bench_analysis --keep DIR
        time maillage --dir DIR overlaps --json > /dev/null
*/
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mg_analysis.h"
#include "mg_cmd_analysis.h"
#include "mg_offer.h"
#include "mg_record.h"
#include "mg_store.h"

/* xorshift64*: reproducible from --seed, fast. */
static uint64_t s_rng = 0x9E3779B97F4A7C15ull;

static uint64_t s_next(void)
{
    s_rng ^= s_rng >> 12;
    s_rng ^= s_rng << 25;
    s_rng ^= s_rng >> 27;
    return s_rng * 2685821657736338717ull;
}

static double s_unit(void)
{
    return (double) (s_next() >> 11) / 9007199254740992.0;
}

static size_t s_below(size_t n)
{
    return n ? (size_t) (s_next() % n) : 0;
}

static double s_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/* CPU time of this process: steadier than the wall clock on a machine
   shared with other work, so both are printed. */
static double s_cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static double s_c0;
#define S_START() (s_c0 = s_cpu_ms(), s_ms())

/* Real opening hours of the Charente file, and two unreadable ones. */
static const char *const s_hours[] = {
    "Mo-Fr 09:00-12:00,14:00-17:00",
    "Mo-Fr 09:00-12:00,14:00-18:00",
    "Mo-Fr 08:30-12:30,13:30-17:30",
    "Mo-Th 09:00-12:00,14:00-18:00; Fr 09:00-12:00,14:00-17:00",
    "Tu-Fr 09:00-12:00,13:30-16:30; Sa 09:00-12:00",
    "Mo 09:00-12:00", "Tu 09:00-12:00", "We 14:00-17:00", "Th 09:00-12:00",
    "Fr 14:00-17:00", "Mo,Fr 09:00-12:00; Tu 13:00-17:00",
    "Tu-Fr 10:00-12:30,15:00-18:00; Sa 10:00-12:30; Th off",
    "Mo-Fr 09:00-12:30,13:30-17:00; We 09:00-12:30,13:00-17:00",
    "Lu-Ve 9h-12h", "sur rendez-vous",
};

static const char *const s_streets[] = {
    "de la Mairie", "du Port", "Victor Hugo", "Jean Jaurès", "de la Gare",
    "des Écoles", "du Général de Gaulle", "Pasteur", "de la République",
    "du Stade", "des Tilleuls", "Saint-Martin", "de Bordeaux", "de Paris",
    "Émile Roux", "Léon Blum", "du Château", "des Vignes", "de l'Église",
    "du Moulin", "Aristide Briand", "de la Libération", "Gambetta",
    "Carnot", "des Lilas", "du Marché", "de Périgueux", "de Cognac",
    "des Acacias", "du 8 Mai 1945"};
static const char *const s_types[] = {"rue", "avenue", "place", "boulevard",
                                      "chemin", "allée"};
static const char *const s_kinds[][2] = {
    {"Médiathèque de ", "BIB"}, {"Mairie de ", "MUNI"},
    {"France services ", "RFS"}, {"Centre social de ", "CS"},
    {"Espace numérique de ", "ASSO"}, {"CCAS de ", "CCAS"},
    {"Tiers-lieu de ", "TIERS_LIEUX"}, {"Association Clic ", "ASSO"},
    {"Maison des jeunes de ", "MJC"}, {"Point numérique de ", "MUNI"}};

/* Service weights close to the Charente file's (shares of offers). */
static const double s_service_weight[] = {0.45, 0.6, 0.13, 0.1, 0.03,
                                          0.05, 0.55, 0.06, 0.02};

typedef struct {
    const mg_commune_t *c;
    double cumulative; /* population up to and including this commune */
} s_pick_t;

static const mg_commune_t *s_pick_commune(const s_pick_t *picks, size_t n)
{
    double total = picks[n - 1].cumulative, r = s_unit() * total;
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (picks[mid].cumulative < r)
            lo = mid + 1;
        else
            hi = mid;
    }
    return picks[lo].c;
}

/* One generated offer body. `variant` > 0 writes the same place as
   another source would: other case, abbreviations, no SIRET. */
static mg_body_t *s_offer(const mg_commune_t *c, size_t structure, int kind,
                          int street, int type, int number, double lat,
                          double lng, bool coords, int variant, size_t serial,
                          const char *pivot)
{
    mg_body_t *b = mg_body_new();
    if (!b)
        return NULL;
    char id[64], nom[256], adresse[256], today[11];
    /* A second listing of a place: its id says which (for recall). */
    snprintf(id, sizeof id, "bench-%zu%s", serial, variant ? "-bis" : "");
    snprintf(nom, sizeof nom, "%s%s", s_kinds[kind][0], c->nom);
    if (variant == 1)
        for (char *p = nom; *p; p++)
            if (*p >= 'a' && *p <= 'z')
                *p = (char) (*p - 'a' + 'A');
    const char *t = s_types[type];
    if (variant == 2)
        t = type == 0 ? "r" : type == 1 ? "av" : type == 3 ? "bd" : t;
    snprintf(adresse, sizeof adresse, "%d %s %s", number, t, s_streets[street]);
    struct tm tm;
    time_t now = time(NULL) - (time_t) s_below(400) * 86400;
    gmtime_r(&now, &tm);
    strftime(today, sizeof today, "%Y-%m-%d", &tm);
    int rc = mg_body_set_str(b, "id", id);
    rc |= mg_body_set_str(b, "pivot", pivot);
    rc |= mg_body_set_str(b, "nom", nom);
    rc |= mg_body_set_str(b, "commune", c->nom);
    rc |= mg_body_set_str(b, "code_postal", c->postal[0] ? c->postal : "16000");
    rc |= mg_body_set_str(b, "adresse", adresse);
    rc |= mg_body_set_str(b, "date_maj", today);
    rc |= mg_body_set_str(b, "source", variant ? "autre-source" : "bench");
    if (coords) {
        rc |= mg_body_set_num(b, "latitude", lat);
        rc |= mg_body_set_num(b, "longitude", lng);
    }
    const char *typo = s_kinds[kind][1];
    rc |= mg_body_set_list(b, "typologie", &typo, 1);
    const mg_field_t *svc = mg_offer_field("services");
    const char *services[9];
    size_t ns = 0;
    for (size_t i = 0; i < 9; i++)
        if (s_unit() < s_service_weight[i])
            services[ns++] = svc->values[i];
    if (ns == 0)
        services[ns++] = svc->values[1];
    rc |= mg_body_set_list(b, "services", services, ns);
    if (s_unit() < 0.2) {
        const mg_field_t *pub = mg_offer_field("publics_specifiquement_adresses");
        const char *publics[2] = {pub->values[s_below(5)], pub->values[s_below(5)]};
        size_t np = publics[0] == publics[1] ? 1 : 2;
        rc |= mg_body_set_list(b, "publics_specifiquement_adresses", publics, np);
    }
    if (s_unit() < 0.4) {
        size_t h = s_below(sizeof s_hours / sizeof s_hours[0]);
        /* The two unreadable ones are rare. */
        if (h >= sizeof s_hours / sizeof s_hours[0] - 2 && s_unit() < 0.8)
            h = 0;
        rc |= mg_body_set_str(b, "horaires", s_hours[h]);
    }
    const mg_field_t *acc = mg_offer_field("modalites_accompagnement");
    const char *modes[1] = {acc->values[s_below(4)]};
    rc |= mg_body_set_list(b, "modalites_accompagnement", modes, 1);
    const char *frais = s_unit() < 0.8 ? "Gratuit" : "Payant";
    rc |= mg_body_set_list(b, "frais_a_charge", &frais, 1);
    if (s_unit() < 0.3) {
        char tel[16];
        snprintf(tel, sizeof tel, "+3354%07zu", structure % 10000000);
        rc |= mg_body_set_str(b, "telephone", tel);
    }
    if (rc != MG_OK)
        mg_body_destroy(&b);
    return b;
}

static void s_remove_store(const char *dir)
{
    const char *files[] = {"maillage.db", "maillage.db-wal", "maillage.db-shm"};
    char path[512];
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

int main(int argc, char **argv)
{
    size_t offers = 20000;
    const char *communes_path = MG_BENCH_COMMUNES;
    const char *keep = NULL; /* --keep DIR: write DIR/maillage.db and keep it */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--offers") == 0 && i + 1 < argc) {
            offers = (size_t) strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--keep") == 0 && i + 1 < argc) {
            keep = argv[++i];
        } else if (strcmp(argv[i], "--communes") == 0 && i + 1 < argc) {
            communes_path = argv[++i];
        } else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            s_rng ^= strtoull(argv[++i], NULL, 10) * 0x2545F4914F6CDD1Dull;
            if (!s_rng)
                s_rng = 1;
        } else {
            fprintf(stderr, "usage: %s [--offers N] [--communes FILE] [--seed S] [--keep DIR]\n",
                    argv[0]);
            return 2;
        }
    }
    if (offers < 10 || offers > 1000000) {
        fprintf(stderr, "--offers: between 10 and 1000000\n");
        return 2;
    }
    mg_why_t why;
    mg_why_clear(&why);
    mg_communes_t *communes = NULL;
    if (mg_communes_load(communes_path, &communes, &why) != MG_OK) {
        fprintf(stderr, "communes: %s\n", why.text);
        return 1;
    }
    size_t nc = mg_communes_count(communes);
    s_pick_t *picks = calloc(nc, sizeof *picks);
    size_t np = 0;
    double cum = 0;
    for (size_t i = 0; i < nc; i++) {
        const mg_commune_t *c = mg_communes_at(communes, i);
        if (c->type != MG_COMMUNE_COM || !c->has_pos || c->population <= 0)
            continue;
        cum += (double) c->population;
        picks[np].c = c;
        picks[np].cumulative = cum;
        np++;
    }
    char dir[] = "/tmp/mg_bench_analysis.XXXXXX";
    if (!picks || np == 0 || (!keep && !mkdtemp(dir))) {
        fprintf(stderr, "setup failed\n");
        return 1;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/maillage.db", keep ? keep : dir);
    mg_store_t *store = NULL;
    int rc = mg_store_open(path, &store, &why);

    /* Structures: one node each, one to three offers; 5 % of places are
       listed again by another source (the duplicates to find). */
    double t0 = s_ms();
    mg_record_t **batch = calloc(1000, sizeof *batch);
    mg_apply_t *outcomes = calloc(1000, sizeof *outcomes);
    size_t nb = 0, made = 0, structure = 0, duplicates = 0;
    uint8_t seed[32] = {0};
    mg_identity_t id, other;
    memcpy(seed, "mg_bench_analysis: other source", 31);
    mg_identity_from_seed(&other, seed);
    uint64_t other_counter = 0;
    while (rc == MG_OK && made < offers) {
        memset(seed, 0, sizeof seed);
        snprintf((char *) seed, sizeof seed, "bench-structure-%zu", structure);
        mg_identity_from_seed(&id, seed);
        const mg_commune_t *c = s_pick_commune(picks, np);
        int kind = (int) s_below(sizeof s_kinds / sizeof s_kinds[0]);
        char pivot[16];
        if (s_unit() < 0.3)
            snprintf(pivot, sizeof pivot, "00000000000000");
        else
            snprintf(pivot, sizeof pivot, "%09zu%05zu", 100000000 + structure, s_below(99999));
        double radius_km = 2.0 * sqrt((double) c->population / 5000.0);
        radius_km = radius_km < 0.5 ? 0.5 : radius_km > 4 ? 4 : radius_km;
        size_t count = 1 + s_below(3);
        for (size_t k = 0; k < count && made < offers && rc == MG_OK; k++) {
            double ang = s_unit() * 2 * M_PI, r = radius_km * sqrt(s_unit());
            double lat = c->lat + r * cos(ang) / 111.2;
            double lng = c->lng + r * sin(ang) / (111.2 * cos(c->lat * M_PI / 180));
            bool coords = s_unit() >= 0.08;
            int street = (int) s_below(sizeof s_streets / sizeof s_streets[0]);
            int type = (int) s_below(sizeof s_types / sizeof s_types[0]);
            int number = 1 + (int) s_below(120);
            int copies = s_unit() < 0.05 ? 2 : 1;
            for (int v = 0; v < copies && made < offers && rc == MG_OK; v++) {
                mg_body_t *b = s_offer(c, structure, kind, street, type, number, lat, lng,
                                       coords, v ? 1 + (int) s_below(2) : 0, v ? made - 1 : made,
                                       v ? "00000000000000" : pivot);
                if (!b) {
                    rc = MG_ERR_NOMEM;
                    break;
                }
                char rid[32];
                snprintf(rid, sizeof rid, "o%zu", made);
                mg_record_t *rec = NULL;
                rc = mg_record_sign(v ? &other : &id, "offer", rid, v ? ++other_counter : k + 1,
                                    (int64_t) time(NULL) * 1000, false, b, &rec, &why);
                mg_body_destroy(&b);
                if (rc != MG_OK)
                    break;
                batch[nb++] = rec;
                made++;
                duplicates += v;
                if (nb == 1000 || made == offers) {
                    rc = mg_store_apply_batch(store, batch, nb, outcomes, &why);
                    for (size_t x = 0; x < nb; x++)
                        mg_record_destroy(&batch[x]);
                    nb = 0;
                }
            }
        }
        structure++;
    }
    for (size_t x = 0; x < nb; x++)
        mg_record_destroy(&batch[x]);
    free(batch);
    free(outcomes);
    double t_gen = s_ms() - t0;
    if (rc != MG_OK) {
        fprintf(stderr, "generation failed: %s\n", why.text[0] ? why.text : mg_strerror(rc));
        mg_store_destroy(&store);
        if (!keep)
            s_remove_store(dir);
        return 1;
    }
    printf("offers %zu\nstructures %zu\nduplicate_listings %zu\ncommunes %zu\n"
           "generate_ms %.1f\n", made, structure, duplicates, np, t_gen);

    bool ok = true;
    mg_analysis_t *an = NULL;
    t0 = S_START();
    rc = mg_analysis_load(store, NULL, communes, NULL, &an, &why);
    double t_load = s_ms() - t0;
    ok = ok && rc == MG_OK && mg_analysis_count(an) == made;
    printf("load_ms %.1f\nload_cpu_ms %.1f\n", t_load, s_cpu_ms() - s_c0);

    if (ok) {
        mg_overlaps_t *ov = NULL;
        mg_overlap_opts_t oo = {.max_pairs = 50};
        t0 = S_START();
        rc = mg_overlaps_find(an, &oo, &ov, &why);
        double t = s_ms() - t0;
        printf("overlaps_cpu_ms %.1f\n", s_cpu_ms() - s_c0);
        ok = rc == MG_OK;
        size_t pairs = 0;
        for (size_t g = 0; ok && g < ov->group_count; g++)
            pairs += ov->groups[g].pair_total;
        if (ok)
            printf("overlaps_ms %.1f\noverlaps_groups %zu\noverlaps_pairs %zu\n", t,
                   ov->group_count, pairs);
        mg_overlaps_destroy(&ov);
    }
    if (ok) {
        mg_overlaps_t *ov = NULL;
        mg_overlap_opts_t oo = {.within_km = 5, .max_pairs = 50};
        t0 = S_START();
        rc = mg_overlaps_find(an, &oo, &ov, &why);
        double t = s_ms() - t0;
        printf("overlaps_within5_cpu_ms %.1f\n", s_cpu_ms() - s_c0);
        ok = rc == MG_OK;
        if (ok)
            printf("overlaps_within5_ms %.1f\noverlaps_within5_groups %zu\n", t, ov->group_count);
        mg_overlaps_destroy(&ov);
    }
    if (ok) {
        mg_duplicates_t *d = NULL;
        t0 = S_START();
        rc = mg_duplicates_find(an, NULL, &d, &why);
        double t = s_ms() - t0;
        printf("duplicates_cpu_ms %.1f\n", s_cpu_ms() - s_c0);
        ok = rc == MG_OK;
        if (ok) {
            /* Recall: planted second listings found with their place. */
            size_t found = 0;
            for (size_t g = 0; g < d->group_count; g++)
                for (size_t k = 0; k < d->groups[g].pair_count; k++) {
                    const char *x = mg_analysis_offer(an, d->groups[g].pairs[k].a)->id_standard;
                    const char *y = mg_analysis_offer(an, d->groups[g].pairs[k].b)->id_standard;
                    size_t lx = x ? strlen(x) : 0, ly = y ? strlen(y) : 0;
                    if (x && y && ((lx == ly + 4 && strncmp(x, y, ly) == 0)
                                   || (ly == lx + 4 && strncmp(x, y, lx) == 0)))
                        found++;
                }
            printf("duplicates_ms %.1f\nduplicates_candidates %zu\nduplicates_pairs %zu\n"
                   "duplicates_groups %zu\nduplicates_planted_found %zu\n", t, d->candidates,
                   d->pair_count, d->group_count, found);
            /* Most planted listings are found (some land on a place that
               has no SIRET and coordinates missing on one side). */
            ok = duplicates == 0 || d->pair_count >= duplicates / 2;
        }
        mg_duplicates_destroy(&d);
    }
    if (ok) {
        mg_gaps_t *g = NULL;
        t0 = S_START();
        rc = mg_gaps_find(an, NULL, &g, &why);
        double t = s_ms() - t0;
        printf("gaps_cpu_ms %.1f\n", s_cpu_ms() - s_c0);
        ok = rc == MG_OK && g->count > 0 && g->population > 0;
        if (ok) {
            printf("gaps_ms %.1f\ngaps_population %lld\n", t, (long long) g->population);
            for (size_t k = 0; k < g->count && k < 3; k++)
                printf("gaps_covered_pct_%zu %.1f\n", k,
                       100.0 * (double) g->items[k].covered / (double) g->population);
        }
        mg_gaps_destroy(&g);
    }
    if (!ok)
        fprintf(stderr, "analysis failed: %s\n", why.text[0] ? why.text : mg_strerror(rc));
    mg_analysis_destroy(&an);
    mg_store_destroy(&store);
    mg_communes_destroy(&communes);
    free(picks);
    if (!keep)
        s_remove_store(dir);
    mg_identity_wipe(&id);
    mg_identity_wipe(&other);
    return ok ? 0 : 1;
}
