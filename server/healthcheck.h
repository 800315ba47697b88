/* healthcheck.h — `explaind --healthcheck PORT|URL`: one blocking HTTP GET, for a
 * container's HEALTHCHECK (the runtime image needs no curl).
 */
#ifndef XD_SERVER_HEALTHCHECK_H
#define XD_SERVER_HEALTHCHECK_H

/* target is a port ("8080" = http://127.0.0.1:8080/healthz), "HOST:PORT", or
 * "http[s]://HOST[:PORT][/PATH]" (path default /healthz; HOST may be [V6ADDR]). https
 * talks TLS without verifying the certificate (a liveness probe, not a client). The
 * caller turns a bare port into https://127.0.0.1:PORT/healthz when TLS is on. Returns the
 * HTTP status, or -1 when the target is malformed or nothing answered within timeout_ms
 * (a message goes to stderr). Any thread; no global state. */
int xd_healthcheck(const char *target, int timeout_ms);

#endif
