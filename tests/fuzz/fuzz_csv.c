/* fuzz_csv.c — CSV parsing and CSV -> dataset against features with categories (the
 * background and training-data path). */
#include <string.h>

#include "core/dataset.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static char *cats[] = {"employed", "retired", "self_employed", "unemployed"};
  static char *classes[] = {"no", "yes"};
  static xd_feature_t feats[] = {{"age", XD_FEAT_NUMERIC, 0, NULL}, {"employment", XD_FEAT_CATEGORICAL, 4, cats}};
  xd_csv_t csv;
  xd_error_t err;
  if (xd_csv_parse((const char *)data, size, 1000, &csv, &err) != XD_OK) return 0;
  xd_dataset_t ds;
  if (xd_dataset_from_csv(&csv, feats, 2, "approved", classes, 2, "csv", &ds, &err) == XD_OK) xd_dataset_deinit(&ds);
  if (xd_dataset_from_csv(&csv, feats, 2, NULL, NULL, 0, "csv", &ds, &err) == XD_OK) xd_dataset_deinit(&ds);
  xd_csv_deinit(&csv);
  return 0;
}
