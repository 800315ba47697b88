/* tls.h — the certificate and key libmicrohttpd serves HTTPS with (--tls-cert/--tls-key).
 *
 * libmicrohttpd takes PEM text, not paths: both files are read once into memory. The
 * protocol and cipher policy (TLS 1.2 and 1.3, AEAD ciphers, forward secrecy, the
 * server's order) is fixed here. The key's buffer is wiped when freed. */
#ifndef XD_SERVER_TLS_H
#define XD_SERVER_TLS_H

#include <microhttpd.h>
#include <stddef.h>

typedef struct xd_tls {
  char *cert, *key; /* NUL-terminated PEM text; NULL when TLS is off */
  size_t key_len;
  struct MHD_OptionItem opts[4]; /* for MHD_OPTION_ARRAY; just MHD_OPTION_END when off */
} xd_tls_t;

/* Reads cert_path and key_path ("" = TLS off: t->opts is empty). Returns 0, or -1 after
 * logging which file could not be read (t is then empty). */
int xd_tls_load(xd_tls_t *t, const char *cert_path, const char *key_path);

/* Wipes the key and frees both texts. Only after MHD_stop_daemon: MHD keeps pointers. */
void xd_tls_free(xd_tls_t *t);

#endif
