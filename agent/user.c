/*
 * The image's USER: "name", "uid", "name:group" or "uid:gid", resolved
 * against the guest's own /etc/passwd and /etc/group (a static PID 1 has
 * no NSS to ask).
 */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/internal.h"

/* Decimal id, or -1 when s is not a plain number. */
static long
parse_id(const char *s)
{
	char *end;
	long v;

	if (!*s)
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	return *end || errno || v < 0 || v > 0x7fffffff ? -1 : v;
}

/*
 * Finds `name` (or numeric `id` when name is NULL) in a passwd/group-style
 * file: field 0 name, field 2 id, field 3 (passwd) primary gid, field 5
 * (passwd) home, copied into home[PATH_MAX] when home is not NULL.
 */
static int
lookup(const char *file, const char *name, long id, long *out_id, long *out_gid, char *home)
{
	FILE *f = fopen(file, "re");
	char line[1024];
	int found = 0;

	if (!f)
		return -ENOENT;
	while (!found && fgets(line, sizeof(line), f)) {
		char *fields[6] = { 0 }, *p = line;
		int n = 0;
		line[strcspn(line, "\n")] = '\0';
		/* strsep keeps empty fields ("name::0:0"), unlike strtok. */
		while (n < 6 && (fields[n] = strsep(&p, ":")))
			n++;
		if (n < 3)
			continue;
		long fid = parse_id(fields[2]);
		if (fid < 0 || (name ? strcmp(fields[0], name) != 0 : fid != id))
			continue;
		*out_id = fid;
		if (out_gid)
			*out_gid = n >= 4 ? parse_id(fields[3]) : -1;
		if (home && n >= 6 && fields[5][0] == '/')
			snprintf(home, PATH_MAX, "%s", fields[5]);
		found = 1;
	}
	fclose(f);
	return found ? 0 : -ENOENT;
}

/*
 * Resolves an image USER spec against the guest's /etc/passwd and /etc/group
 * (home: PATH_MAX buffer or NULL); -errno.
 */
static int
user_resolve(const char *spec, uid_t *uid, gid_t *gid, char *home)
{
	char buf[256];
	char *group;
	long u = -1, g = -1, pw_gid = -1;

	if (strlen(spec) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, spec);
	group = strchr(buf, ':');
	if (group)
		*group++ = '\0';
	if ((u = parse_id(buf)) >= 0) {
		/* A numeric uid needs no passwd entry; its primary group comes from one if any. */
		if (lookup("/etc/passwd", NULL, u, &u, &pw_gid, home) < 0)
			pw_gid = 0;
	} else if (lookup("/etc/passwd", buf, -1, &u, &pw_gid, home) < 0) {
		return -ENOENT;
	}
	if (group && *group) {
		if ((g = parse_id(group)) < 0 &&
		    lookup("/etc/group", group, -1, &g, NULL, NULL) < 0)
			return -ENOENT;
	} else {
		g = pw_gid >= 0 ? pw_gid : 0;
	}
	*uid = (uid_t)u;
	*gid = (gid_t)g;
	return 0;
}

int
user_switch(const char *spec)
{
	char home[PATH_MAX] = "";
	uid_t uid;
	gid_t gid;
	int rc;

	if ((rc = user_resolve(spec, &uid, &gid, home)) < 0)
		return rc;
	/* Like docker: HOME follows the user unless the job set it. */
	if (home[0] && !getenv("HOME"))
		setenv("HOME", home, 1);
	/* Groups first: after setuid we could no longer drop root's supplementary groups. */
	if (setgroups(1, &gid) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
		return -errno;
	return 0;
}
