/*  mg_error.c - result codes and explanations. */
#include "mg_error.h"

#include <stdarg.h>
#include <stdio.h>

const char *mg_strerror(int rc)
{
    switch (rc) {
    case MG_OK: return "succès";
    case MG_ERR_NOMEM: return "mémoire insuffisante";
    case MG_ERR_MALFORMED: return "données mal formées";
    case MG_ERR_SIGNATURE: return "signature invalide";
    case MG_ERR_TOO_LARGE: return "taille maximale dépassée";
    case MG_ERR_UTF8: return "texte qui n'est pas de l'UTF-8 valide";
    case MG_ERR_SCHEMA: return "champ absent, mal typé ou valeur non autorisée";
    case MG_ERR_STALE: return "version plus ancienne que celle déjà connue";
    case MG_ERR_DB: return "erreur de la base de données";
    case MG_ERR_NOT_FOUND: return "introuvable";
    case MG_ERR_AMBIGUOUS: return "identifiant ambigu";
    case MG_ERR_IO: return "erreur de lecture ou d'écriture";
    case MG_ERR_EXISTS: return "existe déjà";
    case MG_ERR_BUSY: return "base de données occupée";
    case MG_ERR_PERM: return "droits d'accès incorrects";
    case MG_ERR_ARG: return "argument invalide";
    case MG_ERR_FORBIDDEN: return "opération non autorisée";
    default: return "erreur inconnue";
    }
}

int mg_why_set(mg_why_t *why, int rc, const char *fmt, ...)
{
    if (why) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(why->text, sizeof why->text, fmt, ap);
        va_end(ap);
        /* A cut message must not end inside a UTF-8 character: step back
           over continuation bytes to the last complete one. */
        if (n >= (int) sizeof why->text) {
            size_t end = sizeof why->text - 1;
            size_t lead = end;
            while (lead > 0 && ((unsigned char) why->text[lead - 1] & 0xC0) == 0x80)
                lead--;
            if (lead > 0) {
                unsigned char c = (unsigned char) why->text[lead - 1];
                size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
                if (end - (lead - 1) < need)
                    why->text[lead - 1] = '\0';
            }
        }
    }
    return rc;
}

void mg_why_clear(mg_why_t *why)
{
    if (why)
        why->text[0] = '\0';
}
