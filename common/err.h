/* Error contract shared by every kci module: negative codes plus a message buffer. */
#ifndef KCI_COMMON_ERR_H
#define KCI_COMMON_ERR_H

#include <stddef.h>

enum kci_code {
	KCI_OK = 0,
	KCI_ERROR = -1,	   /* anything not listed below */
	KCI_NOTFOUND = -2, /* a named thing does not exist */
	KCI_TIMEOUT = -3,  /* a deadline passed */
	KCI_CANCELED = -4, /* the user asked us to stop (signal) */
	KCI_INVALID = -5,  /* bad input: arguments, files, peer data */
	KCI_DIGEST = -6,   /* content does not match its digest */
	KCI_PROTO = -7,	   /* the peer broke the protocol */
	KCI_NOSPACE = -8,  /* a byte budget (free space, a cap) would be exceeded; ENOSPC */
};

#define KCI_ERR_MAX 1024

/*
 * A caller-owned error. The innermost failure sets the message with
 * kci_err_set(); callers on the way up add context with kci_err_prefix().
 */
struct kci_err {
	int code;
	char msg[KCI_ERR_MAX];
};

#define KCI_ERR_INIT                                                                               \
	{                                                                                          \
		0,                                                                                 \
		{                                                                                  \
			0                                                                          \
		}                                                                                  \
	}

/* Sets code and message (printf-style); returns code so callers can `return kci_err_set(...)`. */
int kci_err_set(struct kci_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Like kci_err_set() but appends ": strerror(errnum)". */
int kci_err_sys(struct kci_err *err, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * The code for a failed system call made on behalf of untrusted input (an
 * archive entry): errnos that mean the input asked for the impossible (a
 * parent that is a file, a name that exists) are KCI_INVALID, the rest
 * (ENOSPC, EIO) KCI_ERROR.
 */
int kci_err_code_for_input_errno(int errnum);

/* Prepends "context: " to the existing message; returns the existing code. */
int kci_err_prefix(struct kci_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
