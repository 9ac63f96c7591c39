/* Unit tests for vm/'s pure logic: module order, QEMU command line, accelerator, console. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/strv.h"
#include "vm/internal.h"

static const char deps[] = "kernel/fs/overlayfs/overlay.ko:\n"
			   "kernel/drivers/virtio/virtio_mmio.ko: kernel/drivers/virtio/virtio.ko "
			   "kernel/drivers/virtio/virtio_ring.ko\n"
			   "kernel/drivers/char/virtio_console.ko: kernel/drivers/virtio/virtio.ko "
			   "kernel/drivers/virtio/virtio_ring.ko\n"
			   "kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko\n"
			   "kernel/drivers/virtio/virtio_ring.ko:\n"
			   "kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko "
			   "kernel/drivers/virtio/virtio_ring.ko\n";

static int
index_of(char **v, const char *suffix)
{
	for (int i = 0; v[i]; i++) {
		size_t a = strlen(v[i]), b = strlen(suffix);
		if (a >= b && strcmp(v[i] + a - b, suffix) == 0)
			return i;
	}
	return -1;
}

static void
test_modules__dependencies_first_each_once(void **state)
{
	char **out = NULL;
	int *levels = NULL;
	struct kci_err err = KCI_ERR_INIT;
	int n = 0;

	(void)state;
	assert_int_equal(modules_resolve(deps, vm_guest_modules, &out, &levels, &err), 0);
	while (out[n])
		n++;
	assert_int_equal(n, 6); /* the test table has no virtio-rng */
	assert_true(index_of(out, "/virtio_ring.ko") < index_of(out, "/virtio.ko"));
	assert_true(index_of(out, "/virtio.ko") < index_of(out, "/virtio_mmio.ko"));
	assert_true(index_of(out, "/virtio.ko") < index_of(out, "/virtio_blk.ko"));
	assert_true(index_of(out, "/virtio.ko") < index_of(out, "/virtio_console.ko"));
	assert_true(index_of(out, "/overlay.ko") >= 0);
	/* Levels: ring and overlay need nothing, virtio needs ring, the drivers need virtio. */
	assert_int_equal(levels[index_of(out, "/virtio_ring.ko")], 0);
	assert_int_equal(levels[index_of(out, "/overlay.ko")], 0);
	assert_int_equal(levels[index_of(out, "/virtio.ko")], 1);
	assert_int_equal(levels[index_of(out, "/virtio_blk.ko")], 2);
	assert_int_equal(levels[index_of(out, "/virtio_mmio.ko")], 2);
	kci_strv_free(out);
	free(levels);
}

static void
test_modules__missing_module_skipped_cycle_rejected(void **state)
{
	const char *wanted[] = { "nosuch", "a", NULL };
	const char cyclic[] = "a.ko: b.ko\nb.ko: a.ko\n";
	const char dangling[] = "a.ko: gone.ko\n";
	char **out = NULL;
	int *levels = NULL;
	struct kci_err err = KCI_ERR_INIT;

	(void)state;
	assert_int_equal(modules_resolve("", wanted, &out, &levels, &err), 0);
	assert_null(out[0]);
	kci_strv_free(out);
	free(levels);
	assert_int_equal(modules_resolve(cyclic, wanted, &out, &levels, &err), KCI_INVALID);
	assert_non_null(strstr(err.msg, "cycle"));
	assert_int_equal(modules_resolve(dangling, wanted, &out, &levels, &err), KCI_INVALID);
	assert_non_null(strstr(err.msg, "gone.ko"));
}

static int
has_arg(char **argv, const char *flag, const char *value_part)
{
	for (int i = 0; argv[i] && argv[i + 1]; i++)
		if (strcmp(argv[i], flag) == 0 && strstr(argv[i + 1], value_part))
			return 1;
	return 0;
}

static void
test_qemu__tcg_command_line(void **state)
{
	struct qemu_cmd c = { .kernel = "/k/vmlinuz",
			      .initrd = "/c/i.cpio",
			      .rootfs = "/c/r.ext4",
			      .scratch = "/run/vm-1/scratch.ext4",
			      .accel = KCI_ACCEL_TCG,
			      .cpus = 2,
			      .memory_mib = 512,
			      .tsc_khz = 2596132,
			      .console_fd = 3,
			      .agent_fd = 4,
			      .qmp_fd = 5 };
	char **argv = qemu_argv(&c);

	(void)state;
	assert_string_equal(argv[0], "qemu-system-x86_64");
	assert_true(has_arg(argv, "-M", "microvm"));
	assert_true(has_arg(argv, "-accel", "tcg"));
	assert_true(has_arg(argv, "-m", "512M"));
	assert_true(has_arg(argv, "-smp", "2"));
	assert_true(has_arg(argv, "-sandbox", "spawn=deny"));
	assert_true(has_arg(argv, "-drive", "file=/c/r.ext4,format=raw,readonly=on"));
	assert_true(has_arg(argv, "-device", "serial=kci-root"));
	assert_true(has_arg(argv, "-device", "serial=kci-scratch"));
	assert_true(has_arg(argv, "-device", "name=org.kci.agent.0"));
	assert_true(has_arg(argv, "-chardev", "socket,id=agent,fd=4"));
	assert_true(has_arg(argv, "-chardev", "fd=5,server=on"));
	assert_true(has_arg(argv, "-append", "tsc_early_khz=2596132"));
	assert_true(has_arg(argv, "-append", "panic=-1"));
	assert_false(has_arg(argv, "-cpu", "host"));
	kci_strv_free(argv);
}

static void
test_qemu__kvm_has_no_tsc_hint(void **state)
{
	struct qemu_cmd c = { .kernel = "k",
			      .initrd = "i",
			      .accel = KCI_ACCEL_KVM,
			      .cpus = 1,
			      .memory_mib = 256,
			      .tsc_khz = 2596132,
			      .console_fd = 3,
			      .agent_fd = 4,
			      .qmp_fd = 5 };
	char **argv = qemu_argv(&c);

	(void)state;
	assert_true(has_arg(argv, "-accel", "kvm"));
	assert_true(has_arg(argv, "-cpu", "host"));
	assert_false(has_arg(argv, "-append", "tsc_early_khz"));
	assert_false(has_arg(argv, "-device", "serial=kci-root"));
	kci_strv_free(argv);
}

static void
test_qemu__workspace_and_nat(void **state)
{
	struct qemu_cmd c = { .kernel = "k",
			      .initrd = "i",
			      .rootfs = "r",
			      .workspace = "/run/vm-1/workspace.ext4",
			      .net = VM_NET_ADDRESSING,
			      .accel = KCI_ACCEL_TCG,
			      .cpus = 1,
			      .memory_mib = 256,
			      .console_fd = 3,
			      .agent_fd = 4,
			      .qmp_fd = 5,
			      .net_fd = 6 };
	char **argv = qemu_argv(&c);

	(void)state;
	assert_true(has_arg(argv, "-drive", "file=/run/vm-1/workspace.ext4,format=raw"));
	assert_false(has_arg(argv, "-drive", "workspace.ext4,format=raw,readonly"));
	assert_true(has_arg(argv, "-device", "virtio-blk-device,drive=work,serial=kci-work"));
	assert_true(has_arg(argv, "-netdev", "stream,id=net0,server=off,addr.type=fd,addr.str=6"));
	assert_true(has_arg(argv, "-device", "virtio-net-device,netdev=net0"));
	assert_true(has_arg(argv, "-append", " kci.net=10.0.2.15/24,10.0.2.2,10.0.2.3"));
	kci_strv_free(argv);
}

/*
 * VM templates: the VM that makes one shares its RAM file; a clone maps the
 * template's privately, boots no kernel and waits for its state over QMP.
 */
static void
test_qemu__template_make_and_clone(void **state)
{
	struct qemu_cmd c = { .kernel = "k",
			      .initrd = "i",
			      .rootfs = "r",
			      .accel = KCI_ACCEL_TCG,
			      .cpus = 2,
			      .memory_mib = 512,
			      .console_fd = 3,
			      .agent_fd = 4,
			      .qmp_fd = 5,
			      .ram_path = "/vm/ram",
			      .ram_shared = 1 };
	char **argv = qemu_argv(&c);

	(void)state;
	assert_true(has_arg(argv, "-M", ",memory-backend=kci-ram"));
	assert_true(has_arg(argv, "-object",
			    "memory-backend-file,id=kci-ram,size=512M,mem-path=/vm/ram,share=on"));
	assert_true(has_arg(argv, "-kernel", "k"));
	assert_true(has_arg(argv, "-append", " kci.prewarm"));
	assert_false(has_arg(argv, "-incoming", ""));
	kci_strv_free(argv);

	c.ram_shared = 0;
	c.restore_fd = 7;
	argv = qemu_argv(&c);
	assert_true(has_arg(argv, "-object", "mem-path=/vm/ram,share=off"));
	assert_true(has_arg(argv, "-incoming", "defer"));
	assert_false(has_arg(argv, "-kernel", ""));
	assert_false(has_arg(argv, "-initrd", ""));
	assert_false(has_arg(argv, "-append", ""));
	/* The devices are the saved guest's: the same as when it was made. */
	assert_true(has_arg(argv, "-device", "virtio-blk-device,drive=root,serial=kci-root"));
	kci_strv_free(argv);

	/* A cold VM's RAM is QEMU's own. */
	c.ram_path = NULL;
	c.restore_fd = 0;
	argv = qemu_argv(&c);
	assert_false(has_arg(argv, "-object", "memory-backend"));
	assert_false(has_arg(argv, "-M", "memory-backend"));
	assert_false(has_arg(argv, "-append", "kci.prewarm"));
	kci_strv_free(argv);
}

/* Without a network there is no NIC at all, and the agent is told nothing. */
static void
test_qemu__no_network_no_nic(void **state)
{
	struct qemu_cmd c = { .kernel = "k",
			      .initrd = "i",
			      .accel = KCI_ACCEL_TCG,
			      .cpus = 1,
			      .memory_mib = 256,
			      .console_fd = 3,
			      .agent_fd = 4,
			      .qmp_fd = 5 };
	char **argv = qemu_argv(&c);

	(void)state;
	assert_false(has_arg(argv, "-netdev", ""));
	assert_false(has_arg(argv, "-device", "virtio-net"));
	assert_false(has_arg(argv, "-device", "serial=kci-work"));
	assert_false(has_arg(argv, "-append", "kci.net"));
	kci_strv_free(argv);
}

static void
test_accel__pvm_host_gets_tcg(void **state)
{
	const char pvm[] = "processor\t: 0\ncpu MHz\t\t: 2596.132\n"
			   "flags\t\t: fpu vme sse2 hypervisor lahf_lm\n";
	const char vmx[] = "processor\t: 0\nflags\t\t: fpu vmx sse2\n";
	const char lookalike[] = "flags\t\t: fpu vmxnet svmish\n";
	char why[256];

	(void)state;
	assert_int_equal(accel_auto(pvm, 1, why, sizeof(why)), KCI_ACCEL_TCG);
	assert_non_null(strstr(why, "/dev/kvm exists"));
	assert_int_equal(accel_auto(vmx, 1, why, sizeof(why)), KCI_ACCEL_KVM);
	assert_int_equal(accel_auto(vmx, 0, why, sizeof(why)), KCI_ACCEL_TCG);
	assert_int_equal(accel_auto(lookalike, 1, why, sizeof(why)), KCI_ACCEL_TCG);
	assert_int_equal(tsc_khz_parse(pvm), 2596132);
	assert_int_equal(tsc_khz_parse("flags: fpu\n"), 0);
}

static void
test_console__tail_and_panic(void **state)
{
	static struct console_ring r;
	char line[256];
	char big[3 * CONSOLE_RING];

	(void)state;
	memset(big, 'x', sizeof(big));
	console_ring_add(&r, big, sizeof(big));
	const char *boot =
		"\r\n[    1.0] ok\r\n[    2.0] Kernel panic - not syncing: sysrq triggered "
		"crash\r\n[    2.1] \x1b[0mend trace\r\n";
	console_ring_add(&r, boot, strlen(boot));
	assert_int_equal(strlen(console_ring_tail(&r, 2)),
			 strlen("[    2.0] Kernel panic - not syncing: sysrq triggered crash\n"
				"[    2.1] [0mend trace"));
	assert_non_null(console_panic_line(&r, line, sizeof(line)));
	assert_string_equal(line, "Kernel panic - not syncing: sysrq triggered crash");
	assert_null(strchr(console_ring_tail(&r, 5), '\r'));
}

/* A line split across reads, and across the ring's wrap, is still found; a dropped one is not. */
static void
test_console__shows_across_reads_and_wrap(void **state)
{
	static struct console_ring r;
	char big[CONSOLE_RING - 10];

	(void)state;
	memset(big, 'x', sizeof(big));
	console_ring_add(&r, big, sizeof(big));
	assert_false(console_shows(&r, "APIC frequency too slow"));
	console_ring_add(&r, "[ 0.2] APIC freq", 16);
	console_ring_add(&r, "uency too slow, disabling apic timer\r\n", 39);
	assert_true(console_shows(&r, "APIC frequency too slow"));
	console_ring_add(&r, big, sizeof(big));
	console_ring_add(&r, big, sizeof(big));
	assert_false(console_shows(&r, "APIC frequency too slow"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_modules__dependencies_first_each_once),
		cmocka_unit_test(test_modules__missing_module_skipped_cycle_rejected),
		cmocka_unit_test(test_qemu__tcg_command_line),
		cmocka_unit_test(test_qemu__kvm_has_no_tsc_hint),
		cmocka_unit_test(test_qemu__workspace_and_nat),
		cmocka_unit_test(test_qemu__no_network_no_nic),
		cmocka_unit_test(test_qemu__template_make_and_clone),
		cmocka_unit_test(test_accel__pvm_host_gets_tcg),
		cmocka_unit_test(test_console__tail_and_panic),
		cmocka_unit_test(test_console__shows_across_reads_and_wrap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
