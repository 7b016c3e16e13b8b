/*
 * server — `nhid server`: configuration, start-up (dev and production),
 * wiring of store, barrier, audit, engines and the HTTP listeners.
 */
#ifndef NHID_SERVER_H
#define NHID_SERVER_H

/* Entry point for `nhid server ...` (argv[0] == "server"). Returns the exit code. */
int nhid_server_main(int argc, char **argv);

#endif /* NHID_SERVER_H */
