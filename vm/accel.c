/*
 * Accelerator choice. /dev/kvm alone is not proof of hardware
 * virtualization: on PVM hosts it exists but cannot run stock kernels
 * (docs/conventions.md, "Facts about hosts"), so KVM is chosen only with
 * vmx/svm in the CPU flags.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fs.h"
#include "vm/internal.h"

/* Whether the first "flags" line of cpuinfo lists `flag` as a whole word. */
static int
has_flag(const char *cpuinfo, const char *flag)
{
	const char *line = strstr(cpuinfo, "\nflags");
	size_t n = strlen(flag);

	if (!line && strncmp(cpuinfo, "flags", 5) == 0)
		line = cpuinfo;
	if (!line)
		return 0;
	const char *end = strchr(line + 1, '\n');
	if (!end)
		end = line + strlen(line);
	for (const char *p = strchr(line + 1, ':'); p && p < end; p++) {
		if ((p[-1] == ' ' || p[-1] == ':') && strncmp(p, flag, n) == 0 &&
		    (p + n == end || p[n] == ' ' || p[n] == '\n'))
			return 1;
	}
	return 0;
}

enum kci_accel
accel_auto(const char *cpuinfo, int kvm_ok, char *why, size_t whylen)
{
	int hw = has_flag(cpuinfo, "vmx") || has_flag(cpuinfo, "svm");

	if (hw && kvm_ok) {
		snprintf(why, whylen, "KVM (hardware virtualization available)");
		return KCI_ACCEL_KVM;
	}
	if (!hw && kvm_ok)
		snprintf(why, whylen,
			 "TCG: /dev/kvm exists but the CPU has no vmx/svm (a paravirtual KVM "
			 "such as PVM cannot run stock kernels); guests are emulated and slower");
	else if (hw)
		snprintf(why, whylen,
			 "TCG: the CPU has virtualization but /dev/kvm cannot be opened "
			 "(load kvm_intel/kvm_amd or join the kvm group)");
	else
		snprintf(why, whylen,
			 "TCG: no hardware virtualization on this host; guests are "
			 "emulated and slower");
	return KCI_ACCEL_TCG;
}

unsigned
tsc_khz_parse(const char *cpuinfo)
{
	const char *p = strstr(cpuinfo, "cpu MHz");
	double mhz;

	if (!p || !(p = strchr(p, ':')) || sscanf(p + 1, "%lf", &mhz) != 1 || mhz <= 0 ||
	    mhz > 100000)
		return 0;
	return (unsigned)(mhz * 1000.0);
}

static char *
read_cpuinfo(void)
{
	char *text = NULL;

	if (kci_read_file("/proc/cpuinfo", 4 << 20, &text, NULL, NULL) < 0)
		return NULL;
	return text;
}

unsigned
kci_vm_host_tsc_khz(void)
{
	char *text = read_cpuinfo();
	unsigned khz = text ? tsc_khz_parse(text) : 0;

	free(text);
	return khz;
}

int
kci_vm_accel_choose(enum kci_accel want, enum kci_accel *out, char *why, size_t whylen,
		    struct kci_err *err)
{
	char *cpuinfo = read_cpuinfo();
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	int kvm_errno = errno;
	enum kci_accel a;

	if (fd >= 0)
		close(fd);
	a = accel_auto(cpuinfo ? cpuinfo : "", fd >= 0, why, whylen);
	free(cpuinfo);
	switch (want) {
	case KCI_ACCEL_TCG:
		snprintf(why, whylen, "TCG (forced with --accel tcg)");
		a = KCI_ACCEL_TCG;
		break;
	case KCI_ACCEL_KVM:
		if (fd < 0)
			return kci_err_sys(err, kvm_errno, "--accel kvm: cannot open /dev/kvm");
		if (a != KCI_ACCEL_KVM)
			snprintf(why, whylen,
				 "KVM (forced with --accel kvm; the CPU shows no vmx/svm, "
				 "so stock kernels may fail to boot)");
		a = KCI_ACCEL_KVM;
		break;
	case KCI_ACCEL_AUTO:
		break;
	}
	*out = a;
	return 0;
}

int
kci_vm_accel_parse(const char *s, enum kci_accel *out)
{
	if (strcmp(s, "auto") == 0)
		*out = KCI_ACCEL_AUTO;
	else if (strcmp(s, "kvm") == 0)
		*out = KCI_ACCEL_KVM;
	else if (strcmp(s, "tcg") == 0)
		*out = KCI_ACCEL_TCG;
	else
		return KCI_INVALID;
	return 0;
}
