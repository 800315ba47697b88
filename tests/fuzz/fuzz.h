/* fuzz.h — the contract of every fuzz target in tests/fuzz/fuzz_*.c.
 *
 * Each target defines LLVMFuzzerTestOneInput. `make fuzz` links it with libFuzzer
 * (clang -fsanitize=fuzzer,address,undefined) and runs it over its corpus
 * tests/fuzz/corpus/<target>/ for FUZZ_SECONDS; `make test` links the same target with
 * tests/fuzz/replay.c, a plain main that feeds it every file of the corpus and of
 * tests/fuzz/crashes/<target>/ (inputs that once crashed, kept as regressions), so the
 * corpora are replayed on every test run without the fuzzer. Targets run with the
 * repository root as the working directory. */
#ifndef XD_FUZZ_H
#define XD_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
