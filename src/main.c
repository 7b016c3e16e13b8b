/* nhid — one binary: `nhid server`, `nhid policy ...`, and the CLI. */
#include <stdio.h>
#include <string.h>

#include "cedar/cedar.h"
#include "cli/cli.h"
#include "server/server.h"

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "server") == 0)
        return nhid_server_main(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "policy") == 0)
        return nhid_policy_cli_main(argc - 1, argv + 1);
    return nhid_cli_main(argc, argv);
}
