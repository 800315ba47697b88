/* cli_bundle.h — `explaind bundle ...` subcommands (server/cli_bundle.c).
 *
 * `explaind bundle pack DIR [-o FILE]`: a folder bundle (DIR/model.json and the
 * background CSV and ONNX file it names) as one self-contained JSON bundle that
 * PUT /models/{name} accepts. Runs before any configuration is read and starts nothing.
 */
#ifndef XD_SERVER_CLI_BUNDLE_H
#define XD_SERVER_CLI_BUNDLE_H

/* argv[0] is "bundle". Returns the process exit status: 0 done, 1 failed (printed why),
 * 2 usage error. */
int xd_cli_bundle(int argc, char **argv);

#endif
