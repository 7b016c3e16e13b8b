/* Placeholder until the CLI lands. */
#include <stdio.h>
#include "cli/cli.h"
int nhid_cli_main(int argc, char **argv)
{
    (void)argc; (void)argv;
    fprintf(stderr, "nhid: CLI not built yet\n");
    return 2;
}
