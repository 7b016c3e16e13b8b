"""lib_nhid — shared helpers for the Python integration tests
(tests/integration/*.py, run by ctest with /usr/bin/python3, Debian's
python with python3-hvac and python3-requests).

    import sys, os; sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from lib_nhid import Checks, Env

    env = Env()                       # temp dir; every server is killed at exit
    srv = env.start_dev("srv")        # dev server: srv.url, srv.cacert, srv.token
    t = Checks()
    st, body, hdrs = srv.api("GET", "sys/health")
    t.eq("health is 200", st, 200)
    t.finish()                        # prints "N passed, M failed", exits 1 on failure

Production servers (start sealed and uninitialised):

    cfg = env.prod_config("prod", extra_hcl='audit "file" "f" { path = "..." }')
    srv = env.start_config("prod", cfg)     # srv.url, srv.cacert; srv.token is None
    ...
    srv.stop(); srv = env.start_config("prod", cfg)   # restart, same storage

Environment: NHID_BIN (the binary; default $NHID_BUILD_DIR/nhid or
build/nhid in the source tree), NHID_TEST_KEEP=1 keeps the temp dir.
Only the standard library is used here, so the module also works with
other Python interpreters.
"""

import atexit
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

SOURCE_DIR = os.environ.get(
    "NHID_SOURCE_DIR",
    os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")))
BUILD_DIR = os.environ.get("NHID_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
NHID_BIN = os.environ.get("NHID_BIN", os.path.join(BUILD_DIR, "nhid"))


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def gen_server_tls(d):
    """CA (d/ca.pem) and a server certificate for 127.0.0.1/localhost
    (d/server.pem, d/server-key.pem), with the openssl CLI."""
    os.makedirs(d, exist_ok=True)

    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run("req", "-x509", *ec, "-days", "2", "-subj", "/CN=nhid test CA",
        "-keyout", f"{d}/ca-key.pem", "-out", f"{d}/ca.pem",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", *ec, "-subj", "/CN=127.0.0.1", "-keyout", f"{d}/server-key.pem",
        "-out", f"{d}/server.csr")
    with open(f"{d}/server.ext", "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                "extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n")
    run("x509", "-req", "-in", f"{d}/server.csr", "-CA", f"{d}/ca.pem", "-CAkey",
        f"{d}/ca-key.pem", "-CAcreateserial", "-days", "2", "-extfile",
        f"{d}/server.ext", "-out", f"{d}/server.pem")


class Server:
    """A running nhid server started by Env."""

    def __init__(self, env, name, proc, url, cacert, token=None, data_dir=None, log=None):
        self.env, self.name, self.proc = env, name, proc
        self.url, self.cacert, self.token = url, cacert, token
        self.data_dir, self.log = data_dir, log

    @property
    def pid(self):
        return self.proc.pid

    @property
    def port(self):
        return int(self.url.rsplit(":", 1)[1])

    def ssl_context(self, cert=None, key=None):
        ctx = ssl.create_default_context(cafile=self.cacert)
        if cert:
            ctx.load_cert_chain(cert, key)
        return ctx

    def api(self, method, path, body=None, token=None, headers=None, raw=None, timeout=15,
            source=None):
        """One request on a fresh connection. token=None uses self.token;
        token="" sends none. body: a dict (sent as JSON) or None; raw: bytes.
        source: the client's local address (e.g. "127.0.0.2"; any 127/8
        address is local on Linux), for bound-CIDR checks.
        Returns (status, parsed JSON or text or None, headers dict lower-case).
        Raises OSError/ssl.SSLError when no HTTP response arrives."""
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout,
                                           context=self.ssl_context(),
                                           source_address=(source, 0) if source else None)
        h = dict(headers or {})
        tok = self.token if token is None else token
        if tok:
            h["X-Vault-Token"] = tok
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        try:
            conn.request(method, "/v1/" + path, body=data, headers=h)
            r = conn.getresponse()
            text = r.read().decode("utf-8", "replace")
            hdrs = {k.lower(): v for k, v in r.getheaders()}
            try:
                parsed = json.loads(text) if text else None
            except ValueError:
                parsed = text
            return r.status, parsed, hdrs
        finally:
            conn.close()

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=5):
        """SIGTERM, then SIGKILL after timeout. Returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill9(self):
        """Crash it: SIGKILL, no shutdown code runs."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def log_tail(self, n=20):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


class Env:
    """A temporary directory plus the servers started in it; everything is
    cleaned up at exit (atexit, SIGTERM)."""

    def __init__(self):
        if not os.access(NHID_BIN, os.X_OK):
            print(f"FATAL: nhid binary not found at {NHID_BIN} (set NHID_BIN)")
            sys.exit(2)
        self.bin = NHID_BIN
        self.dir = tempfile.mkdtemp(prefix="nhid-it.")
        self.servers = []
        atexit.register(self.cleanup)
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))

    def cleanup(self):
        for s in self.servers:
            try:
                s.stop(timeout=3)
            except Exception:
                pass
        if os.environ.get("NHID_TEST_KEEP") == "1":
            print(f"kept {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def _spawn(self, name, args):
        log = self.path(f"{name}.log")
        out = open(self.path(f"{name}.out"), "ab")
        err = open(log, "ab")
        proc = subprocess.Popen([self.bin, "server", *args], stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL)
        out.close()
        err.close()
        return proc, log

    def _wait(self, proc, url, cacert, log, deadline=10.0, client_cert=None):
        ctx = ssl.create_default_context(cafile=cacert) if os.path.exists(cacert) else None
        if ctx and client_cert:
            ctx.load_cert_chain(*client_cert)
        port = int(url.rsplit(":", 1)[1])
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited ({proc.returncode}) during start-up:\n"
                                   + open(log, errors="replace").read()[-2000:])
            if ctx is None and os.path.exists(cacert):
                ctx = ssl.create_default_context(cafile=cacert)
            if ctx is not None:
                try:
                    c = http.client.HTTPSConnection("127.0.0.1", port, timeout=2, context=ctx)
                    c.request("GET", "/v1/sys/seal-status")
                    c.getresponse().read()
                    c.close()
                    return
                except (OSError, ssl.SSLError, http.client.HTTPException):
                    pass
            time.sleep(0.05)
        raise RuntimeError("server did not answer within %.0f s:\n%s" %
                           (deadline, open(log, errors="replace").read()[-2000:]))

    def start_dev(self, name, *args, port=None):
        """nhid server -dev with data dir DIR/name (reused if present: dev mode
        reopens and re-unseals it). Returns a Server with .token = root."""
        data = self.path(name)
        for attempt in range(5):
            p = port if (port and attempt == 0) else free_port()
            url = f"https://127.0.0.1:{p}"
            proc, log = self._spawn(name, ["-dev", "-data", data, "-address",
                                           f"127.0.0.1:{p}", *args])
            try:
                self._wait(proc, url, os.path.join(data, "ca.pem"), log)
            except RuntimeError:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
                if "already in use" in open(log, errors="replace").read():
                    continue
                raise
            with open(os.path.join(data, "dev-root-token")) as f:
                token = f.read().strip()
            s = Server(self, name, proc, url, os.path.join(data, "ca.pem"), token, data, log)
            self.servers.append(s)
            return s
        raise RuntimeError("no free port for the dev server")

    def prod_config(self, name, extra_hcl="", listener_extra="", port=None):
        """Write DIR/name.hcl: TLS listener on a free port (certificate from
        gen_server_tls in DIR/name-tls), SQLite at DIR/name/nhid.db, plus
        extra_hcl. Returns a dict: path, url, cacert, db, port."""
        tls = self.path(f"{name}-tls")
        if not os.path.exists(os.path.join(tls, "server.pem")):
            gen_server_tls(tls)
        os.makedirs(self.path(name), exist_ok=True)
        port = port or free_port()
        cfg = self.path(f"{name}.hcl")
        with open(cfg, "w") as f:
            f.write(f'''listener "tcp" {{
  address       = "127.0.0.1:{port}"
  tls_cert_file = "{tls}/server.pem"
  tls_key_file  = "{tls}/server-key.pem"
{listener_extra}
}}
storage "sqlite" {{
  path = "{self.path(name, 'nhid.db')}"
}}
{extra_hcl}
''')
        return {"path": cfg, "url": f"https://127.0.0.1:{port}", "cacert": f"{tls}/ca.pem",
                "db": self.path(name, "nhid.db"), "port": port}

    def start_config(self, name, cfg, client_cert=None):
        """nhid server -config cfg["path"]; waits until the listener answers
        (sealed or not). client_cert=(cert, key) for an mTLS listener."""
        proc, log = self._spawn(name, ["-config", cfg["path"]])
        try:
            self._wait(proc, cfg["url"], cfg["cacert"], log, client_cert=client_cert)
        except RuntimeError:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            raise
        s = Server(self, name, proc, cfg["url"], cfg["cacert"], None, self.path(name), log)
        self.servers.append(s)
        return s


class Checks:
    """Named checks; every failure prints what was expected and what came."""

    def __init__(self):
        self.passed = 0
        self.failed = []

    def ok(self, name, cond, detail=""):
        if cond:
            self.passed += 1
            print(f"ok   - {name}", flush=True)
        else:
            self.failed.append(name)
            print(f"FAIL - {name}", flush=True)
            if detail:
                for line in str(detail)[:1500].splitlines():
                    print(f"       {line}", flush=True)
        return bool(cond)

    def eq(self, name, got, want):
        return self.ok(name, got == want, f"got:  {got!r}\nwant: {want!r}")

    def raises(self, name, fn, exc=Exception):
        """fn() must raise exc; returns the exception (or None)."""
        try:
            r = fn()
        except exc as e:  # noqa: BLE001
            self.ok(name, True)
            return e
        self.ok(name, False, f"no exception; returned {r!r}")
        return None

    def call(self, name, fn):
        """fn() must not raise; returns its result (or None)."""
        try:
            r = fn()
        except Exception as e:  # noqa: BLE001
            self.ok(name, False, f"{type(e).__name__}: {e}")
            return None
        self.ok(name, True)
        return r

    def finish(self):
        if self.failed:
            print("\nfailed checks:")
            for n in self.failed:
                print(f"  - {n}")
        print(f"\n{self.passed} passed, {len(self.failed)} failed", flush=True)
        sys.exit(1 if self.failed else 0)
