#!/usr/bin/python3
"""identity_cert.py — TLS certificate authentication with certificates made by
the openssl CLI: curl with a trusted, an untrusted (other CA), an expired and
a wrong-SPIFFE-ID client certificate against auth/cert/login; python3-hvac's
cert role and cert login; tokenless mTLS calls authenticated as the identity;
suspension stopping a certificate at once; bad role input naming the field."""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib_nhid import Checks, Env  # noqa: E402

import hvac  # noqa: E402
import hvac.exceptions  # noqa: E402

t = Checks()
os.environ["NHID_AUTH_FAIL_BURST"] = "1000"
env = Env()
srv = env.start_dev("srv")
d = env.path("pki")
os.makedirs(d, exist_ok=True)


def sh(*args, **kw):
    return subprocess.run(args, check=True, capture_output=True, cwd=d, **kw)


def make_ca(name):
    sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
       "-days", "2", "-subj", f"/CN={name}", "-keyout", f"{name}-key.pem", "-out", f"{name}.pem",
       "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")


def make_client(name, ca, uri, cn=None, expired=False):
    sh("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
       "-subj", f"/CN={cn or name}", "-keyout", f"{name}-key.pem", "-out", f"{name}.csr")
    with open(os.path.join(d, f"{name}.ext"), "w") as f:
        f.write(f"subjectAltName=URI:{uri}\nextendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n")
    if not expired:
        sh("openssl", "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}-key.pem",
           "-CAcreateserial", "-days", "1", "-extfile", f"{name}.ext", "-out", f"{name}.pem")
        return
    # openssl ca can set validity dates in the past: an expired certificate.
    os.makedirs(os.path.join(d, "db"), exist_ok=True)
    open(os.path.join(d, "db", "index.txt"), "w").close()
    with open(os.path.join(d, "db", "serial"), "w") as f:
        f.write("1000\n")
    with open(os.path.join(d, "ca.cnf"), "w") as f:
        f.write(f"""[ca]
default_ca = c
[c]
database = db/index.txt
serial = db/serial
new_certs_dir = db
certificate = {ca}.pem
private_key = {ca}-key.pem
default_md = sha256
policy = p
copy_extensions = none
[p]
commonName = supplied
""")
    sh("openssl", "ca", "-batch", "-config", "ca.cnf", "-in", f"{name}.csr", "-out", f"{name}.pem",
       "-startdate", "20200101000000Z", "-enddate", "20200102000000Z", "-extfile", f"{name}.ext",
       "-notext")


make_ca("ca1")
make_ca("ca2")
make_client("api-1", "ca1", "spiffe://nhid.local/workload/api-1")
make_client("untrusted", "ca2", "spiffe://nhid.local/workload/api-1")
make_client("expired", "ca1", "spiffe://nhid.local/workload/api-1", expired=True)
make_client("stranger", "ca1", "spiffe://nhid.local/workload/nobody")
make_client("devcert", "ca1", "spiffe://nhid.local/device/dev-1")
P = lambda n: os.path.join(d, n)  # noqa: E731


def curl(method, path, cert=None, token=None, body=None):
    args = ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "-X", method, "--cacert", srv.cacert,
            "--max-time", "10"]
    if cert:
        args += ["--cert", P(cert + ".pem"), "--key", P(cert + "-key.pem")]
    if token:
        args += ["-H", "X-Vault-Token: " + token]
    if body is not None:
        args += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(body)]
    r = subprocess.run(args + [srv.url + "/v1/" + path], capture_output=True, text=True)
    out, _, code = r.stdout.rpartition("\n")
    try:
        parsed = json.loads(out) if out else None
    except ValueError:
        parsed = out
    return int(code or 0), parsed


srv.api("POST", "identity/machine/api-1", {"kind": "workload", "owner": "team-a"})
srv.api("POST", "identity/machine/dev-1", {"kind": "device", "owner": "fleet"})

# ---- roles (hvac) ----------------------------------------------------------------
root = hvac.Client(url=srv.url, verify=srv.cacert, token=srv.token)
t.call("hvac create_ca_certificate_role", lambda: root.auth.cert.create_ca_certificate_role(
    "workloads", certificate=P("ca1.pem"), allowed_uri_sans="spiffe://nhid.local/workload/*",
    token_policies=["wl"], token_ttl="10m"))
r = t.call("hvac read_ca_certificate_role", lambda: root.auth.cert.read_ca_certificate_role("workloads"))
t.eq("role allows the workload pattern", r and r["data"]["allowed_spiffe_ids"], ["spiffe://nhid.local/workload/*"])
st, body, _ = srv.api("POST", "auth/cert/certs/bad", {"certificate": "not a pem"})
t.eq("certificate that is not PEM -> 400", (st, "certificate" in json.dumps(body)), (400, True))
st, body, _ = srv.api("POST", "auth/cert/certs/bad", {"certificate": open(P("ca1.pem")).read(), "allowed_spiffe_ids": ["http://x"]})
t.eq("allowed_spiffe_ids not SPIFFE -> 400", (st, "allowed_spiffe_ids" in json.dumps(body)), (400, True))
st, body, _ = srv.api("POST", "auth/cert/certs/bad", {"certificate": open(P("ca1.pem")).read(), "token_bound_cidrs": "1.2.3.4/99"})
t.eq("bad CIDR -> 400", st, 400)
st, body, _ = srv.api("POST", "auth/cert/certs/bad", {"certificate": open(P("ca1.pem")).read(), "frob": 1})
t.eq("unknown field -> 400", st, 400)

# ---- curl logins -----------------------------------------------------------------
st, body = curl("POST", "auth/cert/login", cert="api-1")
t.eq("trusted certificate: login 200", st, 200)
auth = (body or {}).get("auth") or {}
t.eq("token bound to the identity from the URI SAN", (auth.get("metadata") or {}).get("identity"), "api-1")
t.eq("token policies from the role", auth.get("policies"), ["wl"])
t.eq("role TTL (10m)", auth.get("lease_duration"), 600)
ctok = auth.get("client_token")
st, body, _ = srv.api("GET", "identity/machine/api-1")
t.eq("cert login activated api-1", body["data"]["state"], "active")
st, body = curl("POST", "auth/cert/login", cert="untrusted")
t.eq("certificate from an untrusted CA -> 403", st, 403)
st, body = curl("POST", "auth/cert/login", cert="expired")
t.eq("expired certificate -> 403", st, 403)
st, body = curl("POST", "auth/cert/login", cert="stranger")
t.eq("SPIFFE ID of no registered identity -> 403", st, 403)
st, body = curl("POST", "auth/cert/login", cert="devcert")
t.eq("SPIFFE ID outside the role's allowed pattern -> 403", st, 403)
st, body = curl("POST", "auth/cert/login")
t.eq("no client certificate -> 403", st, 403)
st, body = curl("POST", "auth/cert/login", cert="api-1", body={"name": "nonexistent"})
t.eq("login naming another role -> 403", st, 403)

# ---- tokenless mTLS (a Cedar policy lets machines on mTLS read themselves) ---------
st, body, _ = srv.api("PUT", "sys/policies/cedar/mtls-self", {"policy":
    'permit (principal, action == Action::"read_self", resource) when { context.mtls && context.auth_method == "cert" };'})
t.ok("policy: machines over mTLS may read identity/self", st in (200, 204), body)
st, body = curl("GET", "identity/machine/api-1", cert="api-1")
t.eq("tokenless mTLS call outside the policy -> 403", st, 403)
st, body = curl("GET", "identity/self", cert="api-1")
t.eq("tokenless mTLS call: authenticated as api-1", (st, (body or {}).get("data", {}).get("name")), (200, "api-1"))
t.eq("... over mTLS with the cert method", (body or {}).get("data", {}).get("auth_method"), "cert")
st, body = curl("GET", "identity/self", cert="untrusted")
t.eq("tokenless call with an untrusted cert: no credential (403)", st, 403)
st, body = curl("GET", "identity/self", cert="expired")
t.eq("tokenless call with an expired cert: 403", st, 403)
st, body = curl("GET", "sys/health", cert="untrusted")
t.ok("an untrusted cert does not break unauthenticated endpoints", st in (200, 429, 472, 473, 501, 503), st)

# ---- hvac cert login -------------------------------------------------------------
hc = hvac.Client(url=srv.url, verify=srv.cacert, cert=(P("api-1.pem"), P("api-1-key.pem")))
res = t.call("hvac auth.cert.login", lambda: hc.auth.cert.login(cert_pem=P("api-1.pem"), key_pem=P("api-1-key.pem")))
t.eq("hvac login token names api-1", res and res["auth"]["metadata"]["identity"], "api-1")
t.ok("hvac client is authenticated", res and hc.is_authenticated())
hu = hvac.Client(url=srv.url, verify=srv.cacert, cert=(P("untrusted.pem"), P("untrusted-key.pem")))
t.raises("hvac login with an untrusted cert fails", lambda: hu.auth.cert.login(cert_pem=P("untrusted.pem"), key_pem=P("untrusted-key.pem")))

# ---- suspension stops the certificate at once -------------------------------------
srv.api("POST", "identity/machine/api-1/suspend", {"reason": "key leaked"})
st, body = curl("GET", "identity/self", cert="api-1")
t.eq("suspended identity: tokenless mTLS -> 403", st, 403)
t.ok("... saying so", "api-1 is suspended" in json.dumps(body), body)
st, body = curl("POST", "auth/cert/login", cert="api-1")
t.eq("suspended identity: cert login -> 403", st, 403)
st, body, _ = srv.api("GET", "auth/token/lookup-self", token=ctok)
t.eq("suspended identity: its cert-login token -> 403", st, 403)
srv.api("POST", "identity/machine/api-1/resume", {})
st, body = curl("GET", "identity/self", cert="api-1")
t.eq("after resume: tokenless mTLS works again", st, 200)
srv.api("POST", "identity/machine/api-1/decommission", {"reason": "gone"})
st, body = curl("POST", "auth/cert/login", cert="api-1")
t.eq("decommissioned identity: cert login -> 403", st, 403)
st, body, _ = srv.api("GET", "auth/token/lookup-self", token=ctok)
t.eq("decommissioned identity: its token was revoked", st, 403)

t.finish()
