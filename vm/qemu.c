/* The QEMU microvm command line: one place that knows every flag kci passes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "vm/internal.h"

struct argv_buf {
	char **v;
	size_t n;
};

static void
add(struct argv_buf *a, char *s)
{
	a->v = kci_xrealloc(a->v, (a->n + 2) * sizeof(char *));
	a->v[a->n++] = s;
	a->v[a->n] = NULL;
}

static void
add2(struct argv_buf *a, const char *flag, char *value)
{
	add(a, kci_xstrdup(flag));
	add(a, value);
}

char **
qemu_argv(const struct qemu_cmd *c)
{
	struct argv_buf a = { 0 };
	char tsc[64] = "", net[96] = "";

	add(&a, kci_xstrdup(c->qemu ? c->qemu : "qemu-system-x86_64"));
	/* In the jail every path is /vm/...: the name says on the host which VM this is. */
	if (c->name) {
		/* QEMU option values escape a comma by doubling it. */
		size_t n = strlen(c->name), o = 0;
		char *v = kci_xmalloc(2 * n + 5);

		memcpy(v, "kci:", 4);
		o = 4;
		for (size_t i = 0; i < n; i++) {
			v[o++] = c->name[i];
			if (c->name[i] == ',')
				v[o++] = ',';
		}
		v[o] = '\0';
		add2(&a, "-name", v);
	}
	/*
	 * No option ROMs: nothing in the guest uses them. The RTC stays: without it
	 * the guest clock starts in 1970, which breaks make and TLS.
	 */
	add2(&a, "-M",
	     kci_xasprintf("microvm,x-option-roms=off,isa-serial=on%s",
			   c->ram_path ? ",memory-backend=kci-ram" : ""));
	if (c->accel == KCI_ACCEL_KVM) {
		add2(&a, "-accel", kci_xstrdup("kvm"));
		add2(&a, "-cpu", kci_xstrdup("host"));
	} else {
		add2(&a, "-accel", kci_xstrdup("tcg,thread=multi,tb-size=256"));
	}
	add2(&a, "-smp", kci_xasprintf("%u", c->cpus));
	add2(&a, "-m", kci_xasprintf("%lluM", c->memory_mib));
	if (c->ram_path)
		add2(&a, "-object",
		     kci_xasprintf("memory-backend-file,id=kci-ram,size=%lluM,mem-path=%s,share=%s",
				   c->memory_mib, c->ram_path, c->ram_shared ? "on" : "off"));
	add(&a, kci_xstrdup("-nodefaults"));
	add(&a, kci_xstrdup("-no-user-config"));
	add2(&a, "-display", kci_xstrdup("none"));
	add(&a, kci_xstrdup("-no-reboot"));
	/* QEMU's own seccomp filter: a compromised QEMU cannot exec, setuid or renice. */
	add2(&a, "-sandbox",
	     kci_xstrdup(
		     "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"));
	add2(&a, "-chardev", kci_xasprintf("socket,id=con,fd=%d", c->console_fd));
	add2(&a, "-serial", kci_xstrdup("chardev:con"));
	add2(&a, "-chardev", kci_xasprintf("socket,id=qmp,fd=%d,server=on,wait=off", c->qmp_fd));
	add2(&a, "-mon", kci_xstrdup("chardev=qmp,mode=control"));
	add2(&a, "-device", kci_xstrdup("virtio-serial-device,max_ports=2"));
	/* Entropy from the host, so the guest's getrandom() does not stall jobs under TCG. */
	add2(&a, "-device", kci_xstrdup("virtio-rng-device"));
	add2(&a, "-chardev", kci_xasprintf("socket,id=agent,fd=%d", c->agent_fd));
	add2(&a, "-device", kci_xasprintf("virtserialport,chardev=agent,name=" KCI_PORT_NAME));
	if (c->rootfs) {
		add2(&a, "-drive",
		     kci_xasprintf("if=none,id=root,file=%s,format=raw,readonly=on", c->rootfs));
		add2(&a, "-device", kci_xstrdup("virtio-blk-device,drive=root,serial=kci-root"));
	}
	if (c->scratch) {
		add2(&a, "-drive",
		     kci_xasprintf("if=none,id=scratch,file=%s,format=raw,discard=unmap",
				   c->scratch));
		add2(&a, "-device",
		     kci_xstrdup("virtio-blk-device,drive=scratch,serial=kci-scratch"));
	}
	if (c->workspace) {
		add2(&a, "-drive",
		     kci_xasprintf("if=none,id=work,file=%s,format=raw,discard=unmap",
				   c->workspace));
		add2(&a, "-device", kci_xstrdup("virtio-blk-device,drive=work,serial=kci-work"));
	}
	/*
	 * The NIC's backend is a socket passt already holds the other end of,
	 * so there is no socket path to race for and nothing to clean up.
	 */
	if (c->net) {
		add2(&a, "-netdev",
		     kci_xasprintf("stream,id=net0,server=off,addr.type=fd,addr.str=%d",
				   c->net_fd));
		add2(&a, "-device", kci_xstrdup("virtio-net-device,netdev=net0"));
	}
	/*
	 * A VM template's guest: QEMU loads the saved device state instead of
	 * booting, and runs it as soon as it is loaded (it was saved running).
	 * Its RAM is not in that state: it is the template's RAM file, mapped,
	 * which the monitor must say before the load (x-ignore-shared).
	 */
	if (c->restore_fd > 0) {
		add2(&a, "-incoming", kci_xstrdup("defer")); /* template_incoming() */
		/* Nothing boots: the kernel is in the saved RAM already. */
		return a.v;
	}
	add2(&a, "-kernel", kci_xstrdup(c->kernel));
	add2(&a, "-initrd", kci_xstrdup(c->initrd));
	/*
	 * Under TCG the kernel cannot calibrate the TSC against the PIT on
	 * microvm and hangs; it must be told the frequency (docs/conventions.md).
	 */
	if (c->accel == KCI_ACCEL_TCG && c->tsc_khz)
		snprintf(tsc, sizeof(tsc), " tsc_early_khz=%u tsc=reliable", c->tsc_khz);
	/* The agent configures eth0 from this; without it the guest has only lo. */
	if (c->net)
		snprintf(net, sizeof(net), " kci.net=%s", c->net);
	/*
	 * loglevel=5 after quiet: warnings still reach the console, which is how
	 * the session sees a failed timer calibration (vm/session.c, BOOT_TRIES).
	 */
	/* A VM that makes a template warms the guest's caches first (agent/resume.c). */
	add2(&a, "-append",
	     kci_xasprintf("console=ttyS0 quiet loglevel=5 panic=-1 reboot=t i8042.noaux "
			   "i8042.nokbd%s%s%s",
			   tsc, net, c->ram_shared ? " kci.prewarm" : ""));
	return a.v;
}
