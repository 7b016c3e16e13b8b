#!/usr/bin/env node
// Differential test: nhid's Cedar engine (`nhid policy eval -batch`) versus
// the reference implementation (@cedar-policy/cedar-wasm) on
//   1. a seeded sample of the generated corpus tests, and
//   2. seeded random policies / entities / requests.
// Compares decision, determining policies and erroring policy ids.
//
// usage: node differential.js [--nhid PATH] [--data DIR] [--seed N]
//                             [--corpus N] [--random N]
'use strict';
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const cedar = require('@cedar-policy/cedar-wasm/nodejs');

function arg(name, dflt) {
  const i = process.argv.indexOf('--' + name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}
const NHID = arg('nhid', process.env.NHID_BIN || 'nhid');
const DATA = arg('data', process.env.CEDAR_TESTS_DIR ||
  path.join(process.env.NHID_SOURCE_DIR || path.join(__dirname, '../..'), '../shared/cedar-integration-tests'));
const SEED = Number(arg('seed', process.env.CEDAR_DIFF_SEED || 12345));
const NCORPUS = Number(arg('corpus', 80));
const NRANDOM = Number(arg('random', 1500));

// mulberry32: small seeded PRNG so failures reproduce
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = rng(SEED);
const pick = (a) => a[Math.floor(rand() * a.length)];
const int = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));

// ---- reference ---------------------------------------------------------------
function reference(c) {
  const call = {
    principal: c.principal, action: c.action, resource: c.resource,
    context: c.context || {}, policies: { staticPolicies: c.policies },
    entities: c.entities || [],
  };
  if (c.schema) { call.schema = c.schema; call.validateRequest = false; }
  const r = cedar.isAuthorized(call);
  if (r.type !== 'success') return { decision: 'error', message: JSON.stringify(r.errors).slice(0, 300) };
  return {
    decision: r.response.decision,
    reasons: [...r.response.diagnostics.reason].sort(),
    errors: r.response.diagnostics.errors.map((e) => e.policyId).sort(),
    messages: r.response.diagnostics.errors.map((e) => e.policyId + ': ' + e.error.message),
  };
}

// ---- nhid (one process, JSON lines) ------------------------------------------
function nhidBatch(cases) {
  const input = cases.map((c) => JSON.stringify({
    policies: c.policies, entities: c.entities || [], principal: c.principal,
    action: c.action, resource: c.resource, context: c.context || {},
  })).join('\n') + '\n';
  const p = spawnSync(NHID, ['policy', 'eval', '-batch'], { input, maxBuffer: 1 << 30 });
  if (p.status !== 0) throw new Error('nhid failed: ' + p.stderr);
  const lines = p.stdout.toString().trim().split('\n');
  return lines.map((l) => {
    const r = JSON.parse(l);
    if (r.decision === 'error') return { decision: 'error', message: r.error || r.parse_error };
    return {
      decision: r.decision, reasons: [...r.reasons].sort(),
      errors: r.errors.map((e) => e.policy).sort(),
      messages: r.errors.map((e) => e.policy + ': ' + e.message),
    };
  });
}

function same(a, b) {
  if (a.decision === 'error' || b.decision === 'error') return a.decision === b.decision;
  return a.decision === b.decision && JSON.stringify(a.reasons) === JSON.stringify(b.reasons) &&
    JSON.stringify(a.errors) === JSON.stringify(b.errors);
}

// ---- corpus sample ---------------------------------------------------------------
function corpusCases() {
  const dir = path.join(DATA, 'corpus-tests');
  if (!fs.existsSync(dir)) { console.log('corpus: skipped (no data at ' + dir + ')'); return []; }
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.json') && !f.endsWith('.entities.json')).sort();
  const chosen = [];
  for (let i = 0; i < NCORPUS && files.length; i++) chosen.push(files.splice(Math.floor(rand() * files.length), 1)[0]);
  const cases = [];
  for (const f of chosen) {
    const t = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
    const policies = fs.readFileSync(path.join(DATA, t.policies), 'utf8');
    const entities = JSON.parse(fs.readFileSync(path.join(DATA, t.entities), 'utf8'));
    const schema = t.schema ? fs.readFileSync(path.join(DATA, t.schema), 'utf8') : undefined;
    for (const r of t.requests) {
      cases.push({ name: f + ' / ' + r.description, policies, entities, schema,
        principal: r.principal, action: r.action, resource: r.resource, context: r.context });
    }
  }
  return cases;
}

// ---- random generation ------------------------------------------------------------
const TYPES = ['User', 'Group', 'Doc', 'NS::Thing'];
const IDS = ['a', 'b', 'c', ''];
const ATTRS = ['n', 's', 'flag', 'set', 'rec', 'ref', 'ip', 'd', 'owner'];
const STRS = ['', 'a', 'ab', 'a*b', 'hello', 'x\ny', 'é'];
const uidStr = (u) => `${u.type}::${JSON.stringify(u.id)}`;
const randUid = () => ({ type: pick(TYPES), id: pick(IDS) });
const q = (s) => JSON.stringify(s);

function randValueJson(depth) {
  switch (int(0, depth > 1 ? 5 : 8)) {
    case 0: return int(-5, 5);
    case 1: return pick(STRS);
    case 2: return rand() < 0.5;
    case 3: return { __entity: randUid() };
    case 4: return { __extn: { fn: 'ip', arg: pick(['10.0.0.1', '192.168.0.0/16', '::1', '224.1.2.3']) } };
    case 5: return { __extn: { fn: 'decimal', arg: pick(['0.5', '-1.25', '3.0']) } };
    case 6: return [randValueJson(depth + 1), randValueJson(depth + 1)];
    case 7: return { n: int(-3, 3), s: pick(STRS) };
    default: return [int(0, 3), int(0, 3)];
  }
}

function randEntities() {
  const ents = [];
  const seen = new Set();
  for (let i = 0; i < int(2, 8); i++) {
    const uid = randUid();
    const k = uidStr(uid);
    if (seen.has(k)) continue;
    seen.add(k);
    const attrs = {};
    for (const a of ATTRS) if (rand() < 0.4) attrs[a] = randValueJson(0);
    // parents only of "later" types keep the hierarchy acyclic (the
    // reference rejects cycles; a few cyclic cases still come from ids
    // of the same type, and both sides must then reject the data)
    const parents = [];
    const ti = TYPES.indexOf(uid.type);
    for (let j = 0; j < int(0, 2); j++) {
      if (ti + 1 < TYPES.length) parents.push({ type: pick(TYPES.slice(ti + 1)), id: pick(IDS) });
      else if (rand() < 0.05) parents.push(randUid());
    }
    const e = { uid, attrs, parents };
    if (rand() < 0.3) e.tags = { t: randValueJson(1), [pick(['u', 'v'])]: pick(STRS) };
    ents.push(e);
  }
  return ents;
}

function randLit() {
  switch (int(0, 4)) {
    case 0: return String(int(-3, 9));
    case 1: return q(pick(STRS));
    case 2: return pick(['true', 'false']);
    case 3: return uidStr(randUid());
    default: return pick(['9223372036854775807', '-9223372036854775808', '4611686018427387904']);
  }
}

function randExpr(d) {
  if (d <= 0) {
    return pick([randLit, () => pick(['principal', 'resource', 'action', 'context']),
      () => `${pick(['principal', 'resource', 'context'])}.${pick(ATTRS)}`])();
  }
  const e = () => randExpr(d - 1);
  switch (int(0, 24)) {
    case 0: return `(${e()} && ${e()})`;
    case 1: return `(${e()} || ${e()})`;
    case 2: return `(!${e()})`;
    case 3: return `(${e()} == ${e()})`;
    case 4: return `(${e()} != ${e()})`;
    case 5: return `(${e()} ${pick(['<', '<=', '>', '>='])} ${e()})`;
    case 6: return `(${e()} ${pick(['+', '-', '*'])} ${e()})`;
    case 7: return `(${e()} in ${pick([e(), uidStr(randUid()), `[${uidStr(randUid())}, ${e()}]`])})`;
    case 8: return `(${e()} has ${pick(ATTRS)})`;
    case 9: return `(${e()} like ${q(pick(['*', 'a*', '*b', 'a\\*b', '', 'h*l*o', '*\\n*']))})`;
    case 10: return `(${e()} is ${pick(TYPES)})`;
    case 11: return `(${e()} is ${pick(TYPES)} in ${e()})`;
    case 12: return `(if ${e()} then ${e()} else ${e()})`;
    case 13: return `[${e()}, ${e()}]`;
    case 14: return `{a: ${e()}, "b c": ${e()}}`;
    case 15: return `${e()}.${pick(['contains', 'containsAll', 'containsAny'])}(${e()})`;
    case 16: return `${e()}.isEmpty()`;
    case 17: return `${e()}.${pick(['getTag', 'hasTag'])}(${pick(['"t"', '"u"', e()])})`;
    case 18: return `ip(${pick(['"10.0.0.1"', '"10.0.0.0/8"', '"::1"', '"bad"', e()])}).${pick(['isIpv4', 'isIpv6', 'isLoopback', 'isMulticast'])}()`;
    case 19: return `${e()}.isInRange(ip(${q(pick(['10.0.0.0/8', '192.168.0.0/16', '::/0']))}))`;
    case 20: return `decimal(${q(pick(['1.5', '-0.0001', '2.12345', 'x', '922337203685477.5807']))}).${pick(['lessThan', 'greaterThanOrEqual'])}(${pick(['decimal("1.0")', e()])})`;
    case 21: return `(${e()}.${pick(ATTRS)})`;
    case 22: return `(-${e()})`;
    case 23: return `datetime(${q(pick(['2024-10-15', '2024-10-15T11:38:02Z', '2024-02-30', '1969-12-31T23:59:59.999-0100']))}).${pick(['toDate()', 'toTime()', 'offset(duration("-1d2h"))', 'durationSince(datetime("2000-01-01"))'])}`;
    default: return `(duration(${q(pick(['1h', '-90m', '2d3ms', '1m1h']))}).${pick(['toHours()', 'toMinutes()', 'toMilliseconds()'])} ${pick(['<', '=='])} ${e()})`;
  }
}

function randScope(v) {
  const u = () => uidStr(v === 'action' ? { type: 'Action', id: pick(['read', 'write', 'all']) } : randUid());
  const r = int(0, v === 'action' ? 3 : 4);
  if (r === 0) return v;
  if (r === 1) return `${v} == ${u()}`;
  if (r === 2) return `${v} in ${u()}`;
  if (v === 'action') return `${v} in [${u()}, ${u()}]`;
  return r === 3 ? `${v} is ${pick(TYPES)}` : `${v} is ${pick(TYPES)} in ${u()}`;
}

function randPolicies() {
  const n = int(1, 5);
  const out = [];
  for (let i = 0; i < n; i++) {
    let p = `${rand() < 0.3 ? '@note("x") ' : ''}${pick(['permit', 'permit', 'forbid'])}(${randScope('principal')}, ${randScope('action')}, ${randScope('resource')})`;
    for (let k = 0; k < int(0, 2); k++) p += ` ${pick(['when', 'unless'])} { ${randExpr(int(0, 3))} }`;
    out.push(p + ';');
  }
  return out.join('\n');
}

function randomCases() {
  const cases = [];
  for (let i = 0; i < NRANDOM; i++) {
    const entities = randEntities();
    const actionEnts = [{ uid: { type: 'Action', id: 'read' }, attrs: {}, parents: [{ type: 'Action', id: 'all' }] },
      { uid: { type: 'Action', id: 'all' }, attrs: {}, parents: [] }];
    const ctx = {};
    for (const a of ATTRS) if (rand() < 0.4) ctx[a] = randValueJson(0);
    cases.push({
      name: 'random #' + i, policies: randPolicies(), entities: entities.concat(actionEnts),
      principal: rand() < 0.7 && entities.length ? entities[0].uid : randUid(),
      action: { type: 'Action', id: pick(['read', 'write', 'all']) },
      resource: rand() < 0.7 && entities.length ? pick(entities).uid : randUid(),
      context: ctx,
    });
  }
  return cases;
}

// ---- run ----------------------------------------------------------------------------
function run(label, cases) {
  if (cases.length === 0) return 0;
  const t0 = Date.now();
  const got = nhidBatch(cases);
  let bad = 0;
  let refErrors = 0;
  cases.forEach((c, i) => {
    const want = reference(c);
    if (want.decision === 'error') refErrors++;
    if (!same(want, got[i])) {
      bad++;
      if (bad <= 10) {
        console.log(`MISMATCH ${label}: ${c.name}`);
        console.log('  policies: ' + c.policies.replace(/\n/g, '\n            '));
        console.log('  request:  ' + JSON.stringify({ p: c.principal, a: c.action, r: c.resource, ctx: c.context }));
        console.log('  cedar-wasm: ' + JSON.stringify(want));
        console.log('  nhid:       ' + JSON.stringify(got[i]));
      }
    }
  });
  console.log(`${label}: ${cases.length} requests, ${cases.length - bad} agree, ${bad} differ` +
    ` (${refErrors} rejected by both parsers or the reference) in ${Date.now() - t0} ms`);
  return bad;
}

let bad = 0;
console.log(`cedar-wasm ${cedar.getCedarVersion()}, seed ${SEED}`);
bad += run('corpus sample', corpusCases());
bad += run('random', randomCases());
if (bad) {
  console.log(`FAIL: ${bad} differences`);
  process.exit(1);
}
console.log('PASS: no differences');
