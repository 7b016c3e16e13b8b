/*
 * cli — the `nhid` command line: wraps the HTTP API with libcurl
 * (NHID_ADDR, NHID_TOKEN, NHID_CACERT, NHID_CLIENT_CERT, NHID_CLIENT_KEY),
 * `-h` on every command, `-format=json` on every command that prints data.
 */
#ifndef NHID_CLI_H
#define NHID_CLI_H

/* Entry point for every command except `server` and `policy` (argv[0] is the program). */
int nhid_cli_main(int argc, char **argv);

#endif /* NHID_CLI_H */
