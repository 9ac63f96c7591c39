/* File-system helpers: the kci data directory, directory creation and atomic writes. */
#ifndef KCI_COMMON_FS_H
#define KCI_COMMON_FS_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/*
 * Resolves the data directory: $KCI_HOME, else /var/lib/kci for root, else
 * $XDG_DATA_HOME/kci (~/.local/share/kci). Returns a malloc'd path; the
 * directory is created (0700) if missing.
 */
int kci_home(char **out, struct kci_err *err);

/*
 * mkdir -p with `mode` for the directories it creates. An existing directory
 * (or a symlink to one) is fine; any other file there is an error.
 */
int kci_mkdir_p(const char *path, unsigned mode, struct kci_err *err);

/* Removes a directory tree without following symlinks. Missing is not an error. */
int kci_rm_rf(const char *path, struct kci_err *err);

/*
 * Creates a temporary file next to `final` (same directory, so rename() is
 * atomic). Returns the fd (O_CLOEXEC) and sets *tmp_path (malloc'd).
 */
int kci_tmpfile_near(const char *final, char **tmp_path, struct kci_err *err);

/* fsyncs `fd`, renames tmp_path over final and fsyncs the directory. Closes fd. */
int kci_commit_file(int fd, const char *tmp_path, const char *final, struct kci_err *err);

/*
 * Reads at most `max` bytes of a file into a malloc'd NUL-terminated buffer;
 * a larger file is KCI_INVALID ("PATH is larger than MAX bytes").
 */
int kci_read_file(const char *path, size_t max, char **out, size_t *len, struct kci_err *err);
/* The same from an open fd (not closed), named `shown` in messages. */
int kci_read_fd(int fd, size_t max, const char *shown, char **out, size_t *len,
		struct kci_err *err);

/*
 * 1 if `name` is a temp file from kci_tmpfile_near() whose process is gone:
 * a leftover of a killed kci that can be deleted.
 */
int kci_tmp_is_orphan(const char *name);

/*
 * Removes what killed kci processes left in dir: every entry whose name
 * carries a dead pid the way kci_tmpfile_near() writes it (".tmp-<pid>-"),
 * files and directory trees alike (without following symlinks).
 */
void kci_sweep_orphans(const char *dir);

/*
 * openat2(2): opens path relative to dirfd with RESOLVE_* flags `resolve`
 * (plus O_CLOEXEC), retrying the EAGAIN the kernel returns when a rename
 * elsewhere raced the walk. Returns an fd or -errno.
 */
int kci_openat2(int dirfd, const char *path, int flags, uint64_t resolve);

/* A path as the user would name it (malloc'd): relative to the cwd when below it. */
char *kci_shown_path(const char *path);

/*
 * The process's umask, read without changing it (umask(2) cannot be read
 * without setting it, which races other threads); 022 if unknown.
 */
unsigned kci_umask(void);

/* Directory holding the running executable (malloc'd). */
char *kci_exe_dir(void);

#endif
