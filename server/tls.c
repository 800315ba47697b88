/* tls.c — see tls.h. */
#include "server/tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/log.h"

/* TLS 1.2 and 1.3 only, AEAD ciphers, forward secrecy; the server's order wins. */
#define TLS_PRIORITIES \
  "SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:+CHACHA20-POLY1305:" \
  "-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-RSA:+ECDHE-ECDSA:%SERVER_PRECEDENCE"

/* Reads a whole PEM file into a NUL-terminated buffer. */
static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 8192, n = 0;
  char *b = malloc(cap);
  while (b) {
    n += fread(b + n, 1, cap - n - 1, f);
    if (n < cap - 1) break;
    char *g = realloc(b, cap * 2);
    if (!g) {
      explicit_bzero(b, n);
      free(b);
      b = NULL;
      break;
    }
    b = g;
    cap *= 2;
  }
  if (b && (ferror(f) || n == 0)) {
    explicit_bzero(b, n);
    free(b);
    b = NULL;
  }
  fclose(f);
  if (b) b[n] = '\0';
  *len = n;
  return b;
}

int xd_tls_load(xd_tls_t *t, const char *cert_path, const char *key_path) {
  memset(t, 0, sizeof *t);
  t->opts[0] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
  if (!cert_path[0]) return 0;
  size_t cl = 0;
  t->cert = read_file(cert_path, &cl);
  t->key = read_file(key_path, &t->key_len);
  if (!t->cert || !t->key) {
    xd_log(XD_LOG_ERROR, "cannot read the TLS %s file %s", t->cert ? "key" : "certificate",
           t->cert ? key_path : cert_path);
    xd_tls_free(t);
    return -1;
  }
  t->opts[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, t->cert};
  t->opts[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, t->key};
  t->opts[2] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)TLS_PRIORITIES};
  t->opts[3] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
  return 0;
}

void xd_tls_free(xd_tls_t *t) {
  free(t->cert);
  if (t->key) explicit_bzero(t->key, t->key_len);
  free(t->key);
  t->cert = t->key = NULL;
  t->key_len = 0;
  t->opts[0] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
}
