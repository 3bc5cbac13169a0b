/* `outboard bench`: placeholder, filled in below. */
#include "cli/cli.h"

#include <stdio.h>

int cli_cmd_bench(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "outboard bench: not built yet\n");
    return 1;
}
