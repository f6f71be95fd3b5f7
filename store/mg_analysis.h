/*  mg_analysis.h - what a coordinator asks of the territory's offers:
    juxtapositions (overlaps), duplicate listings, underserved communes
    (gaps), partners (complementarities), the six-cell diagnostic, and
    the eight questions every offer should answer (check).

    The analyses read the store's live offers once into memory
    (mg_analysis_load) and never compare every pair: candidates come
    from an in-memory grid of cells sized to the search radius, from
    buckets of the same postal code, and from hash buckets of SIRET,
    phone and e-mail (docs/analysis.md gives methods, scores and
    measured times). Nothing here writes to the store.

    Text comparisons use mg_store_fold (case, accents, typographic
    apostrophes and dashes). Distances are great-circle (haversine,
    Earth radius 6371.0088 km).
*/
#ifndef MG_ANALYSIS_H
#define MG_ANALYSIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mg_body.h"
#include "mg_error.h"
#include "mg_hours.h"
#include "mg_store.h"

/* ------------------------------------------------------------------ */
/* Communes table                                                       */

typedef enum {
    MG_COMMUNE_COM = 0,  /* a current commune: its population counts */
    MG_COMMUNE_COMD,     /* former commune, now delegated: part of a COM */
    MG_COMMUNE_ARM,      /* municipal arrondissement: part of a COM */
    MG_COMMUNE_OTHER,    /* any other type: located, never counted */
} mg_commune_type_t;

typedef struct {
    char insee[6];        /* INSEE code ("16015", "2A004") */
    char postal[6];       /* main postal code, "" if unknown */
    char (*postal_more)[6]; /* other postal codes of the commune (tables
                               repeat a commune once per postal code) */
    size_t postal_more_count;
    char parent[6];       /* COMD/ARM: INSEE code of the commune it is
                             part of ("" when the table does not say) */
    char *nom;            /* name as written in the table */
    char *nom_fold;       /* mg_store_fold(nom), "saint" spelled out */
    char *article_fold;   /* folded name with article ("les adjots"), or NULL */
    mg_commune_type_t type;
    bool has_pos;         /* lat/lng known */
    double lat, lng;      /* centre, WGS84 degrees */
    int64_t population;   /* inhabitants; -1 when unknown */
} mg_commune_t;

typedef struct mg_communes_t mg_communes_t;

/* An empty table. Caller owns return value; NULL if out of memory. */
mg_communes_t *mg_communes_new(void);
void mg_communes_destroy(mg_communes_t **self_p);

/* Adds one commune (strings are copied). `type` is the table's text:
   "COM", "COMD", "ARM" (anything else: MG_COMMUNE_OTHER; empty: COM).
   `article` (may be NULL) is the name with its article. population < 0:
   unknown. A row repeating a commune already there (same INSEE code,
   type and name) with another postal code adds that postal code to it:
   communes tables have one row per (commune, postal code), and the
   commune and its population must count once. MG_ERR_SCHEMA for a
   malformed INSEE code (why says so); MG_ERR_EXISTS when a commune of
   the same INSEE code and type but another name is already there. */
int mg_communes_add(mg_communes_t *self, const char *insee, const char *nom,
                    const char *article, const char *postal,
                    const char *type, const char *parent, bool has_pos,
                    double lat, double lng, int64_t population,
                    mg_why_t *why);

size_t mg_communes_count(const mg_communes_t *self);
const mg_commune_t *mg_communes_at(const mg_communes_t *self, size_t index);

/* True when some commune of the table has this postal code (a place
   is then inside the table's territory, even when several communes
   share the code and its name matches none of them, e.g. a former
   commune the table does not list). */
bool mg_communes_has_postal(const mg_communes_t *self, const char *postal);

/* How an offer's commune was found in the table. */
typedef enum {
    MG_LOCATE_NONE = 0,    /* not found, or ambiguous */
    MG_LOCATE_INSEE,       /* by its INSEE code */
    MG_LOCATE_NAME,        /* by postal code and name */
    MG_LOCATE_NAME_ONLY,   /* by a name no other commune of the table has */
    MG_LOCATE_POSTAL,      /* by a postal code only one commune has */
} mg_locate_t;

/* Index of the commune an offer names, or -1: by INSEE code (a COM
   before a COMD of the same code); else postal code and folded name
   (name or name with article); else a folded name unique in the table;
   else a postal code that only one commune has. Several communes that
   fit equally is -1: never a guess. `how` may be NULL. */
long mg_communes_locate(const mg_communes_t *self, const char *code_insee,
                        const char *code_postal, const char *commune,
                        mg_locate_t *how);

/* ------------------------------------------------------------------ */
/* Offers in memory                                                     */

/* Enumerated fields kept as bit sets: bit i of a mask is label i of the
   field, the standard's labels first in the standard's order, then any
   other label met (a newer standard's), up to 64 per field. */
typedef enum {
    MG_AF_SERVICES = 0,
    MG_AF_PUBLICS,          /* publics_specifiquement_adresses */
    MG_AF_PRISE_EN_CHARGE,  /* prise_en_charge_specifique */
    MG_AF_ACCOMPAGNEMENT,   /* modalites_accompagnement */
    MG_AF_ACCES,            /* modalites_acces */
    MG_AF_FRAIS,            /* frais_a_charge */
    MG_AF_DISPOSITIFS,      /* dispositif_programmes_nationaux */
    MG_AF_TYPOLOGIE,        /* typologie (free codes: ASSO, MUNI...) */
    MG_AF_ITINERANCE,       /* itinerance */
    MG_AF_COUNT
} mg_afield_t;

#define MG_LABELS_MAX 64

/* Where an offer is for distance computations. */
typedef enum {
    MG_LOC_NONE = 0,  /* no coordinates and commune not found */
    MG_LOC_COORDS,    /* its own latitude/longitude */
    MG_LOC_CENTRE,    /* no coordinates: the centre of its commune */
} mg_loc_t;

/* Whether an offer's horaires could be read. */
typedef enum {
    MG_HOURS_ABSENT = 0,
    MG_HOURS_OK,
    MG_HOURS_UNREADABLE,
} mg_hours_state_t;

/* One live offer as the analyses see it. Strings belong to the
   analysis; absent fields are NULL. */
typedef struct {
    uint8_t author[MG_KEY_BYTES];
    char rid[MG_RID_MAX + 1];
    const char *nom, *commune, *code_postal, *code_insee, *adresse;
    const char *pivot, *source, *id_standard, *telephone, *date_maj;
    const char *horaires;
    const char *const *courriels; /* folded, NULL-terminated (maybe empty) */
    char *nom_fold;        /* mg_store_fold(nom) */
    char *adresse_norm;    /* folded, abbreviations spelled out, postal
                              code and commune name removed */
    char *commune_fold;    /* folded commune name, "saint" spelled out */
    char insee[6];         /* code_insee, or the table's when located */
    char departement[4];   /* mg_departement_of, "" when unknown */
    long commune_index;    /* in the communes table, -1 */
    mg_loc_t loc;
    double lat, lng;       /* valid unless loc == MG_LOC_NONE */
    uint64_t mask[MG_AF_COUNT];
    mg_hours_state_t hours_state;
    mg_slot_t *slots;      /* MG_HOURS_OK: the week's open slots */
    size_t slot_count;
    char *hours_why;       /* MG_HOURS_UNREADABLE: the parser's reason */
    uint32_t structure;    /* index in the structure table */
    bool placeholder_pivot; /* pivot absent or a placeholder (000...0) */
    int64_t updated_ms;    /* the signed version's creation time */
    bool own;              /* authored by the `self` key given at load */
    size_t objectif_count; /* maillage's `objectifs`, as given */
    const char *const *objectifs;
    bool has_duree, has_frequence, has_demarche;
} mg_aoffer_t;

/* A structure: offers are from the same structure when they share a
   real SIRET/RNA pivot; otherwise, an offer imported from a lieu (it has
   a `source`) belongs to (author, folded nom), and an offer a node wrote
   itself to its author. So a coordinator's node that imported 188 lieux
   holds 188-odd structures, while the offers a médiathèque publishes
   from its own node are one structure. docs/analysis.md explains why. */
typedef struct {
    char *key;             /* "p:PIVOT", "n:AUTHORHEX:folded nom", "a:AUTHORHEX" */
    const char *name;      /* the author's profile nom for "a:" keys, else
                              the first offer's nom */
    uint8_t author[MG_KEY_BYTES]; /* author of its first offer */
    size_t offer_count;
} mg_astructure_t;

typedef struct mg_analysis_t mg_analysis_t;

/* Reads the store's live offers matching `query` (NULL: all) into
   memory. `communes` (may be NULL; must outlive the analysis) places
   offers without coordinates at their commune's centre and gives their
   INSEE code. `self` (may be NULL) marks that author's offers as own.
   Offers whose horaires cannot be read keep the reason in hours_why.
   Caller owns *out. */
int mg_analysis_load(mg_store_t *store, const mg_offer_query_t *query,
                     const mg_communes_t *communes, const uint8_t *self,
                     mg_analysis_t **out, mg_why_t *why);
void mg_analysis_destroy(mg_analysis_t **self_p);

size_t mg_analysis_count(const mg_analysis_t *self);
const mg_aoffer_t *mg_analysis_offer(const mg_analysis_t *self, size_t i);
const mg_communes_t *mg_analysis_communes(const mg_analysis_t *self);
size_t mg_analysis_structure_count(const mg_analysis_t *self);
const mg_astructure_t *mg_analysis_structure(const mg_analysis_t *self,
                                             size_t i);

/* Labels of an enumerated field: count, label of a bit, bit of a label
   (case- and accent-insensitive), or -1. */
unsigned mg_analysis_label_count(const mg_analysis_t *self, mg_afield_t f);
const char *mg_analysis_label(const mg_analysis_t *self, mg_afield_t f,
                              unsigned bit);
int mg_analysis_label_bit(const mg_analysis_t *self, mg_afield_t f,
                          const char *label);

/* Great-circle distance in km. */
double mg_haversine_km(double lat1, double lng1, double lat2, double lng2);

/* True for a missing or placeholder pivot: empty, or one character
   repeated (00000000000000, the national cartography's "no SIRET"). */
bool mg_pivot_placeholder(const char *pivot);

/* ------------------------------------------------------------------ */
/* Fuzzy ratios                                                         */

/* python-Levenshtein's ratio, as fuzzywuzzy's fuzz.ratio and fuzzball's
   ratio compute it, on Unicode code points: round(100 x (la + lb - d) /
   (la + lb)) where d is the Levenshtein distance with substitutions
   costing 2 (so d = la + lb - 2 x LCS). 0 when either is empty.
   Inputs longer than 512 code points are cut there. */
int mg_fuzzy_ratio(const char *a, const char *b);

/* fuzzball's default processing before its ratio: lower case (accents
   kept), every character that is not a letter or digit becomes a space,
   runs of spaces collapsed, trimmed. Caller owns return value. */
char *mg_fuzzy_process(const char *text);

/* Folds an address for comparison: mg_store_fold, then punctuation to
   spaces, street-type abbreviations spelled out (bd -> boulevard,
   av -> avenue, r -> rue, pl -> place, st -> saint...), the given postal
   code and commune name removed from the end. Caller owns return value;
   NULL if out of memory or not UTF-8. */
char *mg_address_normalize(const char *adresse, const char *code_postal,
                           const char *commune);

/* ------------------------------------------------------------------ */
/* Overlaps: empilement, juxtaposition                                  */

typedef struct {
    double within_km;      /* 0: same commune; else <= within_km, by
                              coordinates when both offers have them
                              (same commune otherwise) */
    const char *service;   /* only this service in common (NULL: any) */
    size_t max_pairs;      /* pairs detailed per group, best first
                              (0: all); pair_total counts them all */
} mg_overlap_opts_t;

/* Two offers of different structures that juxtapose. */
typedef struct {
    uint32_t a, b;          /* offer indexes, a < b */
    uint64_t services;      /* services both offer */
    uint64_t publics;       /* specific publics both serve (see below) */
    bool all_publics;       /* neither names a specific public */
    bool same_commune;
    float distance_km;      /* < 0: unknown (same commune, no coordinates) */
    bool hours_known;       /* both gave readable horaires (then they meet) */
    uint32_t common_minutes; /* open together, minutes a week */
    uint8_t score;          /* 0..100, docs/analysis.md */
} mg_overlap_pair_t;

typedef struct {
    uint32_t *offers;       /* members, by decreasing best pair score */
    size_t offer_count;
    size_t structures;      /* distinct structures among them */
    mg_overlap_pair_t *pairs; /* its best pairs, by decreasing score */
    size_t pair_count;      /* pairs detailed (<= opts.max_pairs) */
    size_t pair_total;      /* pairs in the group */
    uint8_t score;          /* its best pair's */
    uint64_t services;      /* union of the pairs' shared services */
    uint64_t publics;       /* union of the pairs' shared specific publics */
    bool all_publics;       /* some pair serves everyone */
    float max_distance_km;  /* largest known pair distance, -1 if none */
    mg_hours_t slots;       /* when at least two members with readable
                               horaires are open at the same time */
    bool hours_known;       /* some pair had known hours */
} mg_overlap_group_t;

typedef struct {
    mg_overlap_group_t *groups; /* ranked, most serious first */
    size_t group_count;
    size_t offers_considered;   /* offers with the service (all if none) */
    size_t duplicate_pairs;     /* pairs left out as probable duplicates */
} mg_overlaps_t;

/* Finds the groups. Offers juxtapose when they are from different
   structures and are not probable duplicates of each other (those are
   `maillage duplicates`' business), share a service, serve a common
   public (no specific public = everyone), are in the same commune or
   within `within_km`, and, when both give readable horaires, are open
   at the same time. Groups are the connected sets of such pairs.
   Caller owns *out. */
int mg_overlaps_find(const mg_analysis_t *an, const mg_overlap_opts_t *opts,
                     mg_overlaps_t **out, mg_why_t *why);
void mg_overlaps_destroy(mg_overlaps_t **self_p);

/* The slots a pair is open together (empty when hours are unknown). */
void mg_overlap_pair_slots(const mg_analysis_t *an,
                           const mg_overlap_pair_t *pair, mg_hours_t *out);

/* ------------------------------------------------------------------ */
/* Duplicates                                                           */

/* Evidence a pair may have (bits of mg_dup_pair_t.evidence). */
#define MG_DUP_PIVOT    0x0001u  /* same real SIRET/RNA */
#define MG_DUP_PHONE    0x0002u  /* same phone number */
#define MG_DUP_EMAIL    0x0004u  /* a shared e-mail address */
#define MG_DUP_NAME     0x0008u  /* names similar (ratio >= 80) */
#define MG_DUP_ADDRESS  0x0010u  /* addresses similar (ratio >= 80), same commune */
#define MG_DUP_NEAR     0x0020u  /* coordinates <= max_m apart */
#define MG_DUP_FAR      0x0040u  /* coordinates > 1 km apart: one is wrong,
                                    or they are two places */
#define MG_DUP_NO_COORDS 0x0080u /* a coordinate is missing: distance unknown */
#define MG_DUP_SAME_SOURCE 0x0100u /* both from the same `source` */

/* The rule that made a pair a duplicate. */
typedef enum {
    MG_DUP_RULE_PIVOT = 1,   /* same real SIRET at the same place */
    MG_DUP_RULE_CONTACT,     /* same phone or e-mail at the same place */
    MG_DUP_RULE_PLACE,       /* same name, same address, same spot */
} mg_dup_rule_t;

typedef struct {
    uint32_t a, b;          /* offer indexes, a < b */
    uint16_t evidence;      /* MG_DUP_* bits */
    uint8_t rule;           /* mg_dup_rule_t */
    uint8_t score;          /* 0..100 */
    uint8_t name_ratio;     /* mg_fuzzy_ratio of the folded names */
    uint8_t address_ratio;  /* of the normalised addresses */
    float distance_m;       /* < 0: unknown */
} mg_dup_pair_t;

typedef struct {
    uint32_t *offers;
    size_t offer_count;
    mg_dup_pair_t *pairs;   /* the pairs that joined it, by decreasing score */
    size_t pair_count;
    uint8_t score;          /* its best pair's */
} mg_dup_group_t;

typedef struct {
    mg_dup_group_t *groups; /* by decreasing score */
    size_t group_count;
    size_t pair_count;      /* all duplicate pairs */
    size_t candidates;      /* pairs compared */
} mg_duplicates_t;

typedef struct {
    double max_m;           /* "the same spot": <= this many metres (100) */
} mg_dup_opts_t;

/* Finds groups of offers describing the same place. A pair is a
   duplicate when (docs/analysis.md):
     pivot   - same real SIRET and the same place (addresses similar in
               the same commune with the same house number, or
               coordinates <= max_m);
     contact - same phone or e-mail and the same place;
     place   - similar names (>= 80) and addresses (>= 80) in the same
               commune with coordinates <= max_m apart, or, when a
               coordinate is missing, names and addresses >= 90: a
               missing coordinate is never taken as a match.
   Groups are connected sets of duplicate pairs. Caller owns *out. */
int mg_duplicates_find(const mg_analysis_t *an, const mg_dup_opts_t *opts,
                       mg_duplicates_t **out, mg_why_t *why);
void mg_duplicates_destroy(mg_duplicates_t **self_p);

/* Judges one pair with the rule above, whatever candidate search would
   have found: fills *pair (ratios, distance, evidence; rule 0 when it is
   not a duplicate) and returns whether it is one. For explaining why a
   pair was or was not kept. */
bool mg_duplicates_judge(const mg_analysis_t *an, const mg_dup_opts_t *opts,
                         uint32_t i, uint32_t j, mg_dup_pair_t *pair);

/* The national cartography's rule, for comparison: pairs of lieux with
   the same INSEE code (the offer's, or the communes table's; the postal
   code when neither is known), different `source` and different `id`,
   whose score trunc((name + address + distance) / 3) is above 83, where
   name and address are fuzzball ratios (mg_fuzzy_process then
   mg_fuzzy_ratio) and distance = 100 below 0.0004 degrees, else
   trunc(100 / (1000 d + 1)) with d the Euclidean distance in degrees,
   and d = 0 (score 100) when a coordinate is missing. */
typedef struct {
    uint32_t a, b;
    uint8_t score, name, address, distance;
} mg_national_pair_t;

/* Caller owns *pairs (free()). Sorted by decreasing score. */
int mg_duplicates_national(const mg_analysis_t *an,
                           mg_national_pair_t **pairs, size_t *count,
                           mg_why_t *why);

/* The national rule on one pair: fills *pair's scores; returns whether
   it keeps the pair, else *why_not (may be NULL) says why, in French
   ("même source", "score national de 83 ou moins"...). */
bool mg_duplicates_national_judge(const mg_analysis_t *an, uint32_t i,
                                  uint32_t j, mg_national_pair_t *pair,
                                  const char **why_not);

/* ------------------------------------------------------------------ */
/* Gaps: zones carencées                                                */

typedef enum {
    MG_GAP_SERVICE = 1,     /* offers of one service */
    MG_GAP_PUBLIC,          /* offers dedicated to one specific public */
} mg_gap_kind_t;

/* One place of the territory without access: a commune, or the part of
   a commune nouvelle that was a delegated commune. */
typedef struct {
    uint32_t commune;       /* index in the communes table */
    int64_t population;     /* inhabitants of this unit */
    float nearest_km;       /* nearest qualifying offer; < 0: none within
                               MG_GAPS_SEARCH_KM */
} mg_gap_row_t;

#define MG_GAPS_SEARCH_KM 200.0

typedef struct {
    mg_gap_kind_t kind;
    unsigned bit;           /* label bit in MG_AF_SERVICES / MG_AF_PUBLICS */
    const char *label;
    size_t offers;          /* located offers that qualify */
    int64_t population;     /* territory population (counted units) */
    int64_t covered;        /* of which within reach */
    size_t units, uncovered_units;
    mg_gap_row_t *rows;     /* uncovered units by decreasing population */
    size_t row_count;
} mg_gap_t;

typedef struct {
    mg_gap_t *items;        /* services in label order, then publics */
    size_t count;
    double within_km;
    int64_t population;     /* of the territory (COM units) */
    size_t units;           /* places evaluated (COM parts and COMD) */
    size_t units_unplaced;  /* units without centre (left out) */
    int64_t population_unplaced;
    size_t offers_coords, offers_centre, offers_unlocated;
} mg_gaps_t;

typedef struct {
    double within_km;       /* 10 km by default (0 means 10) */
    const char *service;    /* only this service (NULL: every service) */
    const char *public_;    /* only offers serving this public (a specific
                               one, or everyone) and its dedicated row */
} mg_gaps_opts_t;

/* For each service, the units of the territory (the communes table) with
   no offer of it within `within_km` of their centre; for each specific
   public, the units with no offer dedicated to it. Population: a COM
   counts its own population minus that of its COMD/ARM parts, each part
   counts its own, so nothing is counted twice. Offers anywhere in the
   store count (a service just across the border is within reach).
   Caller owns *out. MG_ERR_ARG when the analysis has no communes table. */
int mg_gaps_find(const mg_analysis_t *an, const mg_gaps_opts_t *opts,
                 mg_gaps_t **out, mg_why_t *why);
void mg_gaps_destroy(mg_gaps_t **self_p);

/* ------------------------------------------------------------------ */
/* Complementarities                                                    */

typedef struct {
    uint32_t structure;     /* the other structure */
    uint32_t offer;         /* its offer nearest to ours */
    float distance_km;
    uint64_t services_new;  /* services it offers that we do not */
    uint64_t publics_new;   /* specific publics it addresses, we do not */
    uint64_t prise_new;     /* specific support it gives, we do not */
    uint64_t accomp_new;    /* modalités d'accompagnement we lack */
    uint64_t services_shared;
    uint64_t publics_shared;
} mg_partner_t;

typedef struct {
    uint64_t services, publics, prise, accomp; /* ours */
    mg_partner_t *partners;  /* bring something we lack: most first */
    size_t partner_count;
    mg_partner_t *peers;     /* offer what we offer: nearest first */
    size_t peer_count;
    size_t our_offers;       /* located offers of ours used */
} mg_complements_t;

/* Structures with an offer within `within_km` of one of the offers
   `ours` (indexes) that are not ours. Caller owns *out. */
int mg_complements_find(const mg_analysis_t *an, const uint32_t *ours,
                        size_t our_count, double within_km,
                        mg_complements_t **out, mg_why_t *why);
void mg_complements_destroy(mg_complements_t **self_p);

/* ------------------------------------------------------------------ */
/* Check: the eight questions of the guidance                          */

typedef enum {
    MG_Q_QUI = 0,      /* Qui êtes-vous ? */
    MG_Q_QUOI,         /* Que proposez-vous ? */
    MG_Q_POUR_QUI,     /* Pour qui ? */
    MG_Q_OU,           /* Où ? */
    MG_Q_DUREE,        /* Quelle durée ? */
    MG_Q_FREQUENCE,    /* Quelle fréquence ? */
    MG_Q_MODALITES,    /* Quelles modalités ? */
    MG_Q_DEMARCHE,     /* Quelle démarche ? */
    MG_Q_COUNT
} mg_question_t;

/* "Qui êtes-vous ?" ... */
const char *mg_question_text(mg_question_t q);

/* An offer not updated for this long gets a reminder (6 months). */
#define MG_STALE_DAYS 183

typedef struct {
    bool answered[MG_Q_COUNT];
    char missing[MG_Q_COUNT][256]; /* unanswered: what to add */
    char advice[MG_Q_COUNT][256];  /* answered, but could say more ("") */
    int score;                     /* answered questions, percent */
    int64_t last_update_ms;        /* later of date_maj and the version */
    int days_since_update;
    bool stale;                    /* > MG_STALE_DAYS */
    bool hours_unreadable;
    char hours_why[256];
} mg_check_t;

/* Which questions `offer` answers. `profile` (may be NULL) is the
   author's profile: its contacts answer "Qui êtes-vous ?" too.
   `updated_ms` is the signed version's time; `now_ms` today. */
void mg_check_offer(const mg_body_t *offer, const mg_body_t *profile,
                    int64_t updated_ms, int64_t now_ms, mg_check_t *out);

/* ------------------------------------------------------------------ */
/* Diagnostic helpers                                                   */

/* The objective (Pour quoi ?) a service serves, in the guidance's
   words, or NULL for an unknown label. */
const char *mg_service_objective(const char *service);

/* The French name of a typologie code (ASSO -> "Association"), or NULL. */
const char *mg_typologie_name(const char *code);

#endif
