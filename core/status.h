/* status.h — error values shared by every layer.
 *
 * Functions return an int status: XD_OK (0) or a negative code from XD_STATUS_LIST.
 * Where an error happens, the callee fills the caller's xd_error_t with the code, the
 * path of the offending field ("layers[1].weights[2]") and a sentence for humans.
 * core/ never prints: the caller decides what to do with the error.
 */
#ifndef XD_STATUS_H
#define XD_STATUS_H

#include <stdatomic.h>
#include <stdint.h>

#define XD_STATUS_LIST(X)                              \
  X(XD_OK, 0, "ok")                                    \
  X(XD_EINVAL, -1, "invalid argument")                 \
  X(XD_ENOMEM, -2, "out of memory")                    \
  X(XD_ENOTFOUND, -3, "not found")                     \
  X(XD_ETOOBIG, -4, "too large")                       \
  X(XD_EIO, -5, "input/output error")                  \
  X(XD_EFORMAT, -6, "invalid model bundle")            \
  X(XD_ECANCELED, -7, "canceled")                      \
  X(XD_ETIMEDOUT, -8, "deadline exceeded")             \
  X(XD_EUNSUPPORTED, -9, "unsupported")                \
  X(XD_ECONFLICT, -10, "conflict")                     \
  X(XD_EINTERNAL, -11, "internal error")               \
  /* codes only the API layer produces; listed here so there is one list */ \
  X(XD_EJSON, -12, "invalid json")                     \
  X(XD_EMETHOD, -13, "method not allowed")             \
  X(XD_EUNAUTH, -14, "unauthenticated")                \
  X(XD_EPERM, -15, "permission denied")                \
  X(XD_EMEDIA, -16, "unsupported media type")          \
  X(XD_EOVERLOAD, -17, "overloaded")

enum {
#define XD_STATUS_ENUM(name, value, text) name = value,
  XD_STATUS_LIST(XD_STATUS_ENUM)
#undef XD_STATUS_ENUM
};

#define XD_ERROR_FIELD_MAX 160
#define XD_ERROR_TEXT_MAX 400

/* Filled by the callee where an error happens; caller-owned storage. */
typedef struct xd_error {
  int code;
  char field[XD_ERROR_FIELD_MAX]; /* JSON-ish path of the offending value, "" if none */
  char text[XD_ERROR_TEXT_MAX];   /* human-readable sentence */
} xd_error_t;

/* Returns the static name of a status code ("invalid argument"). */
const char *xd_strerror(int code);

/* Clears err (err may be NULL). */
void xd_error_clear(xd_error_t *err);

/* Sets err (may be NULL) and returns code, so callers can write `return xd_error_set(...)`.
 * field may be NULL. */
int xd_error_set(xd_error_t *err, int code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Prefixes err->field with prefix ("background" + "[3]" -> "background[3]"); used by
 * decoders that call nested decoders. sep is inserted between them unless field starts
 * with '['. */
void xd_error_prefix_field(xd_error_t *err, const char *prefix);

/* Cooperative cancellation: long core loops call xd_cancel_check between batches.
 * flag (may be NULL) is set by another thread to ask for a stop; deadline_ns is a
 * CLOCK_MONOTONIC time in nanoseconds, 0 for none. */
typedef struct xd_cancel {
  const atomic_int *flag;
  int64_t deadline_ns;
} xd_cancel_t;

/* Returns XD_OK, XD_ECANCELED (flag set) or XD_ETIMEDOUT (deadline passed). c may be NULL. */
int xd_cancel_check(const xd_cancel_t *c);

/* CLOCK_MONOTONIC now, in nanoseconds. */
int64_t xd_now_ns(void);

#endif
