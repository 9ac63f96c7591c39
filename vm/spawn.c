/* What every child kci forks for QEMU or passt does before exec. */
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "vm/internal.h"

void
child_detach(pid_t parent)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* kci died between fork and prctl: nobody would ever kill this child. */
	if (getppid() != parent)
		_exit(127);
	/* Own process group: the terminal's Ctrl-C reaches kci, which decides what to do. */
	setpgid(0, 0);
	sigset_t all;
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	signal(SIGPIPE, SIG_DFL);
}
