/* Placeholder until the Cedar engine lands. */
#include <stdio.h>
#include "cedar/cedar.h"
int nhid_policy_cli_main(int argc, char **argv)
{
    (void)argc; (void)argv;
    fprintf(stderr, "nhid policy: not built yet\n");
    return 2;
}
