/* The trivial init for bench/boot's baseline: say one line and power off at once. */
#include <sys/reboot.h>
#include <unistd.h>

int
main(void)
{
	static const char msg[] = "bare-init\n";

	(void)!write(1, msg, sizeof(msg) - 1);
	reboot(RB_POWER_OFF);
	return 0;
}
