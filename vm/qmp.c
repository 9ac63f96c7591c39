/*
 * A QMP client for the few commands kci sends QEMU (saving a VM template).
 * QEMU is jailed and may be compromised by its guest, so its replies are
 * bounded, parsed strictly and waited for with a deadline.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common/xalloc.h"
#include "vm/vmpriv.h"

/* Waits for fd to be ready for `events` until the deadline; 0, or an error. */
static int
wait_fd(int fd, short events, int64_t deadline, struct kci_err *err)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		int64_t left = deadline - vm_now_ms();
		if (left <= 0)
			return kci_err_set(err, KCI_TIMEOUT,
					   "QEMU's monitor did not answer in time");
		int n = poll(&p, 1, (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return kci_err_sys(err, errno, "poll QEMU's monitor");
		if (n > 0)
			return 0;
	}
}

/* Reads one line (a JSON message) into *out (malloc'd, NUL-terminated). */
static int
read_line(struct qmp *q, char **out, struct kci_err *err)
{
	int rc;

	for (;;) {
		char *nl = memchr(q->buf, '\n', q->len);
		if (nl) {
			size_t n = (size_t)(nl - q->buf);
			*out = kci_xmalloc(n + 1);
			memcpy(*out, q->buf, n);
			(*out)[n] = '\0';
			memmove(q->buf, nl + 1, q->len - n - 1);
			q->len -= n + 1;
			return 0;
		}
		if (q->len == sizeof(q->buf))
			return kci_err_set(err, KCI_PROTO,
					   "QEMU's monitor sent a line over %zu bytes",
					   sizeof(q->buf));
		if ((rc = wait_fd(q->fd, POLLIN, q->deadline, err)) < 0)
			return rc;
		ssize_t n = read(q->fd, q->buf + q->len, sizeof(q->buf) - q->len);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return n < 0 ? kci_err_sys(err, errno, "read QEMU's monitor")
				     : kci_err_set(err, KCI_ERROR, "QEMU closed its monitor");
		q->len += (size_t)n;
	}
}

/*
 * Reads messages until the reply to a command: its "return" value (a new
 * reference in *ret, if asked), or its "error" as KCI_ERROR. Events are skipped.
 */
static int
read_reply(struct qmp *q, struct json_object **ret, struct kci_err *err)
{
	for (;;) {
		struct json_object *msg, *v, *desc;
		char *line;
		int rc;

		if ((rc = read_line(q, &line, err)) < 0)
			return rc;
		msg = json_tokener_parse(line);
		free(line);
		if (!msg || !json_object_is_type(msg, json_type_object)) {
			json_object_put(msg);
			return kci_err_set(err, KCI_PROTO,
					   "QEMU's monitor sent something not JSON");
		}
		if (json_object_object_get_ex(msg, "return", &v)) {
			if (ret)
				*ret = json_object_get(v);
			json_object_put(msg);
			return 0;
		}
		if (json_object_object_get_ex(msg, "error", &v)) {
			const char *d = json_object_object_get_ex(v, "desc", &desc)
						? json_object_get_string(desc)
						: "no reason given";
			rc = kci_err_set(err, KCI_ERROR, "QEMU: %.200s", d);
			json_object_put(msg);
			return rc;
		}
		json_object_put(msg); /* an event, or the greeting */
	}
}

int
qmp_open(struct qmp *q, const char *path, int timeout_ms, struct kci_err *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct json_object *greeting = NULL;
	char *line = NULL;
	int rc;

	q->len = 0;
	q->deadline = vm_now_ms() + timeout_ms;
	if (strlen(path) >= sizeof(sa.sun_path))
		return kci_err_set(err, KCI_INVALID, "monitor socket path too long: %s", path);
	strcpy(sa.sun_path, path);
	if ((q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return kci_err_sys(err, errno, "socket");
	if (connect(q->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = kci_err_sys(err, errno, "connect to QEMU's monitor");
		goto fail;
	}
	/* The greeting, {"QMP": ...}, then capabilities negotiation. */
	if ((rc = read_line(q, &line, err)) < 0)
		goto fail;
	greeting = json_tokener_parse(line);
	free(line);
	if (!greeting || !json_object_object_get_ex(greeting, "QMP", NULL)) {
		json_object_put(greeting);
		rc = kci_err_set(err, KCI_PROTO, "QEMU's monitor did not greet");
		goto fail;
	}
	json_object_put(greeting);
	if ((rc = qmp_cmd(q, "{\"execute\":\"qmp_capabilities\"}", -1, NULL, err)) < 0)
		goto fail;
	return 0;
fail:
	close(q->fd);
	q->fd = -1;
	return rc;
}

int
qmp_cmd(struct qmp *q, const char *json, int pass_fd, struct json_object **ret, struct kci_err *err)
{
	size_t len = strlen(json), off = 0;
	int rc;

	while (off < len) {
		char cbuf[CMSG_SPACE(sizeof(int))];
		struct iovec iov = { .iov_base = (char *)json + off, .iov_len = len - off };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		if (pass_fd >= 0 && off == 0) {
			/* The fd rides with the command's first byte (QMP's getfd). */
			memset(cbuf, 0, sizeof(cbuf));
			mh.msg_control = cbuf;
			mh.msg_controllen = sizeof(cbuf);
			struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
		}
		if ((rc = wait_fd(q->fd, POLLOUT, q->deadline, err)) < 0)
			return rc;
		ssize_t n = sendmsg(q->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return kci_err_sys(err, errno, "write to QEMU's monitor");
		off += (size_t)n;
	}
	return read_reply(q, ret, err);
}

void
qmp_close(struct qmp *q)
{
	if (q->fd >= 0)
		close(q->fd);
	q->fd = -1;
}
