/* Powering the guest off: the only way PID 1 may end. */
#include <signal.h>
#include <sys/reboot.h>
#include <unistd.h>

#include "agent/internal.h"

/*
 * Kills every other process, flushes the scratch disk and powers off, which
 * makes QEMU exit. PID 1 returning would panic the kernel instead; if even
 * reboot() fails we take that path on purpose, since kci boots guests with
 * panic=-1 and -no-reboot, which also ends QEMU rather than hanging it.
 */
void
agent_poweroff(void)
{
	static const char msg[] = "kci-agent: power off failed; exiting to panic the kernel\n";

	(void)kill(-1, SIGKILL);
	sync();
	(void)reboot(RB_POWER_OFF);
	(void)!write(2, msg, sizeof(msg) - 1);
	_exit(1);
}
