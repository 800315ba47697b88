/* unicode_int.h — the layout of the generated tables in core/unicode_tables.c (made by
 * tools/make_unicode_tables.py); only core/unicode.c reads them. */
#ifndef XD_UNICODE_INT_H
#define XD_UNICODE_INT_H

#include <stddef.h>
#include <stdint.h>

typedef struct xd_uni_range {
  uint32_t lo, hi, value; /* lo..hi inclusive */
} xd_uni_range_t;

typedef struct xd_uni_map {
  uint32_t cp, off, len; /* cp -> pool[off .. off+len) */
} xd_uni_map_t;

extern const char xd_uni_data_version[];
extern const xd_uni_range_t xd_uni_flag_ranges[];
extern const size_t xd_uni_n_flag_ranges;
extern const xd_uni_range_t xd_uni_ccc_ranges[];
extern const size_t xd_uni_n_ccc_ranges;
extern const xd_uni_map_t xd_uni_decomp[];
extern const size_t xd_uni_n_decomp;
extern const uint32_t xd_uni_decomp_pool[];
extern const xd_uni_map_t xd_uni_lower_map[];
extern const size_t xd_uni_n_lower;
extern const uint32_t xd_uni_lower_pool[];

#endif
