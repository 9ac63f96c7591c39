/*
 * Unit tests for the extractor's confined child (images/extract_child.c): what
 * it may still call once confined for each policy. Layers' side (exec, socket,
 * mount, ptrace killed; the chroot) is test_unpack.c's sandbox test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/xalloc.h"
#include "images/extract.h"

struct fx {
	char dir[64], dest[128];
};

static int
setup(void **state)
{
	struct fx *fx = kci_xcalloc(1, sizeof(*fx));

	snprintf(fx->dir, sizeof(fx->dir), "/tmp/kci-test-extract-child-XXXXXX");
	if (!mkdtemp(fx->dir))
		return -1;
	snprintf(fx->dest, sizeof(fx->dest), "%s/dest", fx->dir);
	if (mkdir(fx->dest, 0700) < 0)
		return -1;
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	kci_rm_rf(fx->dir, NULL);
	free(fx);
	return 0;
}

enum call { MKDIR, SYMLINK, LINK, FIFO, CHOWN, SOCKET, LOCKED_DIR };

/*
 * Forks, confines the child to dest for p and makes one call; returns the
 * wait status: exit 0 when the call returned at all (seccomp let it through),
 * whatever it returned; for LOCKED_DIR, only when creating a file in a 0000
 * directory failed with EACCES (no capability overrides the mode).
 */
static int
confined_call(const struct fx *fx, const struct kci_extract_policy *p, enum call what)
{
	struct kci_err err = KCI_ERR_INIT;
	int status, root_fd, ok = 1;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		root_fd = open(fx->dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (root_fd < 0 || extract_confine(&root_fd, NULL, 0, p, &err) < 0)
			_exit(100);
		switch (what) {
		case MKDIR:
			(void)mkdirat(root_fd, "made", 0755);
			break;
		case SYMLINK:
			(void)!symlinkat("made", root_fd, "sym");
			break;
		case LINK:
			(void)!linkat(root_fd, "made", root_fd, "hard", 0);
			break;
		case FIFO:
			(void)mknodat(root_fd, "fifo", S_IFIFO | 0600, 0);
			break;
		case CHOWN:
			(void)!fchown(root_fd, 0, 0);
			break;
		case SOCKET:
			(void)socket(AF_UNIX, SOCK_STREAM, 0);
			break;
		case LOCKED_DIR:
			(void)mkdirat(root_fd, "locked", 0);
			ok = openat(root_fd, "locked/x", O_WRONLY | O_CREAT | O_CLOEXEC, 0600) <
				     0 &&
			     errno == EACCES;
			break;
		}
		_exit(ok ? 0 : 101);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static void
assert_allowed(const struct fx *fx, const struct kci_extract_policy *p, enum call what)
{
	int status = confined_call(fx, p, what);

	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("%s: call %d: status %#x", p->archive, what, status);
}

static void
assert_killed(const struct fx *fx, const struct kci_extract_policy *p, enum call what)
{
	int status = confined_call(fx, p, what);

	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGSYS)
		fail_msg("%s: call %d not killed: status %#x", p->archive, what, status);
}

static void
test_extract_child__calls_per_policy(void **state)
{
	static const struct kci_extract_policy artifacts = KCI_EXTRACT_ARTIFACTS,
					       load = KCI_EXTRACT_LOAD, layer = KCI_EXTRACT_LAYER;
	struct fx *fx = *state;

	/* Artifacts: files, dirs and links; no nodes, owners or sockets. */
	assert_allowed(fx, &artifacts, MKDIR);
	assert_allowed(fx, &artifacts, SYMLINK);
	assert_allowed(fx, &artifacts, LINK);
	assert_killed(fx, &artifacts, FIFO);
	assert_killed(fx, &artifacts, CHOWN);
	assert_killed(fx, &artifacts, SOCKET);
	/* kci load: files and dirs only. */
	assert_killed(fx, &load, SYMLINK);
	assert_killed(fx, &load, LINK);
	assert_killed(fx, &load, FIFO);
	assert_killed(fx, &load, CHOWN);
	/* Neither keeps a capability, so root's included: a 0000 directory stays shut. */
	if (geteuid() == 0) {
		assert_allowed(fx, &artifacts, LOCKED_DIR);
		assert_allowed(fx, &load, LOCKED_DIR);
		/* Layers keep CAP_DAC_OVERRIDE, for images' read-only directories. */
		assert_int_equal(confined_call(fx, &layer, LOCKED_DIR), 101 << 8);
	}
}

#define TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_extract_child__calls_per_policy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
