/* version.h — the release version, one definition for every layer. */
#ifndef XD_VERSION_H
#define XD_VERSION_H
#ifndef XD_VERSION
#define XD_VERSION "0.1.0"
#endif
#endif
