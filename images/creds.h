/*
 * Private to images/: registry credentials (creds.c) from docker's
 * config.json, and the Basic Authorization value made of them.
 */
#ifndef KCI_IMAGES_CREDS_H
#define KCI_IMAGES_CREDS_H

#include <stddef.h>

#include "common/err.h"

struct auth_creds {
	char *username;
	char *password;
};

/* $DOCKER_CONFIG/config.json, else $HOME/.docker/config.json (malloc'd); NULL without HOME. */
char *auth_config_path(void);

/*
 * Credentials for `registry` (host[:port], "registry-1.docker.io" for Docker
 * Hub) from a config.json text. 0 and *out filled; KCI_NOTFOUND when there is
 * no usable entry; KCI_INVALID for malformed JSON or when only a credential
 * helper (credHelpers, credsStore) could supply them, which kci does not run.
 */
int auth_config_parse(const char *json, size_t len, const char *registry, struct auth_creds *out,
		      struct kci_err *err);
/* The same from a file (bounded read); a missing file is KCI_NOTFOUND. */
int auth_lookup(const char *path, const char *registry, struct auth_creds *out,
		struct kci_err *err);
void auth_creds_clear(struct auth_creds *c);
/* "Basic base64(user:password)", malloc'd. */
char *auth_basic_value(const struct auth_creds *c);

#endif
