/*  test_events.c - events, replies and notes across real nodes.

    Four structures, each a real `maillage` data folder made by the real
    binary (init, profile set), each with a real node engine
    (mg_node_new) bound on tcp://127.0.0.1 with a port read back:
      A  Angoulême (16)  organises; listens, the others dial it
      B  Cognac (16)     invited; replies, changes its mind, goes offline
      C  Bordeaux (33)   not invited; searches A's notes
      D  La Couronne (16) invited; replies
    Every user action is the CLI, run as a user would; the test only
    reads the stores to wait for replication, polling each condition
    until a deadline (never a fixed sleep). test_tally_order checks the
    tally's order on two stores directly. */
#include <czmq.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mg_event.h"
#include "mg_node.h"
#include "mg_store.h"
#include "mg_test.h"
#include "mg_testlib.h"
#include "mg_text.h"

static char s_root[256];

/* A structure made by the real command line, with its profile set. */
static void s_node_init(mg_test_node_t *n, const char *name, const char *nom,
                        const char *commune, const char *cp, const char *insee)
{
    mg_test_node_init_cli(n, s_root, name, nom);
    CHECK(mg_test_cli(n->dir, NULL, "profile set --commune \"%s\" --code-postal %s "
                      "--code-insee %s --adresse \"1 place de la Mairie\"",
                      commune, cp, insee) == 0);
}

/* Does node n hold (author, rid) live, with body field == value (when
   field is set), or as a tombstone (when deleted)? */
typedef struct {
    mg_test_node_t *n;
    const uint8_t *author;
    const char *rid;
    const char *field;
    const char *value;
    bool deleted;
} s_has_t;

static bool s_has(void *arg)
{
    s_has_t *h = arg;
    mg_record_t *r = NULL;
    bool ok = false;
    if (mg_store_get(h->n->store, h->author, h->rid, &r, NULL) == MG_OK) {
        if (h->deleted) {
            ok = mg_record_deleted(r);
        } else if (!mg_record_deleted(r)) {
            const char *v = h->field ? mg_body_str(mg_record_body(r), h->field)
                                     : NULL;
            ok = !h->field || (h->value ? v && strcmp(v, h->value) == 0 : v != NULL);
        }
    }
    mg_record_destroy(&r);
    return ok;
}

static bool s_wait_has(mg_test_node_t *n, const uint8_t *author, const char *rid,
                       const char *field, const char *value, bool deleted)
{
    s_has_t h = {n, author, rid, field, value, deleted};
    return mg_test_wait(s_has, &h, 20000);
}

/* Is there an object with "id" == id in the JSON array? */
static json_t *s_find_id(json_t *array, const char *id)
{
    size_t i;
    json_t *v;
    json_array_foreach(array, i, v) {
        const char *x = json_string_value(json_object_get(v, "id"));
        if (x && strcmp(x, id) == 0)
            return v;
    }
    return NULL;
}

/* The tally of `event` at node n, as compact sorted JSON (caller frees). */
static char *s_tally(mg_test_node_t *n, const char *event)
{
    json_t *j = mg_test_cli_json(n->dir, NULL, "event show %s --json", event);
    char *s = j ? json_dumps(json_object_get(j, "reponses"),
                             JSON_COMPACT | JSON_SORT_KEYS)
                : NULL;
    json_decref(j);
    return s;
}

/* A date `days` from now at HH:00 Paris time, as the CLI takes it. */
static void s_future(int days, int hour, char out[32])
{
    mg_civil_t c;
    mg_paris_local(zclock_time() + (int64_t) days * 86400000, &c);
    snprintf(out, 32, "%04d-%02d-%02dT%02d:00", c.year % 10000, c.month % 100,
             c.day % 100, hour % 100);
}

static void s_hex(const uint8_t *key, char out[65])
{
    mg_hex_encode(key, 32, out);
}

/* ------------------------------------------------------------------ */

static void test_events_and_notes(void)
{
    mg_test_node_t n[4];
    mg_test_node_t *A = &n[0], *B = &n[1], *C = &n[2], *D = &n[3];
    s_node_init(A, "A", "Médiathèque d'Angoulême", "Angoulême", "16000", "16015");
    s_node_init(B, "B", "Centre social de Cognac", "Cognac", "16100", "16102");
    s_node_init(C, "C", "Espace numérique de Bordeaux", "Bordeaux", "33000", "33063");
    s_node_init(D, "D", "Mairie de La Couronne", "La Couronne", "16400", "16113");
    CHECK(mg_test_node_start(A, true, NULL, 10000));
    for (int i = 1; i < 4; i++) {
        mg_store_peer_add(n[i].store, A->id.pk, A->endpoint, "invite",
                          zclock_time(), NULL, NULL);
        CHECK(mg_test_node_start(&n[i], false, NULL, 10000));
    }
    /* Everyone knows everyone's profile (names in the tallies). */
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 4; k++)
            CHECK(s_wait_has(&n[i], n[k].id.pk, "profile", "nom", NULL, false));

    /* A invites département 16, 3 seats. */
    char start[32], hexa[65];
    s_future(30, 14, start);
    s_hex(A->id.pk, hexa);
    json_t *j = mg_test_cli_json(A->dir, NULL,
                       "event add --title \"Atelier « numérique », tarifs; 2027\" "
                       "--start %s --end 17:00 --place \"1 place de l'Hôtel de Ville\" "
                       "--commune Angoulême --code-postal 16000 --territory 16 "
                       "--capacity 3 --services \"Aide aux démarches administratives\" "
                       "--registration \"Par téléphone\" --json",
                       start);
    const char *id_s = j ? json_string_value(json_object_get(j, "id")) : NULL;
    char id[32] = "";
    snprintf(id, sizeof id, "%s", id_s ? id_s : "none");
    json_decref(j);
    CHECK(strlen(id) == 16);
    for (int i = 1; i < 4; i++)
        CHECK(s_wait_has(&n[i], A->id.pk, id, "titre", NULL, false));

    /* B (16) and D (16) are invited, C (33) is not, A organises. */
    j = mg_test_cli_json(B->dir, NULL, "invitations --json");
    CHECK(s_find_id(j, id) != NULL);
    json_decref(j);
    j = mg_test_cli_json(D->dir, NULL, "invitations --json");
    CHECK(s_find_id(j, id) != NULL);
    json_decref(j);
    j = mg_test_cli_json(C->dir, NULL, "invitations --json");
    CHECK(j && s_find_id(j, id) == NULL);
    json_decref(j);
    j = mg_test_cli_json(A->dir, NULL, "invitations --json");
    CHECK(j && s_find_id(j, id) == NULL);
    json_decref(j);
    /* C still sees it in the network's events, A as its own. */
    j = mg_test_cli_json(C->dir, NULL, "event list --json");
    CHECK(s_find_id(j, id) != NULL);
    json_decref(j);
    j = mg_test_cli_json(A->dir, NULL, "event list --mine --json");
    json_t *mine = s_find_id(j, id);
    CHECK(mine && json_is_true(json_object_get(mine, "j_organise")));
    json_decref(j);

    /* B then D answer yes, 2 seats each: 4 > 3, D waits. */
    char rsvp_rid[MG_RSVP_RID_LEN + 1];
    mg_rsvp_rid(A->id.pk, id, rsvp_rid);
    char *out = NULL;
    CHECK(mg_test_cli(B->dir, &out, "rsvp %.8s --yes --seats 2 --comment "
                "\"Nous venons à deux, merci !\"", id) == 0);
    free(out);
    CHECK(s_wait_has(D, B->id.pk, rsvp_rid, "reponse", "oui", false));
    CHECK(mg_test_cli(D->dir, NULL, "rsvp %s --yes --seats 2", id) == 0);
    for (int i = 0; i < 4; i++) {
        CHECK(s_wait_has(&n[i], B->id.pk, rsvp_rid, "reponse", "oui", false));
        CHECK(s_wait_has(&n[i], D->id.pk, rsvp_rid, "reponse", "oui", false));
    }
    /* Answered: no longer an invitation. */
    j = mg_test_cli_json(B->dir, NULL, "invitations --json");
    CHECK(j && s_find_id(j, id) == NULL);
    json_decref(j);

    char *ta = s_tally(A, id), *tb = s_tally(B, id), *td = s_tally(D, id);
    CHECK(ta && tb && td && strcmp(ta, tb) == 0 && strcmp(ta, td) == 0);
    json_error_t err;
    json_t *t = ta ? json_loads(ta, 0, &err) : NULL;
    json_t *confirmed = json_object_get(t, "confirmees");
    json_t *waiting = json_object_get(t, "liste_attente");
    char hexb[65], hexd[65];
    s_hex(B->id.pk, hexb);
    s_hex(D->id.pk, hexd);
    CHECK(json_array_size(confirmed) == 1 && json_array_size(waiting) == 1);
    CHECK_STR(json_string_value(json_object_get(json_array_get(confirmed, 0), "auteur")), hexb);
    CHECK_STR(json_string_value(json_object_get(json_array_get(confirmed, 0), "commentaire")),
              "Nous venons à deux, merci !");
    CHECK_STR(json_string_value(json_object_get(json_array_get(waiting, 0), "auteur")), hexd);
    CHECK(json_integer_value(json_object_get(json_array_get(waiting, 0), "position")) == 1);
    CHECK(json_integer_value(json_object_get(t, "places_confirmees")) == 2);
    CHECK(json_integer_value(json_object_get(t, "places_en_attente")) == 2);
    CHECK(json_integer_value(json_object_get(t, "capacite")) == 3);
    json_decref(t);
    free(ta);
    free(tb);
    free(td);
    /* The organiser's text view shows the waiting list. */
    CHECK(mg_test_cli(A->dir, &out, "event show %s", id) == 0);
    CHECK(out && strstr(out, "Liste d'attente") && strstr(out, "Mairie de La Couronne"));
    free(out);

    /* B changes its mind: its reply is replaced everywhere, D gets in. */
    CHECK(mg_test_cli(B->dir, NULL, "rsvp %s --no", id) == 0);
    for (int i = 0; i < 4; i++)
        CHECK(s_wait_has(&n[i], B->id.pk, rsvp_rid, "reponse", "non", false));
    ta = s_tally(A, id);
    tb = s_tally(B, id);
    td = s_tally(D, id);
    CHECK(ta && tb && td && strcmp(ta, tb) == 0 && strcmp(ta, td) == 0);
    t = ta ? json_loads(ta, 0, &err) : NULL;
    confirmed = json_object_get(t, "confirmees");
    CHECK(json_array_size(confirmed) == 1
          && json_array_size(json_object_get(t, "liste_attente")) == 0
          && json_array_size(json_object_get(t, "non")) == 1);
    CHECK_STR(json_string_value(json_object_get(json_array_get(confirmed, 0), "auteur")), hexd);
    json_decref(t);
    free(ta);
    free(tb);
    free(td);

    /* B goes offline; A cancels; D sees it at once, B after coming back. */
    zactor_destroy(&B->actor);
    CHECK(mg_test_cli(A->dir, NULL, "event cancel %s --reason \"Salle indisponible, désolés\"",
                id) == 0);
    CHECK(s_wait_has(D, A->id.pk, id, "annule_le", NULL, false));
    j = mg_test_cli_json(B->dir, NULL, "event list --json");
    json_t *ev = s_find_id(j, id);
    CHECK(ev && json_is_false(json_object_get(ev, "annule")));
    json_decref(j);
    CHECK(mg_test_node_start(B, false, NULL, 10000));
    CHECK(s_wait_has(B, A->id.pk, id, "annule_le", NULL, false));
    j = mg_test_cli_json(B->dir, NULL, "event list --json");
    ev = s_find_id(j, id);
    CHECK(ev && json_is_true(json_object_get(ev, "annule")));
    CHECK_STR(json_string_value(json_object_get(ev, "motif_annulation")),
              "Salle indisponible, désolés");
    json_decref(j);
    CHECK(mg_test_cli(B->dir, &out, "event list") == 0);
    CHECK(out && strstr(out, "ANNULÉ"));
    free(out);
    /* A reply to a cancelled event is refused, clearly. */
    CHECK(mg_test_cli(B->dir, &out, "rsvp %s --yes", id) == 1);
    CHECK(out && strstr(out, "annulé"));
    free(out);
    /* The calendar marks it cancelled. */
    CHECK(mg_test_cli(B->dir, &out, "export --format ics") == 0);
    CHECK(out && strstr(out, "STATUS:CANCELLED\r\n") && strstr(out, "SUMMARY:ANNULÉ : "));
    free(out);

    /* A reply to a past event is refused too. */
    j = mg_test_cli_json(A->dir, NULL, "event add --title \"Réunion passée\" --start 2024-01-10T10:00 "
               "--end 12:00 --online https://visio.example.org/r --json");
    id_s = j ? json_string_value(json_object_get(j, "id")) : NULL;
    char past[32] = "";
    snprintf(past, sizeof past, "%s", id_s ? id_s : "none");
    json_decref(j);
    /* Past events are listed within the retention period (1 year by
       default): this one ended more than that ago. */
    CHECK(s_wait_has(D, A->id.pk, past, "titre", NULL, false));
    CHECK(mg_test_cli(D->dir, &out, "rsvp %s --yes", past) == 1);
    CHECK(out && strstr(out, "terminé"));
    free(out);
    j = mg_test_cli_json(D->dir, NULL, "event list --past --json");
    CHECK(j && s_find_id(j, past) == NULL);
    json_decref(j);
    CHECK(mg_test_cli(D->dir, NULL, "event retention 3650") == 0);
    j = mg_test_cli_json(D->dir, NULL, "event list --past --json");
    CHECK(s_find_id(j, past) != NULL);
    json_decref(j);

    /* Co-organised with D, open to the whole network: C (33) is invited
       this time, D sees the event as its own, not as an invitation. */
    s_future(40, 9, start);
    j = mg_test_cli_json(A->dir, NULL, "event add --title \"Forum de l'inclusion numérique\" --start %s "
               "--end 18:00 --online https://forum.example.org --partners couronne --json",
               start);
    id_s = j ? json_string_value(json_object_get(j, "id")) : NULL;
    char forum[32] = "";
    snprintf(forum, sizeof forum, "%s", id_s ? id_s : "none");
    json_decref(j);
    CHECK(s_wait_has(C, A->id.pk, forum, "titre", NULL, false));
    CHECK(s_wait_has(D, A->id.pk, forum, "titre", NULL, false));
    j = mg_test_cli_json(C->dir, NULL, "invitations --json");
    CHECK(s_find_id(j, forum) != NULL);
    json_decref(j);
    j = mg_test_cli_json(D->dir, NULL, "invitations --json");
    CHECK(j && s_find_id(j, forum) == NULL);
    json_decref(j);
    j = mg_test_cli_json(D->dir, NULL, "event list --mine --json");
    ev = s_find_id(j, forum);
    CHECK(ev && json_is_true(json_object_get(ev, "je_suis_partenaire")));
    CHECK(j && s_find_id(j, id) == NULL);
    json_decref(j);
    /* Only the organiser signs the event. */
    CHECK(mg_test_cli(D->dir, &out, "event update %s --title Pirate", forum) == 1);
    CHECK(out && strstr(out, "autre structure"));
    free(out);

    /* Notes: written at A, found at C without accents. */
    j = mg_test_cli_json(A->dir, NULL, "note add --title \"Accompagner les démarches administratives\" "
               "--tags \"ANTS,seniors\" --text \"Permanence du mardi : dossiers "
               "CAF, impôts, carte grise.\" --json");
    id_s = j ? json_string_value(json_object_get(j, "id")) : NULL;
    char note[32] = "";
    snprintf(note, sizeof note, "%s", id_s ? id_s : "none");
    json_decref(j);
    CHECK(s_wait_has(C, A->id.pk, note, "titre", NULL, false));
    j = mg_test_cli_json(C->dir, NULL, "note search demarches --json");
    json_t *hit = s_find_id(j, note);
    CHECK(hit != NULL);
    const char *snip = json_string_value(json_object_get(hit, "extrait"));
    CHECK(snip && strstr(snip, "<mark>démarches</mark>"));
    json_decref(j);
    j = mg_test_cli_json(C->dir, NULL, "note search ADMINISTRAT --json"); /* prefix, case */
    CHECK(s_find_id(j, note) != NULL);
    json_decref(j);

    /* Updated: found by its new words, not by its old ones. */
    CHECK(mg_test_cli(A->dir, NULL, "note update %s --title \"Permanence permis de conduire\" "
                "--text \"France Services aide pour le permis, en ligne sur le site de l'ANTS.\"",
                note) == 0);
    CHECK(s_wait_has(C, A->id.pk, note, "titre", "Permanence permis de conduire", false));
    j = mg_test_cli_json(C->dir, NULL, "note search permis --json");
    CHECK(s_find_id(j, note) != NULL);
    json_decref(j);
    j = mg_test_cli_json(C->dir, NULL, "note search demarches --json");
    CHECK(j && s_find_id(j, note) == NULL);
    json_decref(j);
    j = mg_test_cli_json(C->dir, NULL, "note search carte grise --json");
    CHECK(j && json_array_size(j) == 0);
    json_decref(j);

    /* Deleted: gone from C's search and list. */
    CHECK(mg_test_cli(A->dir, NULL, "note rm %s", note) == 0);
    CHECK(s_wait_has(C, A->id.pk, note, NULL, NULL, true));
    j = mg_test_cli_json(C->dir, NULL, "note search permis --json");
    CHECK(j && json_array_size(j) == 0);
    json_decref(j);
    j = mg_test_cli_json(C->dir, NULL, "note list --json");
    CHECK(j && s_find_id(j, note) == NULL);
    json_decref(j);

    for (int i = 0; i < 4; i++) {
        CHECK(mg_store_check(n[i].store, NULL) == MG_OK);
        mg_test_node_destroy(&n[i]);
    }
}

/* The tally's order on its own: replies applied in opposite orders to
   two stores give the same tally; equal times fall back to the key; a
   later small request never overtakes an earlier one that did not fit. */
static void s_sign_apply(mg_store_t *store, const mg_identity_t *id,
                         const char *kind, const char *rid, int64_t created,
                         const mg_body_t *body)
{
    mg_record_t *r = NULL;
    mg_why_t why;
    CHECK_RC(mg_record_sign(id, kind, rid, 1, created, false, body, &r, &why),
             MG_OK);
    CHECK_RC(mg_store_apply_record(store, r, NULL, &why), MG_OK);
    mg_record_destroy(&r);
}

static void test_tally_order(void)
{
    mg_store_t *st[2];
    char path[400];
    for (int s = 0; s < 2; s++) {
        snprintf(path, sizeof path, "%s/tally-%d.db", s_root, s);
        CHECK_RC(mg_store_open(path, &st[s], NULL), MG_OK);
    }
    mg_identity_t org, rep[4];
    mg_identity_generate(&org);
    for (int i = 0; i < 4; i++)
        mg_identity_generate(&rep[i]);
    mg_body_t *ev = mg_body_new();
    mg_body_set_str(ev, "titre", "Atelier");
    mg_body_set_str(ev, "debut", "2030-01-10T13:00:00Z");
    mg_body_set_str(ev, "fin", "2030-01-10T16:00:00Z");
    mg_body_set_str(ev, "en_ligne", "https://example.org/a");
    mg_body_set_num(ev, "capacite", 3);
    char hex[65], rid[MG_RSVP_RID_LEN + 1];
    mg_hex_encode(org.pk, 32, hex);
    mg_rsvp_rid(org.pk, "atelier", rid);
    /* Replies 1 and 2 share a time: the smaller key comes first. */
    int64_t created[4] = {1000, 2000, 2000, 3000};
    int seats[4] = {1, 2, 2, 1};
    for (int k = 0; k < 2; k++) {
        s_sign_apply(st[k], &org, "event", "atelier", 1, ev);
        for (int j = 0; j < 4; j++) {
            int i = k == 0 ? j : 3 - j;
            mg_body_t *b = mg_body_new();
            mg_body_set_str(b, "evenement_auteur", hex);
            mg_body_set_str(b, "evenement_id", "atelier");
            mg_body_set_str(b, "reponse", "oui");
            mg_body_set_num(b, "places", seats[i]);
            s_sign_apply(st[k], &rep[i], "rsvp", rid, created[i], b);
            mg_body_destroy(&b);
        }
    }
    /* A reply under another id does not count. */
    mg_body_t *b = mg_body_new();
    mg_body_set_str(b, "evenement_auteur", hex);
    mg_body_set_str(b, "evenement_id", "atelier");
    mg_body_set_str(b, "reponse", "oui");
    s_sign_apply(st[0], &rep[0], "rsvp", "rsvp-autre", 500, b);
    mg_body_destroy(&b);
    mg_body_destroy(&ev);

    mg_tally_t *t[2] = {NULL, NULL};
    for (int k = 0; k < 2; k++)
        CHECK_RC(mg_store_event_tally(st[k], org.pk, "atelier", &t[k], NULL), MG_OK);
    CHECK(t[0] && t[1] && t[0]->count == 4 && t[1]->count == 4);
    if (t[0] && t[1] && t[0]->count == 4 && t[1]->count == 4) {
        int first = memcmp(rep[1].pk, rep[2].pk, 32) < 0 ? 1 : 2;
        int second = 3 - first;
        const int order[4] = {0, first, second, 3};
        for (int i = 0; i < 4; i++) {
            CHECK(memcmp(t[0]->replies[i].author, rep[order[i]].pk, 32) == 0);
            CHECK(memcmp(t[0]->replies[i].author, t[1]->replies[i].author, 32) == 0);
            CHECK(t[0]->replies[i].status == t[1]->replies[i].status);
            CHECK(t[0]->replies[i].position == t[1]->replies[i].position);
        }
        /* 1 + 2 = 3 seats: confirmed; then 2 does not fit: waits; then 1
           would fit but waits behind it. */
        CHECK(t[0]->replies[0].status == MG_REPLY_CONFIRMED);
        CHECK(t[0]->replies[1].status == MG_REPLY_CONFIRMED);
        CHECK(t[0]->replies[2].status == MG_REPLY_WAITING
              && t[0]->replies[2].position == 1);
        CHECK(t[0]->replies[3].status == MG_REPLY_WAITING
              && t[0]->replies[3].position == 2);
        CHECK(t[0]->seats_confirmed == 3 && t[0]->seats_waiting == 3);
    }
    for (int k = 0; k < 2; k++) {
        mg_tally_destroy(&t[k]);
        mg_store_destroy(&st[k]);
    }
}

int main(void)
{
    zsys_init();
    zsys_set_logstream(stderr);
    snprintf(s_root, sizeof s_root, "/tmp/mg-test-events-XXXXXX");
    if (!mkdtemp(s_root))
        return 1;
    test_tally_order();
    test_events_and_notes();
    int rc = mg_test_done("test_events");
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_root);
    if (rc == 0 && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", s_root);
    return rc;
}
