/* Error message formatting for struct kci_err. */
#include "common/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int
kci_err_set(struct kci_err *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return code;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return code;
}

int
kci_err_sys(struct kci_err *err, int errnum, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	if (!err)
		return KCI_ERROR;
	err->code = errnum == ENOENT			   ? KCI_NOTFOUND
		    : errnum == ENOSPC || errnum == EDQUOT ? KCI_NOSPACE
							   : KCI_ERROR;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	n = strlen(err->msg);
	snprintf(err->msg + n, sizeof(err->msg) - n, ": %s", strerror(errnum));
	return err->code;
}

int
kci_err_prefix(struct kci_err *err, const char *fmt, ...)
{
	char prefix[KCI_ERR_MAX];
	size_t plen, keep;
	va_list ap;

	if (!err)
		return KCI_ERROR;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	/* "prefix: old", keeping as much of both as fits; the old text is the cause. */
	plen = strlen(prefix);
	if (plen > KCI_ERR_MAX / 2)
		plen = KCI_ERR_MAX / 2;
	keep = strlen(err->msg);
	if (plen + 2 + keep > KCI_ERR_MAX - 1)
		keep = KCI_ERR_MAX - 1 - plen - 2;
	memmove(err->msg + plen + 2, err->msg, keep);
	memcpy(err->msg, prefix, plen);
	memcpy(err->msg + plen, ": ", 2);
	err->msg[plen + 2 + keep] = '\0';
	return err->code ? err->code : KCI_ERROR;
}

int
kci_err_code_for_input_errno(int errnum)
{
	switch (errnum) {
	case ENOENT:
	case ENOTDIR:
	case EISDIR:
	case EEXIST:
	case ELOOP:
	case ENAMETOOLONG:
	case EINVAL:
	case EXDEV:
	case EMLINK:
	case ENOTEMPTY:
		return KCI_INVALID;
	case ENOSPC:
	case EDQUOT:
		return KCI_NOSPACE;
	default:
		return KCI_ERROR;
	}
}
