/*
 * A boot that fails the way a busy TCG host makes it fail (the guest kernel
 * turns its APIC timer off and hangs) is redone at once, with real QEMU, the
 * real guest kernel and agent, and passt. The failure itself cannot be made
 * to happen on demand, so its console line is planted in the VM's console
 * record, and a stall is made by moving the boot's start back (white box:
 * vm/vmpriv.h); everything after that is the real path.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "common/proto.h"
#include "engine/engine.h"
#include "vm/vmpriv.h"

static const char failed_line[] = "[    0.2] APIC frequency too slow, disabling apic timer\n";

struct fixture {
	struct kci_kit *kit;
	struct kci_root root;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct kci_kit_opts ko = { .accel = KCI_ACCEL_AUTO };
	struct kci_err err = KCI_ERR_INIT;

	if (kci_engine_kit_new(&f->kit, &ko, &err) < 0 ||
	    kci_engine_root_base(f->kit, &f->root, &err) < 0) {
		fprintf(stderr, "vm_relaunch: %s\n", err.msg);
		kci_engine_kit_free(f->kit);
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	if (!f)
		return 0;
	kci_engine_root_clear(&f->root);
	kci_engine_kit_free(f->kit);
	free(f);
	return 0;
}

/* Output of one command, collected. */
struct out {
	char buf[4096];
	size_t len;
	char notices[512]; /* what kci told the user, one per line */
};

static int
collect(void *ctx, int stream, const uint8_t *buf, size_t len)
{
	struct out *o = ctx;

	(void)stream;
	if (len > sizeof(o->buf) - 1 - o->len)
		len = sizeof(o->buf) - 1 - o->len;
	memcpy(o->buf + o->len, buf, len);
	o->len += len;
	o->buf[o->len] = '\0';
	return 0;
}

static void
notice(void *ctx, const char *text)
{
	struct out *o = ctx;
	size_t n = strlen(o->notices);

	snprintf(o->notices + n, sizeof(o->notices) - n, "%s\n", text);
}

static int
run(struct kci_vm *vm, const char *script, struct out *o, struct kci_vm_result *res,
    struct kci_err *err)
{
	char *const argv[] = { "sh", "-c", (char *)script, NULL };
	struct kci_req_opts ro = { .argv = argv };
	struct kci_image_config none = { 0 };
	struct kci_run_req req;
	struct kci_vm_io io = KCI_VM_IO_INIT;
	int rc;

	io.output = collect;
	io.notice = notice;
	io.ctx = o;
	if ((rc = kci_engine_request(&none, &ro, &req, err)) < 0)
		return rc;
	rc = kci_vm_exec(vm, &req, &io, res, NULL, err);
	kci_run_req_clear(&req);
	return rc;
}

/* A VM of the base system, started (not yet booted): QEMU runs, the agent is not up. */
static struct kci_vm *
start(struct fixture *f, int network)
{
	struct kci_vm_opts vo = KCI_VM_OPTS_INIT;
	struct kci_err err = KCI_ERR_INIT;
	struct kci_vm *vm = NULL;

	kci_engine_vm_opts(f->kit, &f->root, &vo);
	vo.network = network;
	vo.scratch_mib = 64;
	vo.warm = 0; /* these are boots: a VM restored from a template has none */
	if (kci_vm_start(&vm, &vo, &err) < 0)
		fail_msg("%s", err.msg);
	return vm;
}

static int
gone(pid_t pid)
{
	return kill(pid, 0) < 0 && errno == ESRCH;
}

/* The first boot "fails": QEMU and passt are replaced, and the second boot runs the command. */
static void
test_failed_calibration_boots_again(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	struct kci_vm_result res;
	struct out o = { .len = 0 };
	struct kci_vm *vm = start(*state, KCI_VM_NET_NAT);
	pid_t qemu, passt;
	struct stat st;
	char *dir;

	qemu = vm->pid;
	passt = vm->passt_pid;
	assert_true(qemu > 0 && passt > 0);
	console_ring_add(&vm->console, failed_line, strlen(failed_line));

	int rc = run(vm, "echo up; ls /sys/class/net", &o, &res, &err);
	if (rc < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(res.code, 0);
	assert_non_null(strstr(o.buf, "up\n"));
	/* The NIC works with the new passt: the agent configured eth0 on it. */
	assert_non_null(strstr(o.buf, "eth0"));
	assert_int_equal(vm->relaunches, 1);
	assert_string_equal(o.notices, "the guest kernel's timer calibration failed; booting the "
				       "VM again\n");
	assert_true(vm->pid > 0 && vm->pid != qemu && gone(qemu));
	assert_true(vm->passt_pid > 0 && vm->passt_pid != passt && gone(passt));
	/* The VM goes on as one: a second command in the same guest. */
	o.len = 0;
	assert_int_equal(run(vm, "echo again", &o, &res, &err), 0);
	assert_string_equal(o.buf, "again\n");

	qemu = vm->pid;
	passt = vm->passt_pid;
	dir = strdup(vm->dir);
	kci_vm_free(vm);
	assert_true(gone(qemu) && gone(passt));
	assert_true(stat(dir, &st) < 0 && errno == ENOENT);
	free(dir);
}

/*
 * A boot that keeps failing is an error at once, naming the cause: the message
 * can only come from the console check, never from the 60 s boot deadline
 * (which says "did not start the agent"), so no clock is needed to tell.
 */
static void
test_failed_calibration_gives_up(void **state)
{
	struct kci_err err = KCI_ERR_INIT;
	struct kci_vm_result res;
	struct out o = { .len = 0 };
	struct kci_vm *vm = start(*state, KCI_VM_NET_NONE);
	pid_t qemu;

	vm->relaunches = 2; /* two boots failed already */
	console_ring_add(&vm->console, failed_line, strlen(failed_line));
	assert_int_equal(run(vm, "echo up", &o, &res, &err), KCI_ERROR);
	assert_non_null(
		strstr(err.msg, "the guest kernel could not calibrate its timer in 3 boots"));
	assert_null(strstr(err.msg, "did not start the agent"));
	assert_string_equal(o.buf, "");
	qemu = vm->pid;
	kci_vm_free(vm);
	assert_true(qemu <= 0 || gone(qemu));
}

/*
 * A first boot whose kernel does not run the agent within 20 s is redone, as
 * is one whose agent does not say HELLO within 60 s; the boot stalls here
 * because its start is moved back, before the guest can answer.
 */
static void
test_stalled_boot_boots_again(void **state)
{
	static const struct {
		int64_t back_ms;
		const char *notice;
	} stalls[] = {
		{ 20000,
		  "the guest kernel did not run the agent within 20 s; booting the VM again\n" },
		{ 60000, "the guest did not start the agent within 60 s; booting the VM again\n" },
	};
	struct kci_err err = KCI_ERR_INIT;
	struct kci_vm_result res;
	struct out o;

	for (size_t i = 0; i < sizeof(stalls) / sizeof(stalls[0]); i++) {
		struct kci_vm *vm = start(*state, KCI_VM_NET_NONE);
		pid_t qemu = vm->pid;

		memset(&o, 0, sizeof(o));
		if (i == 1)
			vm->alive = 1; /* the agent's first line came, its HELLO did not */
		vm->booted_ms -= stalls[i].back_ms;
		if (run(vm, "echo up", &o, &res, &err) < 0)
			fail_msg("%s", err.msg);
		assert_string_equal(o.buf, "up\n");
		assert_int_equal(vm->relaunches, 1);
		assert_string_equal(o.notices, stalls[i].notice);
		assert_true(vm->pid != qemu && gone(qemu));
		kci_vm_free(vm);
	}

	/* Only once: a second stall is the error, and it says the boot was redone. */
	struct kci_vm *vm = start(*state, KCI_VM_NET_NONE);
	vm->relaunches = 1;
	vm->booted_ms -= 60000;
	memset(&o, 0, sizeof(o));
	assert_int_equal(run(vm, "echo up", &o, &res, &err), KCI_ERROR);
	assert_non_null(strstr(err.msg, "the guest did not start the agent within 60 s (booted "
					"again, to no avail)"));
	assert_string_equal(o.buf, "");
	kci_vm_free(vm);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_failed_calibration_boots_again),
		cmocka_unit_test(test_failed_calibration_gives_up),
		cmocka_unit_test(test_stalled_boot_boots_again),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
