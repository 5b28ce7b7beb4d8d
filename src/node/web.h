/* The browser's side of ternd's API (docs/api.md "Sessions", docs/web.md):
 * the web UI's files at / and /ui/, and sessions. A browser logs in once
 * with the admin token (POST /api/v1/session) and then carries an
 * HttpOnly, Secure, SameSite=Strict cookie instead of the token; a request
 * that changes something also carries the session's CSRF token in
 * X-CSRF-Token, which the page got with the login and a cross-site page
 * cannot read. Sessions live in this ternd's memory: they end with it, at
 * their expiry, or at logout. */
#ifndef TERN_NODE_WEB_H
#define TERN_NODE_WEB_H

#include <microhttpd.h>
#include <stdbool.h>

#include "node/http.h"

#define WEB_SID_LEN 64 /* hex of 32 random bytes */
#define WEB_COOKIE "tern_session"
#define WEB_CSRF_HEADER "X-CSRF-Token"
#define WEB_TTL_DEFAULT_S (8 * 3600)

/* How long a new session lasts (config key session_ttl_s). */
void web_setup(int ttl_s);

/* For a request that has no valid bearer token: true when it carries a
 * live session's cookie and, unless it only reads (GET, HEAD), the
 * session's CSRF token. A live session without the right CSRF token gets
 * r filled with a 403; no session leaves r alone. */
bool web_authorized(struct MHD_Connection *conn, const char *method, struct reply *r);
/* Requests answered before any authentication: the login itself. */
bool web_public(const char *method, const char *url);
/* The request's session id into sid ("" when it has no cookie). */
void web_session_of(void *conn, char sid[WEB_SID_LEN + 1]);
/* The session exists and has not expired. */
bool web_session_live(const char *sid);

/* GET/HEAD of / and /ui/...: true with *ret when url is one of the UI's
 * paths (answered: the file, 304, or 404). */
bool web_static(struct MHD_Connection *conn, const char *method, const char *url,
                enum MHD_Result *ret);

/* One file of the UI, built into ternd (build/gen/ui_files.c from ui/). */
struct web_file {
    const char *path; /* "/ui/app.js" */
    const char *type; /* its Content-Type */
    const unsigned char *data;
    unsigned long size;
    const char *etag; /* "\"<sha256 prefix>\"" */
};
extern const struct web_file web_files[]; /* ends with path NULL */

#endif
