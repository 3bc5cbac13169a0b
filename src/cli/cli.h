/*
 * The outboard command line: one file per subcommand (src/cli/cmd_<name>.c), each exposing
 * `int cli_cmd_<name>(int argc, char **argv)` where argv[0] is the subcommand's name. A command
 * returns the process exit status: 0 on success, 1 on a runtime failure, 2 on bad usage.
 * This is the only code that may print to the terminal for the user or exit().
 */
#ifndef OB_CLI_H
#define OB_CLI_H

int cli_cmd_info(int argc, char **argv);
int cli_cmd_tokenize(int argc, char **argv);
int cli_cmd_template(int argc, char **argv);
int cli_cmd_quantize(int argc, char **argv);

#endif
