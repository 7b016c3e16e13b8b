#!/usr/bin/python3
"""identity_approle_hvac.py — AppRole bound to a machine identity, driven by
python3-hvac 0.11.2: role create/read, role-id, secret-id generate / lookup /
destroy (by value and accessor), login (token carries the identity, 15-minute
default TTL, the identity becomes active), uniform 403 for a wrong role ID or
secret ID, bad input naming the field, secret_id_num_uses, bound CIDRs,
suspend (live token stops at once, login refused), resume, failure rate
limiting (429), the credential inventory and the audit record."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib_nhid import Checks, Env  # noqa: E402

import hvac  # noqa: E402
import hvac.exceptions  # noqa: E402

t = Checks()
env = Env()
srv = env.start_dev("srv")
audit_path = env.path("audit.log")
st, body, _ = srv.api("POST", "sys/audit/file", {"type": "file", "options": {"file_path": audit_path}})
t.ok("enable a file audit device", st in (200, 204), body)

root = hvac.Client(url=srv.url, verify=srv.cacert, token=srv.token)


def anon():
    return hvac.Client(url=srv.url, verify=srv.cacert)


st, body, _ = srv.api("POST", "identity/machine/web-1",
                      {"kind": "workload", "owner": "team-a", "labels": {"env": "prod"}})
t.eq("register identity web-1", st, 200)
entity_id = body["data"]["id"]

# ---- role ------------------------------------------------------------------------
t.call("create_or_update_approle(web-1)", lambda: root.auth.approle.create_or_update_approle(
    "web-1", token_policies=["web", "db"], secret_id_ttl="1h", token_max_ttl="30m"))
role = t.call("read_role", lambda: root.auth.approle.read_role("web-1"))
t.eq("role is bound to identity web-1", role and role["data"]["identity"], "web-1")
t.eq("role token_policies", role and role["data"]["token_policies"], ["web", "db"])
roles = t.call("list_roles", lambda: root.auth.approle.list_roles())
t.ok("list_roles has web-1", roles and "web-1" in roles["data"]["keys"], roles)

role_id = t.call("read_role_id", lambda: root.auth.approle.read_role_id("web-1"))["data"]["role_id"]
t.ok("role_id is a UUID", len(role_id) == 36, role_id)

gen = t.call("generate_secret_id", lambda: root.auth.approle.generate_secret_id(
    "web-1", metadata={"host": "node-7"}))
secret_id = gen["data"]["secret_id"]
accessor = gen["data"]["secret_id_accessor"]
t.ok("secret ID is a 256-bit random value with a prefix", secret_id.startswith("nsi.") and len(secret_id) >= 40)
t.eq("secret ID ttl comes from the role", gen["data"]["secret_id_ttl"], 3600)

look = t.call("read_secret_id", lambda: root.auth.approle.read_secret_id("web-1", secret_id))
t.eq("read_secret_id gives the accessor", look and look["data"]["secret_id_accessor"], accessor)
t.eq("read_secret_id gives the metadata", look and look["data"]["metadata"], {"host": "node-7"})
acc = t.call("list_secret_id_accessors", lambda: root.auth.approle.list_secret_id_accessors("web-1"))
t.ok("accessor listed", acc and accessor in acc["data"]["keys"], acc)
la = t.call("read_secret_id_accessor", lambda: root.auth.approle.read_secret_id_accessor("web-1", accessor))
t.eq("lookup by accessor", la and la["data"]["secret_id_accessor"], accessor)

# ---- login -----------------------------------------------------------------------
c = anon()
login = t.call("approle login", lambda: c.auth.approle.login(role_id, secret_id))
auth = login["auth"] if login else {}
t.eq("token carries the entity id", auth.get("entity_id"), entity_id)
t.eq("token metadata names the identity", (auth.get("metadata") or {}).get("identity"), "web-1")
t.eq("token metadata carries secret ID metadata", (auth.get("metadata") or {}).get("host"), "node-7")
t.ok("token policies from the role", set(auth.get("policies", [])) == {"web", "db"}, auth)
t.ok("default TTL is 15 minutes", 880 <= auth.get("lease_duration", 0) <= 900, auth)
tok = auth.get("client_token")
st, body, _ = srv.api("GET", "auth/token/lookup-self", token=tok)
t.eq("the login token works", st, 200)
t.eq("lookup-self shows the identity", body and body["data"].get("identity"), "web-1")
st, body, _ = srv.api("GET", "identity/machine/web-1")
t.eq("first login activated the identity (pending -> active)", body["data"]["state"], "active")
t.ok("activation is in the history", any(h["to"] == "active" for h in body["data"]["history"]), body)

# ---- wrong credentials: uniform 403 --------------------------------------------
e1 = t.raises("wrong secret ID -> error", lambda: anon().auth.approle.login(role_id, "nsi.wrong"),
              hvac.exceptions.Forbidden)
e2 = t.raises("wrong role ID -> error", lambda: anon().auth.approle.login("0000", secret_id),
              hvac.exceptions.Forbidden)
t.eq("wrong role ID and wrong secret ID give the same message", str(e1), str(e2))
st, body, _ = srv.api("POST", "auth/approle/login", {"role_id": role_id, "secret_id": 5}, token="")
t.eq("secret_id of the wrong type -> 400", st, 400)
t.ok("... naming the field", "secret_id" in json.dumps(body), body)
st, body, _ = srv.api("POST", "auth/approle/login", {"role_id": role_id, "secret_id": secret_id, "x": 1}, token="")
t.eq("unknown login field -> 400", st, 400)

# ---- bad input on the role -------------------------------------------------------
st, body, _ = srv.api("POST", "auth/approle/role/bad", {"secret_id_bound_cidrs": ["10.0.0.0/33"], "identity": "web-1"})
t.eq("malformed CIDR -> 400", st, 400)
t.ok("... naming the field", "secret_id_bound_cidrs" in json.dumps(body), body)
st, body, _ = srv.api("POST", "auth/approle/role/bad", {"token_ttl": "10x", "identity": "web-1"})
t.eq("bad duration -> 400", st, 400)
t.ok("... naming the field", "token_ttl" in json.dumps(body), body)
st, body, _ = srv.api("POST", "auth/approle/role/bad", {"bogus": 1, "identity": "web-1"})
t.eq("unknown role field -> 400", st, 400)
st, body, _ = srv.api("POST", "auth/approle/role/bad", {})
t.eq("role without an existing identity -> 400", st, 400)
st, body, _ = srv.api("POST", "auth/approle/role/bad%20name", {"identity": "web-1"})
t.eq("role name with a space -> 400", st, 400)

# ---- num_uses and CIDRs ----------------------------------------------------------
g2 = root.auth.approle.generate_secret_id("web-1")
st, body, _ = srv.api("POST", "auth/approle/role/web-1/secret-id", {"num_uses": 1})
one = body["data"]["secret_id"]
t.call("single-use secret ID: first login", lambda: anon().auth.approle.login(role_id, one))
t.raises("single-use secret ID: second login refused", lambda: anon().auth.approle.login(role_id, one),
         hvac.exceptions.Forbidden)
st, body, _ = srv.api("POST", "auth/approle/role/web-1/secret-id", {"cidr_list": "10.9.0.0/16"})
far = body["data"]["secret_id"]
t.raises("secret ID bound to 10.9.0.0/16: login from 127.0.0.1 refused",
         lambda: anon().auth.approle.login(role_id, far), hvac.exceptions.Forbidden)
st, body, _ = srv.api("POST", "auth/approle/role/web-1/secret-id", {"cidr_list": "127.0.0.0/8"})
near = body["data"]["secret_id"]
t.call("secret ID bound to 127.0.0.0/8: login from 127.0.0.1 works",
       lambda: anon().auth.approle.login(role_id, near))

# token_bound_cidrs: the token itself works only from those addresses, on every use.
st, body, _ = srv.api("POST", "auth/approle/role/web-1/secret-id", {"token_bound_cidrs": ["127.0.0.1/32"]})
pinned_sid = body["data"]["secret_id"]
st, body, _ = srv.api("POST", "auth/approle/login", {"role_id": role_id, "secret_id": pinned_sid}, token="")
t.eq("login with a secret ID carrying token_bound_cidrs", st, 200)
pinned = body["auth"]["client_token"]
st, body, _ = srv.api("GET", "auth/token/lookup-self", token=pinned)
t.eq("bound token used from 127.0.0.1 -> 200", st, 200)
t.eq("... lookup shows its bound_cidrs", body["data"].get("bound_cidrs"), ["127.0.0.1/32"])
st, body, _ = srv.api("GET", "auth/token/lookup-self", token=pinned, source="127.0.0.2")
t.eq("bound token used from 127.0.0.2 -> 403", st, 403)
t.ok("... naming bound_cidrs", "bound_cidrs" in json.dumps(body), body)
st, body, _ = srv.api("POST", "auth/approle/login", {"role_id": role_id, "secret_id": near}, token="",
                      source="127.0.0.2")
t.eq("an unbound token's login from 127.0.0.2 works", st, 200)
st, body, _ = srv.api("GET", "auth/token/lookup-self", token=body["auth"]["client_token"], source="127.0.0.2")
t.eq("... and its token works from 127.0.0.2", st, 200)

# ---- destroy ---------------------------------------------------------------------
t.call("destroy_secret_id", lambda: root.auth.approle.destroy_secret_id("web-1", g2["data"]["secret_id"]))
t.raises("destroyed secret ID cannot log in", lambda: anon().auth.approle.login(role_id, g2["data"]["secret_id"]),
         hvac.exceptions.Forbidden)
g3 = root.auth.approle.generate_secret_id("web-1")
t.call("destroy_secret_id_accessor", lambda: root.auth.approle.destroy_secret_id_accessor(
    "web-1", g3["data"]["secret_id_accessor"]))
t.raises("secret ID destroyed by accessor cannot log in",
         lambda: anon().auth.approle.login(role_id, g3["data"]["secret_id"]), hvac.exceptions.Forbidden)

# ---- suspend: the live token stops at once ---------------------------------------
st, body, _ = srv.api("POST", "identity/machine/web-1/suspend", {"reason": "compromised host"})
t.eq("suspend web-1", st, 200)
st, body, _ = srv.api("GET", "auth/token/lookup-self", token=tok)
t.eq("suspended identity's live token -> 403", st, 403)
t.ok("... saying the identity is suspended", "identity web-1 is suspended" in json.dumps(body), body)
st, body, _ = srv.api("POST", "auth/approle/login", {"role_id": role_id, "secret_id": secret_id}, token="")
t.eq("suspended identity cannot log in", st, 403)
st, body, _ = srv.api("POST", "identity/machine/web-1/resume", {"reason": "host rebuilt"})
t.eq("resume web-1", st, 200)
st, body, _ = srv.api("GET", "auth/token/lookup-self", token=tok)
t.eq("after resume the token works again", st, 200)

# ---- inventory -------------------------------------------------------------------
time.sleep(2.5)  # usage counters are flushed every 2 s
st, body, _ = srv.api("GET", "identity/machine/web-1/creds")
t.eq("creds endpoint", st, 200)
creds = body["data"]["credentials"] if st == 200 else []
types = {c["type"] for c in creds}
t.ok("inventory holds tokens and secret IDs", {"token", "approle-secret-id"} <= types, types)
t.ok("every credential has an expiry", all(c["expires"] for c in creds), creds)
sid = [c for c in creds if c["id"] == accessor]
t.ok("secret ID use count recorded", sid and sid[0]["use_count"] >= 1, sid)
destroyed = [c for c in creds if c["id"] == g3["data"]["secret_id_accessor"]]
t.ok("destroyed secret ID shows as revoked", destroyed and destroyed[0]["status"] == "revoked", destroyed)
st, body, _ = srv.api("GET", "identity/machine/web-1")
t.ok("last_seen and counters recorded", body["data"].get("last_seen") and body["data"]["auth_failure_count"] >= 1 and body["data"]["auth_success_count"] >= 3, body["data"])

# ---- rate limiting ---------------------------------------------------------------
statuses = []
for i in range(30):
    st, body, hdrs = srv.api("POST", "auth/approle/login", {"role_id": role_id, "secret_id": "nsi.bad%d" % i}, token="")
    statuses.append(st)
t.ok("repeated failures are rate-limited (429)", 429 in statuses, statuses)
t.ok("... after a burst of 403s", statuses[0] == 403, statuses)

# ---- audit -----------------------------------------------------------------------
recs = [json.loads(line) for line in open(audit_path) if line.strip()]
logins = [r for r in recs if r.get("request", {}).get("path") == "auth/approle/login"]
ok_rec = [r for r in logins if r.get("identity", {}).get("event") == "login"]
fail_rec = [r for r in logins if r.get("identity", {}).get("event") == "login_failed"]
t.ok("successful login audited with identity, method and source",
     ok_rec and ok_rec[0]["identity"]["name"] == "web-1" and ok_rec[0]["identity"]["method"] == "approle"
     and ok_rec[0]["identity"]["source"] == "127.0.0.1", ok_rec[:1])
t.ok("failed login audited", len(fail_rec) >= 2, len(fail_rec))
t.ok("no secret ID in clear in the audit log", secret_id not in open(audit_path).read())
trans = [r for r in recs if r.get("identity", {}).get("event") == "suspend"]
t.ok("suspend audited with who and why", trans and trans[0]["identity"]["why"] == "compromised host"
     and trans[0]["identity"]["who"], trans[:1])

t.finish()
