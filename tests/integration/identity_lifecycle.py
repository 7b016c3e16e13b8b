#!/usr/bin/python3
"""identity_lifecycle.py — the identity registry and lifecycle against a real
server: registration and bad input, the full transition table (every legal
and illegal transition, 409 naming the allowed ones), filtered list with
paging, groups, decommission revoking every credential in one transaction
(tokens, child tokens, AppRole secret IDs, join tokens — each proven to fail
afterwards), join tokens (single use under 16 concurrent attempts: exactly
one wins; a replay is 403 and audited as an anomaly), the hygiene report, and
the gate surviving a restart."""

import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib_nhid import Checks, Env  # noqa: E402

t = Checks()
os.environ["NHID_AUTH_FAIL_BURST"] = "10000"  # many deliberate failures from 127.0.0.1 here
env = Env()
srv = env.start_dev("srv")
audit_path = env.path("audit.log")
srv.api("POST", "sys/audit/file", {"type": "file", "options": {"file_path": audit_path}})


def api(method, path, body=None, token=None):
    return srv.api(method, path, body, token=token)


def create(name, kind="workload", owner="team-a", **kw):
    body = {"kind": kind, "owner": owner}
    body.update(kw)
    return api("POST", "identity/machine/" + name, body)


# ---- registration and bad input ---------------------------------------------------
st, body, _ = create("svc-1", labels={"env": "prod", "tier": "web"})
t.eq("create svc-1", st, 200)
t.eq("default SPIFFE ID", body["data"]["spiffe_id"], "spiffe://nhid.local/workload/svc-1")
t.eq("new identity is pending", body["data"]["state"], "pending")
st, body, _ = create("svc-1")
t.eq("duplicate -> 409", st, 409)
for bad, why in [("a%20b", "space"), ("-lead", "leading dash"), ("x" * 129, "too long"), ("caf%C3%A9", "non-ASCII")]:
    st, body, _ = create(bad)
    t.eq(f"name with {why} -> 400", st, 400)
st, body, _ = create("okname", kind="robot")
t.eq("unknown kind -> 400", st, 400)
t.ok("... naming the field", "kind" in json.dumps(body), body)
st, body, _ = create("okname", spiffe_id="spiffe://Bad.Domain/x")
t.eq("invalid SPIFFE ID (upper-case trust domain) -> 400", st, 400)
st, body, _ = create("okname", spiffe_id="spiffe://td/a//b")
t.eq("invalid SPIFFE ID (empty segment) -> 400", st, 400)
st, body, _ = create("okname", spiffe_id="https://td/a")
t.eq("invalid SPIFFE ID (scheme) -> 400", st, 400)
st, body, _ = create("okname", labels="notkv")
t.eq("malformed label -> 400", st, 400)
st, body, _ = create("okname", owner=5)
t.eq("owner of the wrong type -> 400 naming the field", (st, "owner" in json.dumps(body)), (400, True))
st, body, _ = create("okname", color="red")
t.eq("unknown field -> 400 naming it", (st, "color" in json.dumps(body)), (400, True))
st, body, _ = create("custom", spiffe_id="spiffe://example.org/ns/prod/sa/custom")
t.eq("explicit SPIFFE ID accepted", st, 200)
st, body, _ = create("custom2", spiffe_id="spiffe://example.org/ns/prod/sa/custom")
t.eq("SPIFFE ID already used -> 409", st, 409)

st, body, _ = api("PATCH", "identity/machine/svc-1", {"owner": "team-b", "labels": {"env": "staging"}, "description": "web tier"})
t.eq("update owner/labels/description", (st, body["data"]["owner"], body["data"]["labels"]), (200, "team-b", {"env": "staging"}))
st, body, _ = api("PUT", "identity/machine/svc-1", {"kind": "device"})
t.eq("kind cannot change -> 400", st, 400)
st, body, _ = api("GET", "identity/machine/nope")
t.eq("read unknown -> 404", st, 404)

# ---- list with filters and paging ------------------------------------------------
for i in range(25):
    create("dev-%02d" % i, kind="device", owner="fleet" if i % 2 else "iot", labels={"site": "ber" if i < 10 else "muc"})
create("orphan-1", kind="bot", owner="")
st, body, _ = api("LIST", "identity/machine?kind=device&limit=10")
t.eq("list kind=device page 1", body["data"]["keys"], ["dev-%02d" % i for i in range(10)])
t.eq("... next_after cursor", body["data"].get("next_after"), "dev-09")
st, body, _ = api("LIST", "identity/machine?kind=device&limit=10&after=dev-09")
t.eq("page 2", body["data"]["keys"], ["dev-%02d" % i for i in range(10, 20)])
st, body, _ = api("LIST", "identity/machine?kind=device&owner=iot&label=site%3Dmuc")
t.eq("kind+owner+label", body["data"]["keys"], ["dev-%02d" % i for i in range(10, 25) if i % 2 == 0])
st, body, _ = api("LIST", "identity/machine?owner=")
t.eq("owner= lists orphans", body["data"]["keys"], ["orphan-1"])
st, body, _ = api("LIST", "identity/machine?state=pending&kind=bot")
t.eq("state+kind", body["data"]["keys"], ["orphan-1"])
st, body, _ = api("LIST", "identity/machine?last_seen_before=1h&kind=bot")
t.eq("last_seen_before=1h: nothing that old", body["data"]["keys"], [])
st, body, _ = api("LIST", "identity/machine?last_seen_before=2099-01-01T00:00:00Z&kind=bot")
t.eq("last_seen_before a future time: all", body["data"]["keys"], ["orphan-1"])
st, body, _ = api("LIST", "identity/machine?state=sleepy")
t.eq("bad state filter -> 400", st, 400)
st, body, _ = api("LIST", "identity/machine?limit=0")
t.eq("bad limit -> 400", st, 400)

# ---- groups ----------------------------------------------------------------------
st, _, _ = api("POST", "identity/group/fleet", {"member_identities": ["dev-01", "dev-03"]})
t.eq("group fleet", st, 200)
st, _, _ = api("POST", "identity/group/all", {"member_groups": ["fleet"], "member_identities": ["svc-1"]})
t.eq("nested group", st, 200)
st, body, _ = api("POST", "identity/group/fleet", {"member_groups": ["all"]})
t.eq("cycle refused -> 400", st, 400)
st, body, _ = api("POST", "identity/group/x", {"member_identities": ["ghost"]})
t.eq("unknown member -> 400", st, 400)
st, body, _ = api("GET", "identity/group/all")
t.eq("read group", body["data"]["member_groups"], ["fleet"])

# ---- the transition table --------------------------------------------------------
ops = ["suspend", "resume", "decommission"]
# state -> op -> resulting state (None: illegal, 409)
table = {
    "pending": {"suspend": "suspended", "resume": None, "decommission": "decommissioned"},
    "active": {"suspend": "suspended", "resume": None, "decommission": "decommissioned"},
    "suspended": {"suspend": None, "resume": "active", "decommission": "decommissioned"},
    "decommissioned": {"suspend": None, "resume": None, "decommission": None},
}
n = 0


def make_in(state):
    global n
    n += 1
    name = "lc-%d" % n
    create(name)
    if state == "active":
        st, body, _ = api("POST", "identity/machine/%s/join-token" % name, {"ttl": "5m"})
        api("POST", "auth/join/login", {"join_token": body["data"]["join_token"]}, token="")
    elif state == "suspended":
        api("POST", "identity/machine/%s/suspend" % name, {"reason": "setup"})
    elif state == "decommissioned":
        api("POST", "identity/machine/%s/decommission" % name, {"reason": "setup"})
    st, body, _ = api("GET", "identity/machine/" + name)
    assert body["data"]["state"] == state, (state, body)
    return name


for state, row in table.items():
    for op in ops:
        name = make_in(state)
        st, body, _ = api("POST", "identity/machine/%s/%s" % (name, op), {"reason": "table test"})
        want = row[op]
        if want is None:
            t.eq(f"{state} --{op}--> illegal (409)", st, 409)
            t.ok(f"  ... 409 names the allowed transitions", "allowed from " + state in json.dumps(body), body)
        else:
            t.eq(f"{state} --{op}--> {want}", (st, body["data"]["state"] if st == 200 else body), (200, want))
            h = body["data"]["history"][-1]
            t.ok(f"  ... history has who/when/why", h["from"] == state and h["to"] == want and h["who"] and h["when"] and h["why"] == "table test", h)
st, body, _ = api("POST", "identity/machine/lc-1/suspend", {"reason": "x", "bogus": 1})
t.eq("unknown field on a transition -> 400", st, 400)
st, body, _ = api("DELETE", "identity/machine/svc-1")
t.eq("delete a live identity -> 409 (decommission first)", st, 409)

# ---- join tokens: single use under concurrency ------------------------------------
create("edge-1", kind="device", owner="fleet")
st, body, _ = api("POST", "identity/machine/edge-1/join-token", {"ttl": "10m"})
t.eq("issue join token", st, 200)
jt = body["data"]["join_token"]
t.ok("join token is a prefixed 256-bit value", jt.startswith("njt.") and len(jt) >= 40)
st, body, _ = api("POST", "identity/machine/edge-1/join-token", {"ttl": "10x"})
t.eq("bad ttl -> 400", st, 400)
results = []
barrier = threading.Barrier(16)


def attempt():
    barrier.wait()
    try:
        st, body, _ = api("POST", "auth/join/login", {"join_token": jt}, token="")
    except Exception as e:  # noqa: BLE001
        st, body = 0, str(e)
    results.append((st, body))


threads = [threading.Thread(target=attempt) for _ in range(16)]
for th in threads:
    th.start()
for th in threads:
    th.join()
wins = [b for s, b in results if s == 200]
t.eq("16 concurrent join logins: exactly one wins", len(wins), 1)
t.eq("... the others get 403", sorted(s for s, _ in results if s != 200), [403] * 15)
if wins:
    a = wins[0]["auth"]
    t.ok("join token login returns a token bound to edge-1 with 15 min TTL",
         a["metadata"]["identity"] == "edge-1" and 880 <= a["lease_duration"] <= 900, a)
st, body, _ = api("GET", "identity/machine/edge-1")
t.eq("join login activated edge-1", body["data"]["state"], "active")
st, body, _ = api("POST", "auth/join/login", {"join_token": jt}, token="")
t.eq("replayed join token -> 403", st, 403)
st2, body2, _ = api("POST", "auth/join/login", {"join_token": "njt.never-issued"}, token="")
t.eq("unknown and replayed join tokens get the same message", body2, body)

# ---- decommission revokes everything ----------------------------------------------
create("doomed", kind="service", owner="team-a")
api("POST", "auth/approle/role/doomed", {"token_policies": ["p"]})
role_id = api("GET", "auth/approle/role/doomed/role-id")[1]["data"]["role_id"]
sids = [api("POST", "auth/approle/role/doomed/secret-id", {})[1]["data"]["secret_id"] for _ in range(2)]
login = api("POST", "auth/approle/login", {"role_id": role_id, "secret_id": sids[0]}, token="")[1]
tok1 = login["auth"]["client_token"]
tok2 = api("POST", "auth/approle/login", {"role_id": role_id, "secret_id": sids[1]}, token="")[1]["auth"]["client_token"]
jt2 = api("POST", "identity/machine/doomed/join-token", {"ttl": "1h"})[1]["data"]["join_token"]
st, body, _ = api("GET", "identity/machine/doomed/creds")
live = [c for c in body["data"]["credentials"] if c["status"] == "active"]
t.ok("inventory before: tokens, secret IDs, join token", {c["type"] for c in live} >= {"token", "approle-secret-id", "join"} and len(live) >= 5, [(c["type"], c["status"]) for c in live])
st, body, _ = api("POST", "identity/machine/doomed/decommission", {"reason": "service retired"})
t.eq("decommission doomed", st, 200)
t.ok("... reports the revoked credentials", body["data"].get("credentials_revoked", 0) >= len(live), body["data"].get("credentials_revoked"))
for name, tk in [("login token 1", tok1), ("login token 2", tok2)]:
    st, _, _ = api("GET", "auth/token/lookup-self", token=tk)
    t.eq(f"after decommission: {name} fails", st, 403)
for i, s in enumerate(sids):
    st, _, _ = api("POST", "auth/approle/login", {"role_id": role_id, "secret_id": s}, token="")
    t.eq(f"after decommission: secret ID {i} fails", st, 403)
st, _, _ = api("POST", "auth/join/login", {"join_token": jt2}, token="")
t.eq("after decommission: join token fails", st, 403)
st, body, _ = api("POST", "auth/approle/role/doomed/secret-id", {})
new_sid = body["data"]["secret_id"] if st == 200 else None
st, _, _ = api("POST", "auth/approle/login", {"role_id": role_id, "secret_id": new_sid}, token="")
t.eq("after decommission: even a fresh secret ID cannot log in", st, 403)
st, _, _ = api("POST", "identity/machine/doomed/join-token", {})
t.eq("after decommission: no new join token (409)", st, 409)
st, body, _ = api("GET", "identity/machine/doomed/creds")
old = [c for c in body["data"]["credentials"] if c["id"] in {x["id"] for x in live}]
t.ok("inventory after: every old credential revoked", old and all(c["status"] == "revoked" for c in old), [(c["type"], c["status"]) for c in old])
st, body, _ = api("DELETE", "identity/machine/doomed")
t.eq("a decommissioned identity can be deleted", st, 204)

# ---- report ----------------------------------------------------------------------
api("POST", "identity/machine/dev-05/suspend", {"reason": "lost device"})
# stale_days=0 means "not seen since before now" (whole seconds): let a second pass.
time.sleep(1.1)
st, body, _ = api("GET", "identity/report?stale_days=0&expiring_days=1")
t.eq("report", st, 200)
d = body["data"]
t.ok("report: orphan", "orphan-1" in d["orphans"], d["orphans"])
t.ok("report: suspended with reason", {"name": "dev-05", "reason": "lost device"} in d["suspended"], d["suspended"])
t.ok("report: expiring credentials", any(e["identity"] == "edge-1" for e in d["expiring"]), d["expiring"][:3])
t.ok("report: stale (stale_days=0: all seen before now)", len(d["stale"]) > 10, len(d["stale"]))
st, body, _ = api("GET", "identity/report?stale_days=x")
t.eq("report with bad stale_days -> 400", st, 400)

# ---- audit -----------------------------------------------------------------------
recs = [json.loads(x) for x in open(audit_path) if x.strip()]
replay = [r for r in recs if r.get("identity", {}).get("anomaly") and r.get("request", {}).get("path") == "auth/join/login"]
t.ok("replayed join token audited as an anomaly", replay and "reused" in replay[0]["identity"].get("reason", ""), replay[:1])
dec = [r for r in recs if r.get("identity", {}).get("event") == "decommission"]
t.ok("decommission audited with who/why", dec and dec[-1]["identity"]["why"] == "service retired", dec[-1:])

# ---- the gate survives a restart -------------------------------------------------
create("gated")
jt3 = api("POST", "identity/machine/gated/join-token", {})[1]["data"]["join_token"]
gtok = api("POST", "auth/join/login", {"join_token": jt3}, token="")[1]["auth"]["client_token"]
api("POST", "identity/machine/gated/suspend", {"reason": "restart test"})
srv.stop()
srv = env.start_dev("srv")
st, body, _ = api("GET", "auth/token/lookup-self", token=gtok)
t.eq("after restart a suspended identity's token still fails", st, 403)
api("POST", "identity/machine/gated/resume", {})
st, body, _ = api("GET", "auth/token/lookup-self", token=gtok)
t.eq("... and works after resume", st, 200)

t.finish()
