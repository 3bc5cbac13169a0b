/* `outboard info MODEL.gguf`: placeholder until the GGUF reader lands; replaced by it. */
#include "cli/cli.h"

#include <stdio.h>

int cli_cmd_info(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "outboard info: not built yet\n");
    return 1;
}
