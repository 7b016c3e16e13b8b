#!/usr/bin/python3
"""kv_hvac — KV v2 through python3-hvac's secrets.kv.v2, unchanged, against a
dev server: data (versions, cas, patch), metadata (read, write, list, delete),
delete/undelete/destroy, subkeys, config; plus the raw API for what hvac
0.11 does not wrap (merge-patch PATCH, custom_metadata, subkeys, paging)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib_nhid import Checks, Env  # noqa: E402

import hvac  # noqa: E402
from hvac import exceptions  # noqa: E402

env = Env()
srv = env.start_dev("kv")
t = Checks()
c = hvac.Client(url=srv.url, token=srv.token, verify=srv.cacert)
kv = c.secrets.kv.v2

# ---- data: write, read, versions ------------------------------------------
r = t.call("create_or_update_secret v1", lambda: kv.create_or_update_secret(
    path="app/db", secret={"user": "alice", "pass": "s3cr3t-one"}))
t.eq("write returns version 1", r and r["data"]["version"], 1)
t.ok("write returns Vault's metadata fields",
     r and set(r["data"]) == {"created_time", "custom_metadata", "deletion_time",
                              "destroyed", "version"}, r)
r = t.call("read_secret_version", lambda: kv.read_secret_version(path="app/db"))
t.eq("read data.data", r and r["data"]["data"], {"user": "alice", "pass": "s3cr3t-one"})
t.eq("read data.metadata.version", r and r["data"]["metadata"]["version"], 1)
t.eq("read deletion_time empty", r and r["data"]["metadata"]["deletion_time"], "")
t.ok("created_time is RFC 3339 with Z",
     r and r["data"]["metadata"]["created_time"].endswith("Z"), r)

r = t.call("write v2 with cas=1", lambda: kv.create_or_update_secret(
    path="app/db", secret={"user": "alice", "pass": "s3cr3t-two"}, cas=1))
t.eq("cas write gives version 2", r and r["data"]["version"], 2)
e = t.raises("stale cas=1 refused", lambda: kv.create_or_update_secret(
    path="app/db", secret={"x": "y"}, cas=1), exceptions.InvalidRequest)
t.ok("cas error is Vault's message",
     e is not None and "check-and-set parameter did not match the current version" in str(e), e)
t.raises("cas=0 on an existing key refused", lambda: kv.create_or_update_secret(
    path="app/db", secret={"x": "y"}, cas=0), exceptions.InvalidRequest)
r = t.call("cas=0 creates a new key", lambda: kv.create_or_update_secret(
    path="app/new", secret={"a": "1"}, cas=0))
t.eq("new key at version 1", r and r["data"]["version"], 1)

r = t.call("read version 1", lambda: kv.read_secret_version(path="app/db", version=1))
t.eq("version 1 data", r and r["data"]["data"]["pass"], "s3cr3t-one")
t.raises("read version 99 -> InvalidPath (404)",
         lambda: kv.read_secret_version(path="app/db", version=99), exceptions.InvalidPath)
t.raises("read missing secret -> InvalidPath (404)",
         lambda: kv.read_secret_version(path="app/none"), exceptions.InvalidPath)

# ---- patch ------------------------------------------------------------------
r = t.call("hvac patch", lambda: kv.patch(path="app/db", secret={"pass": "s3cr3t-three"}))
t.eq("patch gives version 3", r and r["data"]["version"], 3)
r = kv.read_secret_version(path="app/db")
t.eq("patch kept other fields", r["data"]["data"], {"user": "alice", "pass": "s3cr3t-three"})
st, body, _ = srv.api("PATCH", "secret/data/app/db",
                      body={"data": {"user": None, "extra": {"k": "v"}}},
                      headers={"Content-Type": "application/merge-patch+json"})
t.eq("merge-patch PATCH is 200", st, 200)
r = kv.read_secret_version(path="app/db")
t.eq("RFC 7386 merge: null removes, object adds", r["data"]["data"],
     {"pass": "s3cr3t-three", "extra": {"k": "v"}})
st, body, _ = srv.api("PATCH", "secret/data/app/nothing", body={"data": {"a": "b"}},
                      headers={"Content-Type": "application/merge-patch+json"})
t.eq("PATCH of a missing secret is 404", st, 404)
st, body, _ = srv.api("PATCH", "secret/data/app/db", body={"data": {"a": "b"}, "options": {"cas": 1}},
                      headers={"Content-Type": "application/merge-patch+json"})
t.eq("PATCH with a stale cas is 400", st, 400)

# ---- delete / undelete / destroy --------------------------------------------
t.call("delete_latest_version_of_secret", lambda: kv.delete_latest_version_of_secret(path="app/db"))
t.raises("deleted latest version reads as 404", lambda: kv.read_secret_version(path="app/db"),
         exceptions.InvalidPath)
st, body, _ = srv.api("GET", "secret/data/app/db")
t.eq("deleted read: 404 with data.data null", (st, body and body.get("data", {}).get("data")),
     (404, None))
t.ok("deleted read: deletion_time set",
     body and body["data"]["metadata"]["deletion_time"] != "", body)
t.call("undelete_secret_versions", lambda: kv.undelete_secret_versions(path="app/db", versions=[4]))
r = t.call("undeleted version readable", lambda: kv.read_secret_version(path="app/db"))
t.eq("undeleted data back", r and r["data"]["metadata"]["version"], 4)
t.call("delete_secret_versions [1]", lambda: kv.delete_secret_versions(path="app/db", versions=[1]))
t.raises("version 1 deleted", lambda: kv.read_secret_version(path="app/db", version=1),
         exceptions.InvalidPath)
t.call("destroy_secret_versions [2]", lambda: kv.destroy_secret_versions(path="app/db", versions=[2]))
st, body, _ = srv.api("GET", "secret/data/app/db?version=2")
t.eq("destroyed version: 404, destroyed=true",
     (st, body and body["data"]["metadata"]["destroyed"]), (404, True))
t.call("undelete of a destroyed version is a no-op",
       lambda: kv.undelete_secret_versions(path="app/db", versions=[2]))
st, body, _ = srv.api("GET", "secret/data/app/db?version=2")
t.eq("destroyed stays destroyed", st, 404)
st, body, _ = srv.api("POST", "secret/delete/app/db", body={"versions": []})
t.eq("delete without versions is 400", st, 400)

# ---- metadata -----------------------------------------------------------------
m = t.call("read_secret_metadata", lambda: kv.read_secret_metadata(path="app/db"))
md = m and m["data"]
t.ok("metadata has Vault's fields", md and set(md) >= {
    "cas_required", "created_time", "current_version", "custom_metadata", "delete_version_after",
    "max_versions", "oldest_version", "updated_time", "versions"}, md)
t.eq("current_version 4", md and md["current_version"], 4)
t.eq("versions 1..4 listed", md and sorted(md["versions"]), ["1", "2", "3", "4"])
t.eq("version 2 destroyed in metadata", md and md["versions"]["2"]["destroyed"], True)
t.eq("delete_version_after default 0s", md and md["delete_version_after"], "0s")

t.call("update_metadata max_versions=2 cas_required", lambda: kv.update_metadata(
    path="app/db", max_versions=2, cas_required=True))
md = kv.read_secret_metadata(path="app/db")["data"]
t.eq("max_versions=2 trims to 2 versions", sorted(md["versions"]), ["3", "4"])
t.eq("oldest_version after trim", md["oldest_version"], 3)
t.eq("cas_required true", md["cas_required"], True)
e = t.raises("cas_required: write without cas refused", lambda: kv.create_or_update_secret(
    path="app/db", secret={"a": "b"}), exceptions.InvalidRequest)
t.ok("message says cas required", e is not None and "check-and-set parameter required" in str(e), e)
t.call("cas_required: write with cas ok", lambda: kv.create_or_update_secret(
    path="app/db", secret={"a": "b"}, cas=4))
md = kv.read_secret_metadata(path="app/db")["data"]
t.eq("still 2 versions after write", sorted(md["versions"]), ["4", "5"])
t.raises("trimmed version 3 is gone", lambda: kv.read_secret_version(path="app/db", version=3),
         exceptions.InvalidPath)

st, body, _ = srv.api("POST", "secret/metadata/app/db",
                      body={"custom_metadata": {"owner": "team-a", "env": "prod"},
                            "delete_version_after": "1h"})
t.eq("metadata write with custom_metadata 204", st, 204)
md = kv.read_secret_metadata(path="app/db")["data"]
t.eq("custom_metadata stored", md["custom_metadata"], {"owner": "team-a", "env": "prod"})
t.eq("delete_version_after 1h0m0s", md["delete_version_after"], "1h0m0s")
st, body, _ = srv.api("PATCH", "secret/metadata/app/db",
                      body={"custom_metadata": {"env": None, "tier": "1"}},
                      headers={"Content-Type": "application/merge-patch+json"})
md = kv.read_secret_metadata(path="app/db")["data"]
t.eq("metadata PATCH merges custom_metadata", md["custom_metadata"], {"owner": "team-a", "tier": "1"})
r = kv.create_or_update_secret(path="app/db", secret={"a": "c"}, cas=5)
t.ok("delete_version_after sets a future deletion_time", r["data"]["deletion_time"] != "", r)
t.eq("custom_metadata in version metadata", r["data"]["custom_metadata"],
     {"owner": "team-a", "tier": "1"})
st, body, _ = srv.api("POST", "secret/metadata/app/db", body={"max_versions": -1})
t.eq("negative max_versions 400", st, 400)
st, body, _ = srv.api("POST", "secret/metadata/app/db", body={"bogus": 1})
t.eq("unknown metadata field 400", st, 400)

# ---- subkeys -------------------------------------------------------------------
kv.create_or_update_secret(path="nested", secret={"a": {"b": {"c": "x"}, "d": "y"}, "e": 1})
st, body, _ = srv.api("GET", "secret/subkeys/nested")
t.eq("subkeys 200", st, 200)
t.eq("subkeys tree without values", body and body["data"]["subkeys"],
     {"a": {"b": {"c": None}, "d": None}, "e": None})
st, body, _ = srv.api("GET", "secret/subkeys/nested?depth=1")
t.eq("subkeys depth=1", body and body["data"]["subkeys"], {"a": None, "e": None})

# ---- list ----------------------------------------------------------------------
for p in ["list/a", "list/b/c", "list/b/d/e", "list/c", "list/b2"]:
    kv.create_or_update_secret(path=p, secret={"v": "1"})
r = t.call("list_secrets list", lambda: kv.list_secrets(path="list"))
t.eq("immediate children, folders with /", r and r["data"]["keys"], ["a", "b/", "b2", "c"])
r = t.call("list_secrets list/b", lambda: kv.list_secrets(path="list/b"))
t.eq("nested list", r and r["data"]["keys"], ["c", "d/"])
r = t.call("list_secrets root", lambda: kv.list_secrets(path=""))
t.ok("root list has app/ list/ nested", r and {"app/", "list/", "nested"} <= set(r["data"]["keys"]), r)
t.raises("list of an empty folder -> InvalidPath", lambda: kv.list_secrets(path="nothing-here"),
         exceptions.InvalidPath)
st, body, _ = srv.api("GET", "secret/metadata/list/?list=true&limit=2")
t.eq("paging: first 2", body and body["data"]["keys"], ["a", "b/"])
st, body, _ = srv.api("GET", "secret/metadata/list/?list=true&limit=2&after=b/")
t.eq("paging: after b/", body and body["data"]["keys"], ["b2", "c"])

# ---- delete metadata ---------------------------------------------------------------
t.call("delete_metadata_and_all_versions", lambda: kv.delete_metadata_and_all_versions(path="list/a"))
t.raises("metadata gone", lambda: kv.read_secret_metadata(path="list/a"), exceptions.InvalidPath)
t.raises("data gone", lambda: kv.read_secret_version(path="list/a"), exceptions.InvalidPath)
r = kv.list_secrets(path="list")
t.eq("list after delete", r["data"]["keys"], ["b/", "b2", "c"])
r = kv.create_or_update_secret(path="list/a", secret={"v": "again"})
t.eq("recreated key starts at version 1", r["data"]["version"], 1)

# ---- config --------------------------------------------------------------------------
t.call("configure", lambda: kv.configure(max_versions=3, cas_required=False,
                                         delete_version_after="0s"))
r = t.call("read_configuration", lambda: kv.read_configuration())
t.eq("config read", r and r["data"], {"cas_required": False, "delete_version_after": "0s",
                                      "max_versions": 3})
for i in range(5):
    kv.create_or_update_secret(path="cfg/trim", secret={"i": str(i)})
md = kv.read_secret_metadata(path="cfg/trim")["data"]
t.eq("mount max_versions=3 applies", sorted(md["versions"]), ["3", "4", "5"])
t.call("configure cas_required", lambda: kv.configure(max_versions=3, cas_required=True))
t.raises("mount cas_required enforced", lambda: kv.create_or_update_secret(
    path="cfg/trim", secret={"i": "x"}), exceptions.InvalidRequest)
kv.configure(max_versions=0, cas_required=False)

# ---- a non-root token with a Cedar policy ---------------------------------------------
st, body, _ = srv.api("PUT", "sys/policies/cedar/kv-reader", body={"policy": """
permit (principal in Role::"kv-reader", action == Action::"read",
        resource in Path::"secret/data/app/");
"""})
t.ok("policy stored", st in (200, 204), body)
st, body, _ = srv.api("POST", "auth/token/create", body={"policies": ["kv-reader"]})
tok = body and body.get("auth", {}).get("client_token")
rc = hvac.Client(url=srv.url, token=tok, verify=srv.cacert)
r = t.call("policy permits read of secret/data/app/new",
           lambda: rc.secrets.kv.v2.read_secret_version(path="app/new"))
t.eq("reader sees data", r and r["data"]["data"], {"a": "1"})
t.raises("policy denies write", lambda: rc.secrets.kv.v2.create_or_update_secret(
    path="app/new", secret={"a": "2"}), exceptions.Forbidden)
t.raises("policy denies read outside app/", lambda: rc.secrets.kv.v2.read_secret_version(
    path="nested"), exceptions.Forbidden)

t.finish()
