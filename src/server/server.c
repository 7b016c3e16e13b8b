/* Placeholder until the server lands. */
#include <stdio.h>
#include "server/server.h"
int nhid_server_main(int argc, char **argv)
{
    (void)argc; (void)argv;
    fprintf(stderr, "nhid server: not built yet\n");
    return 2;
}
