#!/usr/bin/python3
"""kv_durability — no acknowledged KV write is lost on kill -9.

Concurrent writers (keep-alive TLS connections) write secret/data/dur-<w>-<i>
and record every write the server acknowledged (200 with its version). The
server is killed with SIGKILL mid-stream, restarted on the same data
directory (dev mode re-unseals itself), and every acknowledged version must
read back with its exact value."""

import http.client
import json
import os
import ssl
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib_nhid import Checks, Env  # noqa: E402

WRITERS = 16
RUN_SECONDS = 2.0

env = Env()
srv = env.start_dev("dur")
t = Checks()
acked = []            # (path, version, value)
lock = threading.Lock()
stop = threading.Event()


def writer(w):
    ctx = ssl.create_default_context(cafile=srv.cacert)
    conn = http.client.HTTPSConnection("127.0.0.1", srv.port, timeout=10, context=ctx)
    i = 0
    while not stop.is_set():
        path = f"dur-{w}-{i % 50}"
        value = f"v-{w}-{i}"
        body = json.dumps({"data": {"value": value, "i": i}})
        try:
            conn.request("POST", f"/v1/secret/data/{path}", body=body,
                         headers={"X-Vault-Token": srv.token, "Content-Type": "application/json"})
            r = conn.getresponse()
            data = r.read()
            if r.status == 200:
                version = json.loads(data)["data"]["version"]
                with lock:
                    acked.append((path, version, value))
        except Exception:  # noqa: BLE001 - the server is being killed
            return
        i += 1


threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
for th in threads:
    th.start()
time.sleep(RUN_SECONDS)
srv.kill9()
stop.set()
for th in threads:
    th.join(15)
t.ok("writes were acknowledged before the crash", len(acked) > 100, len(acked))
print(f"# {len(acked)} acknowledged writes before kill -9", flush=True)

srv = env.start_dev("dur")
lost = []
ctx = ssl.create_default_context(cafile=srv.cacert)
conn = http.client.HTTPSConnection("127.0.0.1", srv.port, timeout=10, context=ctx)
# Each path keeps its last 10 versions (default max_versions): check those
# still in the window, and that the current version is >= every ack.
latest = {}
for path, version, value in acked:
    latest[path] = max(latest.get(path, 0), version)
checked = 0
for path, version, value in acked:
    conn.request("GET", f"/v1/secret/metadata/{path}", headers={"X-Vault-Token": srv.token})
    r = conn.getresponse()
    meta = json.loads(r.read() or b"null")
    if r.status != 200 or meta["data"]["current_version"] < version:
        lost.append((path, version, "metadata", r.status))
        continue
    if version <= meta["data"]["current_version"] - 10:
        continue  # trimmed by max_versions, not lost
    conn.request("GET", f"/v1/secret/data/{path}?version={version}",
                 headers={"X-Vault-Token": srv.token})
    r = conn.getresponse()
    body = json.loads(r.read() or b"null")
    checked += 1
    if r.status != 200 or body["data"]["data"]["value"] != value:
        lost.append((path, version, value, r.status))
t.eq("every acknowledged write survived kill -9", lost[:5], [])
t.ok("acknowledged versions read back", checked > 0, checked)
print(f"# {checked} acknowledged versions read back", flush=True)
t.finish()
