#!/usr/bin/python3
"""foundation_hvac.py — the production life cycle driven by a real Vault
client library (python3-hvac 0.11.2): a server started from a config file
(sealed, uninitialised) is initialised, unsealed with 3 of 5 shares, serves
tokens, is sealed (then only the exempt endpoints answer), restarted on the
same storage and unsealed again; the SQLite files never hold a token, an
unseal key or a planted secret in clear."""

import glob
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib_nhid import Checks, Env  # noqa: E402

import hvac  # noqa: E402
import hvac.exceptions  # noqa: E402

t = Checks()
env = Env()
cfg = env.prod_config("prod")
srv = env.start_config("prod", cfg)
print(f"server: {srv.url} (pid {srv.pid}), hvac {getattr(hvac, '__version__', '?')}")


def client(token=None):
    return hvac.Client(url=srv.url, verify=srv.cacert, token=token)


c = client()

# ---- init and unseal ---------------------------------------------------------
t.eq("fresh server: is_initialized() is False", t.call("is_initialized", c.sys.is_initialized), False)
t.eq("fresh server: is_sealed() is True", c.sys.is_sealed(), True)
st, body, _ = srv.api("GET", "auth/token/lookup-self", token="")
t.eq("uninitialised server: token endpoints answer 503", st, 503)

init = t.call("sys.initialize(5, 3)", lambda: c.sys.initialize(5, 3))
if not init:
    print(srv.log_tail())
    t.finish()
keys, root = init.get("keys", []), init.get("root_token", "")
t.eq("initialize returns 5 hex keys", len(keys), 5)
t.eq("initialize returns 5 base64 keys", len(init.get("keys_base64", [])), 5)
t.ok("initialize returns a root token", root.startswith("nhs."), root)
t.ok("keys are distinct", len(set(keys)) == 5, keys)
t.eq("after init: is_initialized() is True", c.sys.is_initialized(), True)
t.eq("after init: still sealed", c.sys.is_sealed(), True)
t.raises("initialize twice is refused", lambda: c.sys.initialize(5, 3), hvac.exceptions.VaultError)

ss = c.sys.read_seal_status()
t.ok("seal-status: t=3 n=5 progress=0", (ss["t"], ss["n"], ss["progress"]) == (3, 5, 0), ss)
r = c.sys.submit_unseal_key(keys[0])
t.ok("one share: progress 1, still sealed, nonce set",
     r["sealed"] and r["progress"] == 1 and r["nonce"], r)
r = c.sys.submit_unseal_key(reset=True)
t.ok("reset: progress back to 0", r["progress"] == 0 and r["sealed"], r)
t.raises("garbage share is refused (400)", lambda: c.sys.submit_unseal_key("bm90IGEga2V5"),
         hvac.exceptions.InvalidRequest)

r = t.call("submit_unseal_keys(keys[:3])", lambda: c.sys.submit_unseal_keys(keys[:3]))
t.ok("3 of 5 shares unseal", r is not None and r.get("sealed") is False, r)
t.eq("is_sealed() is False", c.sys.is_sealed(), False)
health = c.sys.read_health_status(method="GET")
t.ok("health: initialized, unsealed", health["initialized"] and not health["sealed"], health)

# ---- tokens --------------------------------------------------------------------
rc = client(root)
t.eq("root token: is_authenticated()", rc.is_authenticated(), True)
PLANTED = "planted-secret-3f9c1e0b7d"
tok = t.call("auth.token.create(policies, ttl='1h', meta)", lambda: rc.auth.token.create(
    policies=["web", "db"], ttl="1h", meta={"note": PLANTED}))
token = tok["auth"]["client_token"] if tok else ""
t.ok("created token has the policies", tok and tok["auth"]["policies"] == ["web", "db"], tok)
t.ok("created token ttl ~1h", tok and 3590 <= tok["auth"]["lease_duration"] <= 3600, tok)

uc = client(token)
look = t.call("lookup_self with the new token", uc.auth.token.lookup_self)
t.ok("lookup_self: policies, ttl, meta", look and look["data"]["policies"] == ["web", "db"]
     and look["data"]["ttl"] > 3500 and look["data"]["meta"] == {"note": PLANTED}, look)
renewed = t.call("renew_self(increment='2h')", lambda: uc.auth.token.renew_self(increment="2h"))
t.ok("renew_self extends the lease to ~2h", renewed and renewed["auth"]["lease_duration"] >= 7190,
     renewed)

# A second token that must survive the restart.
keep = rc.auth.token.create(policies=["web"], ttl="1h")["auth"]["client_token"]
# A token revoked before the restart must stay revoked.
t.call("revoke_self", uc.auth.token.revoke_self)
t.raises("lookup_self after revoke_self fails (403)", uc.auth.token.lookup_self,
         hvac.exceptions.Forbidden)
t.eq("revoked token: is_authenticated() is False", uc.is_authenticated(), False)

# ---- seal -----------------------------------------------------------------------
t.call("sys.seal()", rc.sys.seal)
t.eq("after seal: is_sealed() is True", c.sys.is_sealed(), True)
checks = [("GET", "auth/token/lookup-self", None), ("POST", "auth/token/create", {}),
          ("POST", "auth/token/lookup", {"token": keep}), ("GET", "sys/key-status", None),
          ("GET", "sys/audit", None), ("GET", "sys/metrics", None),
          ("PUT", "sys/rotate", None), ("LIST", "auth/token/accessors", None),
          ("POST", "auth/token/revoke-self", None), ("PUT", "sys/seal", None)]
for method, path, body in checks:
    st, b, _ = srv.api(method, path, body, token=root)
    t.eq(f"sealed: {method} {path} -> 503", st, 503)
st, b, _ = srv.api("GET", "sys/health", token="")
t.ok("sealed: sys/health answers (503 with sealed=true)",
     st == 503 and isinstance(b, dict) and b.get("sealed") is True, (st, b))
st, b, _ = srv.api("GET", "sys/seal-status", token="")
t.ok("sealed: sys/seal-status answers 200", st == 200 and b.get("sealed") is True, (st, b))
st, b, _ = srv.api("GET", "sys/init", token="")
t.ok("sealed: sys/init answers 200", st == 200 and b.get("initialized") is True, (st, b))
t.raises("sealed: hvac lookup_self raises VaultDown", client(keep).auth.token.lookup_self,
         hvac.exceptions.VaultDown)
r = c.sys.submit_unseal_key(keys[4])
t.ok("sealed: sys/unseal answers (progress 1)", r["progress"] == 1 and r["sealed"], r)

# ---- restart on the same storage --------------------------------------------------
def storage_bytes():
    names, data = [], b""
    for f in sorted(glob.glob(cfg["db"] + "*")):  # nhid.db, -wal, -shm
        names.append(os.path.basename(f))
        with open(f, "rb") as fh:
            data += fh.read()
    return names, data


live_files, live_blob = storage_bytes()  # while running: the WAL too
t.eq("server stops cleanly on SIGTERM (exit 0)", srv.stop(), 0)
files, blob = storage_bytes()
blob += live_blob
files = sorted(set(files) | set(live_files))
t.ok(f"storage files exist ({', '.join(files)})", len(blob) > 0)
secrets = {"root token": root, "created token": token, "surviving token": keep,
           "planted meta value": PLANTED}
for i, k in enumerate(keys):
    secrets[f"unseal key {i + 1} (hex)"] = k
    secrets[f"unseal key {i + 1} (base64)"] = init["keys_base64"][i]
for what, value in secrets.items():
    t.ok(f"SQLite files do not contain the {what} in clear", value.encode() not in blob,
         f"found {value!r}")
t.ok("SQLite files contain no 'nhs.' token prefix", b"nhs." not in blob)
t.ok("SQLite files do not contain the policy names in clear (values are encrypted)",
     b'"web"' not in blob and b"display_name" not in blob)

srv = env.start_config("prod", cfg)
c = client()
t.eq("restarted: initialized", c.sys.is_initialized(), True)
t.eq("restarted: sealed", c.sys.is_sealed(), True)
st, b, _ = srv.api("GET", "auth/token/lookup-self", token=keep)
t.eq("restarted and sealed: lookup-self 503", st, 503)
r = t.call("unseal with shares 5, 2, 4", lambda: c.sys.submit_unseal_keys([keys[4], keys[1], keys[3]]))
t.ok("restarted: unsealed", r is not None and r.get("sealed") is False, r)
look = t.call("token created before the restart still works", client(keep).auth.token.lookup_self)
t.ok("... with its policies", look and look["data"]["policies"] == ["web"], look)
t.raises("token revoked before the restart stays revoked", client(token).auth.token.lookup_self,
         hvac.exceptions.Forbidden)
t.eq("root token still authenticates", client(root).is_authenticated(), True)
# Two shares from different inits never combine: a share set mixing a wrong key fails.
client(root).sys.seal()
bad = "ff" + "00" * 32  # a share with an index no real share has
try:
    c.sys.submit_unseal_keys([keys[0], keys[1], bad])
    still = c.sys.is_sealed()
except hvac.exceptions.VaultError:
    still = c.sys.is_sealed()
t.eq("a forged third share does not unseal", still, True)
r = c.sys.submit_unseal_keys(keys[2:5])
t.ok("the right shares unseal again", r is not None and r.get("sealed") is False, r)

t.finish()
