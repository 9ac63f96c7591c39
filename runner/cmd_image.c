/* The image store commands: `kci pull`, `kci images`, `kci rmi`, `kci prune`, `kci load`. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/xalloc.h"
#include "engine/engine.h"
#include "images/images.h"
#include "runner/cli.h"
#include "vm/vm.h"

/* Opens the store, printing the error; NULL on failure. */
static struct kci_images *
open_images(void)
{
	struct kci_err err = KCI_ERR_INIT;
	struct kci_images *im = NULL;
	char *home = NULL;

	if (kci_home(&home, &err) < 0 || kci_images_open(&im, home, &err) < 0)
		kci_print_error(err.msg);
	free(home);
	return im;
}

static void
human_age(time_t t, char *buf, size_t size)
{
	long d = (long)(time(NULL) - t);

	if (t == 0)
		snprintf(buf, size, "-");
	else if (d < 120)
		snprintf(buf, size, "%ld seconds ago", d < 0 ? 0 : d);
	else if (d < 7200)
		snprintf(buf, size, "%ld minutes ago", d / 60);
	else if (d < 172800)
		snprintf(buf, size, "%ld hours ago", d / 3600);
	else
		snprintf(buf, size, "%ld days ago", d / 86400);
}

static int
usage_error(const char *cmd, const char *usage, const char *what)
{
	fprintf(stderr, "kci: %s: %s\nUsage: %s\n", cmd, what, usage);
	return KCI_EXIT_RUNNER;
}

static int
wants_help(int argc, char **argv, const char *usage, const char *text)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			printf("Usage: %s\n\n%s\n", usage, text);
			return 1;
		}
	}
	return 0;
}

/* Unpacks the image into its root disk now, so the first `kci exec --image` boots at once. */
static int
prepare_disk(const char *ref, struct kci_progress *prog, struct kci_err *err)
{
	struct kci_image_config cfg = { 0 };
	struct kci_image_disk_opts o = { .phase = kci_progress_phase, .ctx = prog };
	char *home = NULL, *cache = NULL, *disk = NULL;
	int rc;

	if ((rc = kci_home(&home, err)) < 0)
		return rc;
	cache = kci_xasprintf("%s/cache", home);
	o.home = home;
	o.cache = cache;
	rc = kci_engine_image_disk(ref, &o, &cfg, &disk, err);
	kci_images_config_clear(&cfg);
	free(disk);
	free(cache);
	free(home);
	return rc;
}

/* A VM template nobody restored for this long goes with `kci prune`. */
#define TEMPLATE_UNUSED_SEC (7 * 24 * 3600)

static volatile sig_atomic_t interrupted;

static void
on_interrupt(int signo)
{
	interrupted = signo;
}

int
kci_cmd_pull(int argc, char **argv)
{
	static const char usage[] = "kci pull [-q] REF";
	struct kci_pull_opts o = KCI_PULL_OPTS_INIT;
	struct kci_progress prog = { .tty = isatty(STDERR_FILENO) };
	struct kci_err err = KCI_ERR_INIT;
	struct kci_images *im;
	char digest[72];
	int quiet = 0, rc;

	if (wants_help(
		    argc, argv, usage,
		    "Pull an image from its registry into the local store and unpack it into its\n"
		    "read-only root disk, so `kci exec --image` boots it at once. REF is "
		    "NAME[:TAG],\n"
		    "NAME@sha256:..., or HOST[:PORT]/NAME[:TAG]; Docker Hub is the default "
		    "registry.\n"
		    "Plain HTTP is used only for loopback registries. Credentials come from\n"
		    "~/.docker/config.json ($DOCKER_CONFIG)."))
		return 0;
	if (argc > 1 && (strcmp(argv[1], "-q") == 0 || strcmp(argv[1], "--quiet") == 0)) {
		quiet = 1;
		argc--;
		argv++;
	}
	if (argc != 2 || argv[1][0] == '-')
		return usage_error("pull", usage,
				   argc < 2 ? "no image given" : "expected one image");
	if (!(im = open_images()))
		return KCI_EXIT_RUNNER;
	prog.tty = prog.tty && !quiet;
	o.progress = kci_progress_blob;
	o.ctx = &prog;
	/* Ctrl-C stops transfers cleanly: temp blobs are removed and nothing half-made is named. */
	struct sigaction sa = { .sa_handler = on_interrupt };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	o.cancel = &interrupted;
	rc = kci_images_pull(im, argv[1], &o, digest, &err);
	kci_images_free(im);
	if (rc == 0 && !interrupted)
		rc = prepare_disk(argv[1], &prog, &err);
	if (rc == 0 && interrupted)
		rc = KCI_CANCELED;
	if (rc < 0 && interrupted) {
		fprintf(stderr,
			"kci: pull %s interrupted; partial downloads removed, complete blobs kept "
			"for next time\n",
			argv[1]);
		return 128 + interrupted;
	}
	if (rc < 0) {
		kci_print_error(err.msg);
		return KCI_EXIT_RUNNER;
	}
	if (!quiet)
		printf("%s: %s\n", argv[1], digest);
	return 0;
}

static void
report_bad(void *ctx, const char *digest)
{
	(void)ctx;
	fprintf(stderr, "kci: blob %s is corrupt\n", digest);
}

/* The VM templates in the cache, after the images (docs/templates.md). */
static void
list_templates(void)
{
	struct kci_err err = KCI_ERR_INIT;
	struct kci_vm_template_info *t = NULL;
	char *home = NULL, *cache;
	size_t n = 0;

	if (kci_home(&home, &err) < 0)
		return;
	cache = kci_xasprintf("%s/cache", home);
	if (kci_vm_templates_list(cache, &t, &n, &err) < 0)
		kci_print_error(err.msg);
	if (n)
		printf("\n%-32s %-30s %-4s %-7s %-4s %-10s %s\n", "VM TEMPLATE", "ROOT", "CPUS",
		       "MEMORY", "NET", "SIZE", "USED");
	for (size_t i = 0; i < n; i++) {
		char size[32], used[32], mem[32];
		kci_human_size(t[i].bytes, size, sizeof(size));
		snprintf(mem, sizeof(mem), "%lluM", (unsigned long long)t[i].memory_mib);
		human_age(t[i].used, used, sizeof(used));
		printf("%-32s %-30.30s %-4u %-7s %-4s %-10s %s%s\n", t[i].key, t[i].label,
		       t[i].cpus, mem, t[i].network ? "nat" : "none", size, used,
		       t[i].stale ? " (stale: kci prune removes it)" : "");
	}
	free(t);
	free(cache);
	free(home);
}

int
kci_cmd_images(int argc, char **argv)
{
	static const char usage[] = "kci images [--verify]";
	struct kci_err err = KCI_ERR_INIT;
	struct kci_image_info *infos = NULL;
	struct kci_images *im;
	size_t n = 0;
	int verify = 0;

	if (wants_help(
		    argc, argv, usage,
		    "List the images in the local store. --verify re-hashes every blob, removes\n"
		    "those that do not match their digest (so the next pull fetches them again)\n"
		    "and exits 1 if there were any."))
		return 0;
	if (argc == 2 && strcmp(argv[1], "--verify") == 0)
		verify = 1;
	else if (argc > 1)
		return usage_error("images", usage, "unexpected argument");
	if (!(im = open_images()))
		return KCI_EXIT_RUNNER;
	if (verify) {
		size_t checked, bad;
		int rc = kci_images_verify(im, &checked, &bad, report_bad, NULL, &err);
		kci_images_free(im);
		if (rc < 0) {
			kci_print_error(err.msg);
			return KCI_EXIT_RUNNER;
		}
		printf("%zu blobs checked, %zu corrupt%s\n", checked, bad,
		       bad ? " (removed: pull the affected images again)" : "");
		return bad ? 1 : 0;
	}
	if (kci_images_list(im, &infos, &n, &err) < 0) {
		kci_print_error(err.msg);
		kci_images_free(im);
		return KCI_EXIT_RUNNER;
	}
	printf("%-48s %-19s %-10s %s\n", "REF", "DIGEST", "SIZE", "AGE");
	for (size_t i = 0; i < n; i++) {
		char size[32], age[32];
		kci_human_size(infos[i].size, size, sizeof(size));
		human_age(infos[i].created, age, sizeof(age));
		printf("%-48s %.19s %-10s %s\n", infos[i].ref, infos[i].digest, size, age);
	}
	kci_images_info_free(infos, n);
	kci_images_free(im);
	list_templates();
	return 0;
}

int
kci_cmd_rmi(int argc, char **argv)
{
	static const char usage[] = "kci rmi REF...";
	struct kci_err err = KCI_ERR_INIT;
	struct kci_images *im;
	int status = 0;

	if (wants_help(
		    argc, argv, usage,
		    "Remove images from the local store. Their blobs are deleted by `kci prune`."))
		return 0;
	if (argc < 2)
		return usage_error("rmi", usage, "no image given");
	if (!(im = open_images()))
		return KCI_EXIT_RUNNER;
	for (int i = 1; i < argc; i++) {
		if (kci_images_remove(im, argv[i], &err) < 0) {
			kci_print_error(err.msg);
			status = KCI_EXIT_RUNNER;
		} else {
			printf("removed %s\n", argv[i]);
		}
	}
	kci_images_free(im);
	return status;
}

int
kci_cmd_load(int argc, char **argv)
{
	static const char usage[] = "kci load PATH";
	struct kci_err err = KCI_ERR_INIT;
	struct kci_images *im;
	char **refs = NULL;
	int rc;

	if (wants_help(argc, argv, usage,
		       "Load an OCI image-layout directory or a `docker save` tarball into the\n"
		       "local store. Every blob is verified against its digest."))
		return 0;
	if (argc != 2)
		return usage_error("load", usage, argc < 2 ? "no path given" : "expected one path");
	if (!(im = open_images()))
		return KCI_EXIT_RUNNER;
	rc = kci_images_load(im, argv[1], &refs, &err);
	kci_images_free(im);
	if (rc < 0) {
		kci_print_error(err.msg);
		return KCI_EXIT_RUNNER;
	}
	for (size_t i = 0; refs && refs[i]; i++) {
		printf("loaded %s\n", refs[i]);
		free(refs[i]);
	}
	free(refs);
	return 0;
}

/*
 * Another kci's work in progress: an unpack tree whose kci is alive
 * ("image-<cfg>.ext4.tree-<pid>-…"), or a disk being written by a live kci
 * (".tmp-<pid>-…"). Prune leaves those alone.
 */
static int
in_progress(const char *cache, const char *name)
{
	const char *t = strstr(name, ".tree-");
	int pid;

	if (t)
		return sscanf(t, ".tree-%d-", &pid) == 1 && pid > 0 &&
		       (kill(pid, 0) == 0 || errno != ESRCH);
	(void)cache;
	return strstr(name, ".tmp-") && !kci_tmp_is_orphan(name);
}

/* Deletes cache/image-<config>.ext4 disks whose image is gone; returns bytes freed. */
static uint64_t
prune_disks(const char *home, char **keep)
{
	char *cache = kci_xasprintf("%s/cache", home);
	uint64_t freed = 0;
	DIR *d = opendir(cache);
	struct dirent *de;

	while (d && (de = readdir(d))) {
		int kept = 0;
		if (strncmp(de->d_name, "image-", 6) != 0)
			continue;
		for (size_t i = 0; keep && keep[i] && !kept; i++)
			kept = strncmp(de->d_name + 6, keep[i] + 7, 64) == 0 &&
			       strcmp(de->d_name + 6 + 64, ".ext4") == 0;
		if (!kept && in_progress(cache, de->d_name))
			continue;
		if (kept)
			continue;
		struct stat st;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			/* An unpack tree left by a kci killed mid-build. */
			char *tree = kci_xasprintf("%s/%s", cache, de->d_name);
			kci_rm_rf(tree, NULL);
			free(tree);
		} else if (unlinkat(dirfd(d), de->d_name, 0) == 0) {
			freed += (uint64_t)st.st_blocks * 512;
		}
	}
	if (d)
		closedir(d);
	free(cache);
	return freed;
}

int
kci_cmd_prune(int argc, char **argv)
{
	static const char usage[] = "kci prune [--templates]";
	struct kci_err err = KCI_ERR_INIT;
	struct kci_images *im = NULL;
	char *home = NULL, **keep = NULL, size[32], *cache;
	uint64_t freed = 0, tfreed = 0;
	size_t tremoved = 0;
	int rc, all_templates = 0;

	if (wants_help(argc, argv, usage,
		       "Delete blobs no image in the store needs, root filesystem disks of images\n"
		       "that are gone, and VM templates that no VM can use any more (made from a\n"
		       "kernel, agent, image or QEMU that changed) or that none used for 7 days.\n"
		       "--templates deletes every VM template (the next VM of each kind makes\n"
		       "its template again)."))
		return 0;
	if (argc == 2 && strcmp(argv[1], "--templates") == 0) {
		all_templates = 1;
	} else if (argc > 1) {
		char what[300];
		snprintf(what, sizeof(what), "%s '%.200s'",
			 argv[1][0] == '-' ? "unknown option" : "unexpected argument", argv[1]);
		return usage_error("prune", usage, what);
	}
	if ((rc = kci_home(&home, &err)) < 0 || (rc = kci_images_open(&im, home, &err)) < 0 ||
	    (rc = kci_images_prune(im, &freed, &keep, &err)) < 0) {
		kci_print_error(err.msg);
		kci_images_free(im);
		free(home);
		return KCI_EXIT_RUNNER;
	}
	freed += prune_disks(home, keep);
	cache = kci_xasprintf("%s/cache", home);
	if (kci_vm_templates_prune(cache, all_templates, TEMPLATE_UNUSED_SEC, &tfreed, &tremoved,
				   &err) < 0)
		kci_print_error(err.msg);
	free(cache);
	freed += tfreed;
	kci_human_size(freed, size, sizeof(size));
	if (tremoved)
		printf("removed %zu VM template%s\n", tremoved, tremoved == 1 ? "" : "s");
	printf("freed %s\n", size);
	for (size_t i = 0; keep && keep[i]; i++)
		free(keep[i]);
	free(keep);
	kci_images_free(im);
	free(home);
	return 0;
}
