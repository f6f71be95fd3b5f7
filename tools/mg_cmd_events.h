/*  mg_cmd_events.h - the commands around events, replies and notes:
    event, invitations, rsvp, note, and `export --format ics`
    (docs/events.md). argv[0] is the command; `dir` is the --dir option
    (NULL when not given). Each returns the process exit code: 0, 1 when
    the work failed, 2 for a usage error. */
#ifndef MG_CMD_EVENTS_H
#define MG_CMD_EVENTS_H

int mg_cmd_event(int argc, char **argv, const char *dir);
int mg_cmd_invitations(int argc, char **argv, const char *dir);
int mg_cmd_rsvp(int argc, char **argv, const char *dir);
int mg_cmd_note(int argc, char **argv, const char *dir);
/* `maillage export --format ics ...`: argv is export's. */
int mg_cmd_export_ics(int argc, char **argv, const char *dir);

#endif
