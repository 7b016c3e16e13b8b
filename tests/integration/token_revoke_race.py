#!/usr/bin/python3
"""token_revoke_race — a revoked token is refused at once, on every connection.

Event loops keep decoded token entries and serve them without reading the
store while no write batch has touched the key (docs/dev/architecture.md,
"Decoded entries"). Concurrent clients each create a token, use it twice on
a second keep-alive connection (so that connection's loop has it cached),
revoke it on the first connection, and use it again on the second: the
answer after the acknowledged revocation must be 403, every time. Also a
suspended identity's cached AppRole login entries must stop logins at once."""

import http.client
import json
import os
import ssl
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib_nhid import Checks, Env  # noqa: E402

CLIENTS = 8
ROUNDS = 60

env = Env()
srv = env.start_dev("race")
t = Checks()
lock = threading.Lock()
results = {"rounds": 0, "stale": 0, "other": []}


def connect():
    ctx = ssl.create_default_context(cafile=srv.cacert)
    return http.client.HTTPSConnection("127.0.0.1", srv.port, timeout=10, context=ctx)


def call(conn, method, path, token, body=None):
    conn.request(method, "/v1/" + path, body=None if body is None else json.dumps(body),
                 headers={"X-Vault-Token": token, "Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    return r.status, data


def client():
    a, b = connect(), connect()
    for _ in range(ROUNDS):
        st, data = call(a, "POST", "auth/token/create", srv.token, {"policies": ["default"]})
        tok = json.loads(data)["auth"]["client_token"]
        s1, _ = call(b, "GET", "auth/token/lookup-self", tok)
        s2, _ = call(b, "GET", "auth/token/lookup-self", tok)
        s3, _ = call(a, "POST", "auth/token/revoke-self", tok, {})
        s4, _ = call(b, "GET", "auth/token/lookup-self", tok)
        with lock:
            results["rounds"] += 1
            if s4 == 200:
                results["stale"] += 1
            elif (s1, s2, s4) != (200, 200, 403) or s3 not in (200, 204):
                results["other"].append((st, s1, s2, s3, s4))


threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
for th in threads:
    th.start()
for th in threads:
    th.join()
t.eq(f"{CLIENTS * ROUNDS} create/use/revoke/use rounds ran", results["rounds"], CLIENTS * ROUNDS)
t.eq("a revoked token was never accepted after its revocation was acknowledged", results["stale"], 0)
t.eq("no other status was unexpected", results["other"], [])

# A suspended identity: AppRole logins (whose role, secret ID and identity entries
# the loops cache) stop at once, and resume restores them.
st, body, _ = srv.api("POST", "identity/machine/race-1", {"kind": "workload", "owner": "t"})
t.eq("register race-1", st, 200)
st, body, _ = srv.api("POST", "auth/approle/role/race-1", {"token_policies": ["default"]})
t.ok("approle role for race-1", st in (200, 204), body)
st, body, _ = srv.api("GET", "auth/approle/role/race-1/role-id")
role_id = body["data"]["role_id"]
st, body, _ = srv.api("POST", "auth/approle/role/race-1/secret-id", {})
secret_id = body["data"]["secret_id"]
conn = connect()
login = {"role_id": role_id, "secret_id": secret_id}
codes = [call(conn, "POST", "auth/approle/login", "", login)[0] for _ in range(5)]
t.eq("logins work (entries now cached)", codes, [200] * 5)
st, body, _ = srv.api("POST", "identity/machine/race-1/suspend", {"reason": "race test"})
t.eq("suspend race-1", st, 200)
t.eq("the next login on the same connection is refused", call(conn, "POST", "auth/approle/login", "", login)[0], 403)
st, body, _ = srv.api("POST", "identity/machine/race-1/resume", {"reason": "race test"})
t.eq("resume race-1", st, 200)
t.eq("the next login works again", call(conn, "POST", "auth/approle/login", "", login)[0], 200)
t.finish()
