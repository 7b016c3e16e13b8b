#!/usr/bin/env node
// The cedar_bench workload through the reference implementation
// (@cedar-policy/cedar-wasm under node): preparsePolicySet once per size,
// then statefulIsAuthorized per request. Prints decisions/s, median/p99
// and the nhid/cedar-wasm ratio (from DIR/nhid.json written by
// `cedar_bench -dump DIR`). usage: node bench/cedar_wasm_bench.js DIR
'use strict';
const fs = require('fs');
const path = require('path');
const modDir = path.join(__dirname, '../tests/differential/node_modules');
const cedar = require(require.resolve('@cedar-policy/cedar-wasm/nodejs', { paths: [modDir] }));

const dir = process.argv[2] || '/tmp/cedar-bench';
const nhid = JSON.parse(fs.readFileSync(path.join(dir, 'nhid.json'), 'utf8'));
const sizes = Object.keys(nhid).map(Number).sort((a, b) => a - b);
console.log(`cedar-wasm ${cedar.getCedarVersion()} under node ${process.version}, single thread`);
console.log('policies  wasm dec/s  wasm med(ns)  wasm p99(ns)  nhid dec/s  nhid med(ns)  speedup(dec/s)  parse wasm/nhid');
for (const n of sizes) {
  const d = path.join(dir, String(n));
  const policies = fs.readFileSync(path.join(d, 'policies.cedar'), 'utf8');
  const entities = JSON.parse(fs.readFileSync(path.join(d, 'entities.json'), 'utf8'));
  const reqs = JSON.parse(fs.readFileSync(path.join(d, 'requests.json'), 'utf8'));
  // cedar-wasm takes entities per call (there is no pre-parsed entity
  // store), so each request gets the slice it needs: principal, action,
  // resource and their ancestors, as a real caller would send.
  const byUid = new Map(entities.map((e) => [e.uid.type + '::' + e.uid.id, e]));
  const slice = (uids) => {
    const out = new Map();
    const stack = uids.map((u) => u.type + '::' + u.id);
    while (stack.length) {
      const k = stack.pop();
      if (out.has(k) || !byUid.has(k)) continue;
      const e = byUid.get(k);
      out.set(k, e);
      for (const p of e.parents) stack.push(p.type + '::' + p.id);
    }
    return [...out.values()];
  };
  const slices = reqs.map((r) => slice([r.principal, r.action, r.resource]));
  let t0 = process.hrtime.bigint();
  const pr = cedar.preparsePolicySet('bench' + n, { staticPolicies: policies });
  const parseMs = Number(process.hrtime.bigint() - t0) / 1e6;
  if (pr.type !== 'success') throw new Error(JSON.stringify(pr));
  const lat = [];
  const deadline = Date.now() + 1500;
  let allow = 0;
  for (let round = 0; Date.now() < deadline && lat.length < 20000; round++) {
    for (let i = 0; i < reqs.length; i++) {
      const r = reqs[i];
      const s = process.hrtime.bigint();
      const a = cedar.statefulIsAuthorized({
        principal: r.principal, action: r.action, resource: r.resource, context: r.context,
        preparsedPolicySetId: 'bench' + n, entities: slices[i],
      });
      lat.push(Number(process.hrtime.bigint() - s));
      if (a.type !== 'success') throw new Error(JSON.stringify(a).slice(0, 300));
      if (round === 0 && a.response.decision === 'allow') allow++;
      if (Date.now() >= deadline || lat.length >= 20000) break;
    }
  }
  lat.sort((x, y) => x - y);
  const total = lat.reduce((x, y) => x + y, 0);
  const dps = lat.length / (total / 1e9);
  const med = lat[Math.floor(lat.length / 2)];
  const p99 = lat[Math.floor(lat.length * 0.99)];
  const m = nhid[String(n)];
  console.log(`${String(n).padStart(8)} ${dps.toFixed(0).padStart(11)} ${String(med).padStart(13)} ${String(p99).padStart(13)} ` +
    `${m.decisions_per_s.toFixed(0).padStart(11)} ${String(m.median_ns).padStart(13)} ${(m.decisions_per_s / dps).toFixed(1).padStart(14)}x ` +
    `${(parseMs / m.parse_ms).toFixed(1).padStart(10)}x  (wasm parse ${parseMs.toFixed(1)} ms)`);
}
