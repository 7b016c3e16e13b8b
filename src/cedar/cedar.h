/*
 * cedar — the Cedar policy language: parser, evaluator, schema validator.
 * (Public API is being written; see docs/policy.md.)
 */
#ifndef NHID_CEDAR_H
#define NHID_CEDAR_H

/* Entry point for `nhid policy check|eval|test ...` (argv[0] == "policy"). */
int nhid_policy_cli_main(int argc, char **argv);

#endif /* NHID_CEDAR_H */
