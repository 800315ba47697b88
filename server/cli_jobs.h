/* cli_jobs.h — `explaind jobs ...` subcommands (server/cli_jobs.c, docs/jobs.md).
 *
 * `explaind jobs run SPEC.json --model-dir DIR [--shard I/N] --output FILE`: runs shard I
 * of N of a job (the POST /jobs body) without a server and writes its NDJSON lines.
 * `explaind jobs merge FILE... --output FILE`: merges the shards' files into the file the
 * server would have written, byte for byte. Run before any configuration is read.
 */
#ifndef XD_SERVER_CLI_JOBS_H
#define XD_SERVER_CLI_JOBS_H

/* argv[0] is "jobs". Returns the exit status: 0 done, 1 failed (printed why), 2 usage. */
int xd_cli_jobs(int argc, char **argv);

#endif
