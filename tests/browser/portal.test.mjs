#!/usr/bin/env node
// End-to-end test of the flowsight web portal in headless Chromium.
//
//   node tests/browser/portal.test.mjs --base http://127.0.0.1:18080 --out /tmp/shots \
//        [--user NAME --password PW] [--chromium /usr/bin/chromium] [--timeout 60000]
//
// The server must already hold flows (e.g. from `flowsight generate`). For every page the
// test waits for <main data-ready="1">, fetches the API URL the page itself requested and
// checks that the DOM shows the API's numbers; it saves a full-page screenshot per page into
// --out, fails on console errors, and exits 1 if any check fails.
// Needs only playwright-core (no downloaded browsers: it drives the system Chromium), from
// $FLOWSIGHT_NODE_MODULES when set, else tests/browser/node_modules (`npm ci` here).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const { chromium } = process.env.FLOWSIGHT_NODE_MODULES
  ? createRequire(import.meta.url)(path.join(path.resolve(process.env.FLOWSIGHT_NODE_MODULES), 'playwright-core'))
  : await import('playwright-core');

// ---------------------------------------------------------------------------------------
// Arguments
// ---------------------------------------------------------------------------------------
function parseArgs(argv) {
  const o = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const [k, v] = a.includes('=') ? a.slice(2).split(/=(.*)/s) : [a.slice(2), argv[++i]];
    if (v === undefined) throw new Error(`${a} needs a value`);
    o[k] = v;
  }
  return o;
}
let args;
try {
  args = parseArgs(process.argv.slice(2));
  if (!args.base) throw new Error('--base URL is required (e.g. --base http://127.0.0.1:8080)');
} catch (e) {
  console.error(`usage: node portal.test.mjs --base URL [--out DIR] [--user NAME --password PW] [--chromium PATH] [--timeout MS]\n${e.message}`);
  process.exit(2);
}
const BASE = args.base.replace(/\/+$/, '');
const OUT = path.resolve(args.out || 'portal-screenshots');
const TIMEOUT = Number(args.timeout || 60000);
const CHROMIUM = args.chromium || process.env.CHROMIUM || '/usr/bin/chromium';
const FIRST_LOAD_LIMIT = 2_000_000;
fs.mkdirSync(OUT, { recursive: true });

// ---------------------------------------------------------------------------------------
// Check bookkeeping
// ---------------------------------------------------------------------------------------
const results = [];
let current = 'setup';
/** Console messages a check expects (e.g. the 400 of a bad filter): regexes. */
let allowedConsole = [];
const consoleErrors = [];

async function check(name, fn, { allowConsole = [] } = {}) {
  current = name;
  allowedConsole = allowConsole;
  const t0 = Date.now();
  try {
    const detail = await fn();
    results.push({ name, ok: true });
    console.log(`ok   ${name}${detail ? ` — ${detail}` : ''} (${Date.now() - t0} ms)`);
  } catch (e) {
    results.push({ name, ok: false, error: e });
    console.log(`FAIL ${name} — ${e && e.message ? e.message.split('\n').slice(0, 6).join('\n     ') : e}`);
  } finally {
    allowedConsole = [];
  }
}

function watchConsole(page) {
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const text = m.text();
    if (allowedConsole.some((re) => re.test(text))) return;
    consoleErrors.push({ check: current, text: `${text} (${m.location().url || page.url()})` });
  });
  page.on('pageerror', (e) => consoleErrors.push({ check: current, text: `uncaught: ${e.message}` }));
}

/** API requests the page made: full URLs, in order. */
function watchApi(page) {
  const log = [];
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.pathname.startsWith('/api/v1/')) log.push(u);
  });
  return log;
}

async function waitReady(page, pageName) {
  const sel = pageName ? `main[data-ready="1"][data-page="${pageName}"]` : 'main[data-ready="1"]';
  await page.waitForSelector(sel, { timeout: TIMEOUT });
}

/** The last request to `route` whose query matches `want` (a subset of parameters). */
function requested(log, route, want = {}, since = 0) {
  const hits = log.slice(since).filter((u) => u.pathname === `/api/v1/${route}` &&
    Object.entries(want).every(([k, v]) => (v instanceof RegExp ? v.test(u.searchParams.get(k) || '') : u.searchParams.get(k) === v)));
  if (!hits.length) {
    throw new Error(`the page did not request /api/v1/${route} with ${JSON.stringify(Object.fromEntries(Object.entries(want).map(([k, v]) => [k, String(v)])))}; it requested:\n` +
      log.slice(since).map((u) => `  ${u.pathname}${u.search}`).join('\n'));
  }
  return hits[hits.length - 1];
}

async function apiJson(ctx, url, okOnly = true) {
  const r = await ctx.request.get(typeof url === 'string' ? BASE + url : url.href);
  const body = await r.json();
  if (okOnly && !r.ok()) throw new Error(`${url}: HTTP ${r.status()} ${JSON.stringify(body)}`);
  return { status: r.status(), body };
}

/** The top-row data of every top-table in `scope` (a selector), in order. */
async function topRows(page, scope = 'body') {
  return page.$$eval(`${scope} table[data-testid="top-table"] tr[data-testid="top-row"]`, (trs) => trs.map((tr) => ({
    key: tr.dataset.key, flows: Number(tr.dataset.flows), packets: Number(tr.dataset.packets), bytes: Number(tr.dataset.bytes),
  })));
}
const apiRows = (res) => res.rows.map((r) => ({ key: r.key.join('|'), flows: r.flows, packets: r.packets, bytes: r.bytes }));

async function tableRows(page, nth) {
  return page.$$eval('table[data-testid="top-table"]', (ts, i) => [...ts[i].querySelectorAll('tr[data-testid="top-row"]')].map((tr) => ({
    key: tr.dataset.key, flows: Number(tr.dataset.flows), packets: Number(tr.dataset.packets), bytes: Number(tr.dataset.bytes),
  })), nth);
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(OUT, `${name}.png`), fullPage: true });
}

// ---------------------------------------------------------------------------------------
// Run
// ---------------------------------------------------------------------------------------
const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
let exitCode = 0;
try {
  const viewport = { width: 1366, height: 768 };
  let storageState;

  // Login, when the server needs one.
  const probe = await browser.newContext({ viewport });
  const session = (await apiJson(probe, '/api/v1/session')).body;
  if (session.auth_required && session.via === 'none') {
    if (!args.user || !args.password) {
      console.log('FAIL login — the server requires a login: pass --user NAME --password PW');
      process.exitCode = 1;
      throw new Error('no credentials');
    }
    const page = await probe.newPage();
    watchConsole(page);
    await check('login: a protected page shows the login form; a wrong password is refused; the right one returns to the page', async () => {
      await page.goto(`${BASE}/top?dimension=dstport`);
      await waitReady(page, 'login');
      assert.match(new URL(page.url()).pathname, /^\/login$/, 'not redirected to /login');
      const form = page.locator('form[data-testid="login-form"]');
      await form.locator('input[name="username"]').fill(args.user);
      await form.locator('input[name="password"]').fill(args.password + '-wrong');
      await form.locator('button[type="submit"]').click();
      await page.locator('.login-error').waitFor({ state: 'visible', timeout: TIMEOUT });
      await shot(page, 'login');
      await form.locator('input[name="password"]').fill(args.password);
      await form.locator('button[type="submit"]').click();
      await waitReady(page, 'top');
      const u = new URL(page.url());
      assert.equal(u.pathname + u.search, '/top?dimension=dstport', 'did not return to the page asked for');
      const who = await page.locator('[data-testid="user"]').textContent();
      assert.equal(who, args.user);
      storageState = await probe.storageState();
      return `logged in as ${who}`;
    }, { allowConsole: [/status of 401/] });
    await page.close();
    if (!storageState) throw new Error('login failed: the remaining checks need a session');
  } else if (args.user) {
    console.log(`note: the server needs no login (via=${session.via}); --user ignored`);
  }
  await probe.close();

  const ctx = await browser.newContext({ viewport, storageState });
  const health = (await apiJson(ctx, '/api/v1/health')).body;
  const page = await ctx.newPage();
  watchConsole(page);
  const log = watchApi(page);

  // Overview, first load with an empty cache: bytes on the wire.
  await check('overview: first load under 2 MB; headline numbers, top-5 tables and chart match the API', async () => {
    const cdp = await ctx.newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
    const sizes = new Map();
    const urls = new Map();
    cdp.on('Network.requestWillBeSent', (e) => urls.set(e.requestId, e.request.url));
    cdp.on('Network.loadingFinished', (e) => sizes.set(e.requestId, e.encodedDataLength));
    const mark = log.length;
    await page.goto(`${BASE}/`);
    await waitReady(page, 'overview');
    await page.waitForTimeout(300);
    await cdp.send('Network.setCacheDisabled', { cacheDisabled: false });
    const total = [...sizes.values()].reduce((a, b) => a + b, 0);
    const biggest = [...sizes.entries()].sort((a, b) => b[1] - a[1]).slice(0, 3)
      .map(([id, n]) => `${new URL(urls.get(id)).pathname} ${n}`).join(', ');
    console.log(`     first load: ${total} bytes in ${sizes.size} responses (largest: ${biggest})`);
    assert.ok(total < FIRST_LOAD_LIMIT, `first load transferred ${total} bytes (limit ${FIRST_LOAD_LIMIT})`);

    const srcUrl = requested(log, 'top', { dimension: 'srcip' }, mark);
    const src = (await apiJson(ctx, srcUrl)).body;
    for (const k of ['flows', 'packets', 'bytes']) {
      const v = await page.getAttribute(`[data-testid="headline-${k}"]`, 'data-value');
      assert.equal(Number(v), src.totals[k], `headline-${k} ${v} != API totals.${k} ${src.totals[k]}`);
    }
    assert.ok(src.totals.flows > 0, 'the API reports no flows in the last hour: generate data first');
    const tables = await page.$$('table[data-testid="top-table"]');
    assert.equal(tables.length, 3, 'expected three top-5 tables');
    const dims = ['srcip', 'dstip', 'dstport'];
    for (let i = 0; i < 3; i++) {
      const res = (await apiJson(ctx, requested(log, 'top', { dimension: dims[i] }, mark))).body;
      assert.deepEqual(await tableRows(page, i), apiRows(res), `${dims[i]} table rows differ from the API`);
    }
    const ts = (await apiJson(ctx, requested(log, 'timeseries', { dimension: 'proto', metric: 'bps' }, mark))).body;
    assert.ok(ts.series.length > 0 && ts.times_ns.length > 0, 'timeseries is empty');
    assert.ok(await page.locator('.chart canvas').count() > 0, 'no chart canvas');
    await shot(page, 'overview');
    return `flows=${src.totals.flows} packets=${src.totals.packets} bytes=${src.totals.bytes}; first load ${total} bytes`;
  });

  await check('overview: the split selector changes the chart dimension in the URL', async () => {
    const mark = log.length;
    await page.selectOption('select[data-testid="split-select"]', 'dstport');
    await waitReady(page, 'overview');
    assert.equal(new URL(page.url()).searchParams.get('split'), 'dstport');
    requested(log, 'timeseries', { dimension: 'dstport' }, mark);
  });

  // Top items.
  await check('top: talkers table equals /api/v1/top rows in order, with other and total rows', async () => {
    const mark = log.length;
    await page.goto(`${BASE}/top?dimension=srcip&metric=bytes&limit=25`);
    await waitReady(page, 'top');
    const res = (await apiJson(ctx, requested(log, 'top', { dimension: 'srcip', metric: 'bytes', limit: '25' }, mark))).body;
    const rows = await topRows(page);
    assert.ok(rows.length > 0, 'no rows');
    assert.deepEqual(rows, apiRows(res));
    if (res.other.flows > 0) assert.equal(await page.locator('tr.other-row').count(), 1, 'no "other" row');
    // Human units in the cell, the exact number in its title.
    const title = await page.locator('tr[data-testid="top-row"]').first().locator('td.num').nth(3).getAttribute('title');
    assert.ok(title.replace(/,/g, '').includes(String(res.rows[0].bytes)), `bytes title "${title}" lacks the exact value ${res.rows[0].bytes}`);
    await shot(page, 'top');
    return `${rows.length} rows, top talker ${rows[0].key} with ${rows[0].bytes} bytes`;
  });

  await check('top: a deep link shows its state (dimension dstport, metric flows)', async () => {
    const mark = log.length;
    await page.goto(`${BASE}/top?dimension=dstport&metric=flows`);
    await waitReady(page, 'top');
    const active = await page.getAttribute('[data-testid="dim-tab"][aria-current="page"]', 'data-dimension');
    assert.equal(active, 'dstport', 'the selected tab is not dstport');
    assert.equal(await page.inputValue('select[data-testid="metric-select"]'), 'flows', 'metric select is not flows');
    const res = (await apiJson(ctx, requested(log, 'top', { dimension: 'dstport', metric: 'flows' }, mark))).body;
    assert.deepEqual(await topRows(page), apiRows(res));
    const th = await page.locator('table[data-testid="top-table"] th.sorted').textContent();
    assert.match(th, /Flows/);
  });

  await check('top: conversations (srcip,dstip) have two-part keys equal to the API', async () => {
    const mark = log.length;
    await page.click('[data-testid="dim-tab"][data-dimension="srcip,dstip"]');
    await waitReady(page, 'top');
    assert.equal(new URL(page.url()).searchParams.get('dimension'), 'srcip,dstip');
    const res = (await apiJson(ctx, requested(log, 'top', { dimension: 'srcip,dstip' }, mark))).body;
    const rows = await topRows(page);
    assert.deepEqual(rows, apiRows(res));
    assert.ok(rows.every((r) => r.key.split('|').length === 2), 'keys are not pairs');
  });

  await check('navigation: nav links then Back restore the previous page and its URL', async () => {
    const before = new URL(page.url());
    await page.click('[data-testid="nav-exporters"]');
    await waitReady(page, 'exporters');
    assert.equal(new URL(page.url()).pathname, '/exporters');
    await page.click('[data-testid="nav-flows"]');
    await waitReady(page, 'flows');
    assert.equal(new URL(page.url()).pathname, '/flows');
    await page.goBack();
    await waitReady(page, 'exporters');
    assert.equal(new URL(page.url()).pathname, '/exporters');
    await page.goBack();
    await waitReady(page, 'top');
    const after = new URL(page.url());
    assert.equal(after.pathname + after.search, before.pathname + before.search, 'URL not restored');
    assert.equal(await page.getAttribute('[data-testid="dim-tab"][aria-current="page"]', 'data-dimension'), 'srcip,dstip', 'tab not restored');
    const hrefs = await page.$$eval('nav a[data-testid^="nav-"]', (as) => as.map((a) => a.getAttribute('href')));
    assert.equal(hrefs.length, 5, 'expected 5 nav links with href');
    return `${after.pathname}${after.search}`;
  });

  // Host view, reached by clicking an address.
  let hostAddr;
  await check('host: clicking an IP address opens /host/<addr> with numbers matching the API', async () => {
    await page.goto(`${BASE}/top?dimension=dstip&metric=bytes`);
    await waitReady(page, 'top');
    const link = page.locator('table[data-testid="top-table"] a.ip').first();
    hostAddr = (await link.textContent()).trim();
    const mark = log.length;
    await link.click();
    await waitReady(page, 'host');
    assert.equal(decodeURIComponent(new URL(page.url()).pathname), `/host/${hostAddr}`);
    assert.equal(await page.getAttribute('[data-testid="host-title"]', 'data-address'), hostAddr);
    const url = requested(log, 'top', { dimension: 'dstport', filter: `host ${hostAddr}` }, mark);
    const res = (await apiJson(ctx, url)).body;
    for (const k of ['flows', 'packets', 'bytes']) {
      assert.equal(Number(await page.getAttribute(`[data-testid="headline-${k}"]`, 'data-value')), res.totals[k], `headline-${k}`);
    }
    assert.ok(res.totals.flows > 0, `no flows for host ${hostAddr}`);
    const peers = (await apiJson(ctx, requested(log, 'top', { dimension: 'srcip', filter: `dst host ${hostAddr}` }, mark))).body;
    assert.deepEqual(await tableRows(page, 1), apiRows(peers), 'peers-as-destination table differs');
    requested(log, 'timeseries', { filter: `host ${hostAddr}` }, mark);
    const flowsHref = await page.getAttribute('[data-testid="host-flows"]', 'href');
    assert.equal(new URL(flowsHref, BASE).searchParams.get('filter'), `host ${hostAddr}`);
    await shot(page, 'host');
    return `${hostAddr}: ${res.totals.flows} flows`;
  });

  // Geo.
  await check('geo: map and country table match the API (or the enrichment-off notice)', async () => {
    const mark = log.length;
    await page.goto(`${BASE}/geo?side=src`);
    await waitReady(page, 'geo');
    if (health.enrichment !== 'on') {
      assert.ok(await page.locator('[data-testid="geo-off"]').isVisible(), 'no enrichment-off notice');
      await shot(page, 'geo');
      return 'enrichment is off: notice shown';
    }
    assert.ok(await page.locator('[data-testid="geo-map"] canvas').count() > 0, 'no map canvas');
    const res = (await apiJson(ctx, requested(log, 'top', { dimension: 'srcgeo' }, mark))).body;
    const rows = await topRows(page);
    assert.deepEqual(rows, apiRows(res));
    const known = res.rows.filter((r) => r.key[0] && r.key[0] !== "-");
    assert.ok(known.length > 0, 'no flow has a known source country: is GeoIP enrichment working?');
    await shot(page, 'geo');
    // Drill down into the first known country from the table.
    const cc = known[0].key[0];
    const m2 = log.length;
    await page.click(`tr[data-testid="top-row"][data-key="${cc}"] a`);
    await waitReady(page, 'geo');
    const u = new URL(page.url());
    assert.equal(u.searchParams.get('country'), cc);
    const d = (await apiJson(ctx, requested(log, 'top', { dimension: 'srcip', filter: `src geo ${cc}` }, m2))).body;
    assert.deepEqual(await tableRows(page, 0), apiRows(d), 'drill-down talkers differ');
    await shot(page, 'geo-country');
    return `${rows.length} countries; ${cc}: ${d.totals.flows} flows`;
  });

  await check('geo: deep link /geo?side=dst selects the destination side', async () => {
    const mark = log.length;
    await page.goto(`${BASE}/geo?side=dst`);
    await waitReady(page, 'geo');
    if (health.enrichment !== 'on') return 'enrichment off';
    assert.equal(await page.getAttribute('[data-testid="side-tab"][aria-current="page"]', 'data-side'), 'dst');
    requested(log, 'top', { dimension: 'dstgeo' }, mark);
  });

  // Flow explorer.
  await check('flows: table equals the API page; Next/Back paginate; sorting; export links', async () => {
    const mark = log.length;
    await page.goto(`${BASE}/flows?limit=100`);
    await waitReady(page, 'flows');
    const url = requested(log, 'flows', { limit: '100' }, mark);
    const res = (await apiJson(ctx, url)).body;
    const rows = page.locator('table[data-testid="flow-table"] tr[data-testid="flow-row"]');
    assert.equal(await rows.count(), res.flows.length, 'row count differs');
    assert.ok(res.flows.length > 0, 'no flows');
    for (const i of [0, res.flows.length - 1]) {
      const text = await rows.nth(i).textContent();
      for (const f of ['src_addr', 'dst_addr']) assert.ok(text.includes(res.flows[i][f]), `row ${i} lacks ${f} ${res.flows[i][f]}: ${text}`);
    }
    assert.equal(Number(await page.getAttribute('[data-testid="flows-matched"]', 'data-value')), res.matched.flows);
    const csv = new URL(await page.getAttribute('[data-testid="export-csv"]', 'href'), BASE);
    assert.equal(csv.searchParams.get('format'), 'csv');
    assert.equal(await page.getAttribute('[data-testid="export-csv"]', 'download') !== null, true, 'export link lacks download');
    const nd = new URL(await page.getAttribute('[data-testid="export-ndjson"]', 'href'), BASE);
    assert.equal(nd.searchParams.get('format'), 'ndjson');
    await shot(page, 'flows');
    // Sort by bytes (within the page): descending after two clicks.
    const bytesTh = page.locator('table[data-testid="flow-table"] th[data-sort="bytes"]');
    await bytesTh.click();
    await bytesTh.click();
    assert.equal(new URL(page.url()).searchParams.get('sort'), '-bytes');
    const firstBytes = await rows.first().locator('td.num').first().getAttribute('title');
    const max = Math.max(...res.flows.map((f) => f.bytes));
    assert.equal(Number(firstBytes.replace(/[^0-9]/g, '')), max, 'first row after sorting is not the largest');
    if (!res.next_cursor) return `${res.flows.length} flows (single page)`;
    const m2 = log.length;
    await page.click('[data-testid="next-page"]');
    await waitReady(page, 'flows');
    assert.equal(new URL(page.url()).searchParams.get('cursor'), res.next_cursor, 'cursor not in the URL');
    const res2 = (await apiJson(ctx, requested(log, 'flows', { cursor: res.next_cursor }, m2))).body;
    assert.equal(await rows.count(), res2.flows.length);
    await page.click('[data-testid="prev-page"]');
    await waitReady(page, 'flows');
    assert.equal(new URL(page.url()).searchParams.get('cursor'), null, 'Previous did not return to the first page');
    // Previous is a link to the first page; Back walks the history: page 2, then page 1.
    await page.goBack();
    await page.waitForFunction((c) => new URL(location.href).searchParams.get('cursor') === c, res.next_cursor, { timeout: TIMEOUT });
    await waitReady(page, 'flows');
    assert.equal(await rows.count(), res2.flows.length);
    await page.goBack();
    await page.waitForFunction(() => !new URL(location.href).searchParams.get('cursor'), null, { timeout: TIMEOUT });
    await waitReady(page, 'flows');
    assert.equal(await rows.count(), res.flows.length);
    return `${res.flows.length} flows on page 1 of ${res.matched.flows} matched; page 2 has ${res2.flows.length}`;
  });

  await check('flows: a bad filter shows the API message and a caret at its position', async () => {
    const bad = 'proto tcp and and';
    await page.goto(`${BASE}/flows`);
    await waitReady(page, 'flows');
    const mark = log.length;
    await page.fill('[data-testid="filter-input"]', bad);
    await page.press('[data-testid="filter-input"]', 'Enter');
    await waitReady(page, 'flows');
    assert.equal(new URL(page.url()).searchParams.get('filter'), bad, 'filter not in the URL');
    const { status, body } = await apiJson(ctx, requested(log, 'flows', { filter: bad }, mark), false);
    assert.equal(status, 400);
    const box = page.locator('[data-testid="filter-error"]');
    await box.waitFor({ state: 'visible', timeout: TIMEOUT });
    const text = await box.textContent();
    assert.ok(text.includes(body.error.message), `filter-error "${text}" lacks the API message "${body.error.message}"`);
    if (body.error.position != null) {
      assert.equal(Number(await box.getAttribute('data-position')), body.error.position, 'caret position');
      assert.ok(await box.locator('.caret').isVisible(), 'no caret');
    }
    await shot(page, 'filter-error');
    return body.error.message;
  }, { allowConsole: [/status of 400/] });

  await check('host: a bad filter scoped to the host points at the same character of the filter', async () => {
    const bad = 'proto tcp and and';
    await page.goto(`${BASE}/host/${hostAddr || '10.0.0.1'}?filter=${encodeURIComponent(bad)}`);
    await waitReady(page, 'host');
    const { body } = await apiJson(ctx, `/api/v1/flows?filter=${encodeURIComponent(bad)}`, false);
    const box = page.locator('[data-testid="filter-error"]');
    await box.waitFor({ state: 'visible', timeout: TIMEOUT });
    assert.equal(await page.inputValue('[data-testid="filter-input"]'), bad);
    assert.equal(Number(await box.getAttribute('data-position')), body.error.position, 'caret position');
    assert.ok((await box.textContent()).includes(body.error.message), `"${await box.textContent()}" lacks "${body.error.message}"`);
  }, { allowConsole: [/status of 400/] });

  // Exporters.
  await check('exporters: one card per exporter in /api/v1/exporters', async () => {
    await page.goto(`${BASE}/exporters`);
    await waitReady(page, 'exporters');
    const list = (await apiJson(ctx, '/api/v1/exporters')).body;
    const cards = await page.$$eval('[data-testid="exporter"]', (es) => es.map((e) => e.dataset.address));
    assert.deepEqual(cards.sort(), list.map((e) => e.address).sort());
    if (list.length) {
      const hrefTop = new URL(await page.locator('[data-testid="exporter"] a.addr').first().getAttribute('href'), BASE);
      assert.equal(hrefTop.pathname, '/top');
      assert.match(hrefTop.searchParams.get('filter') || '', /^router ip /);
    }
    await page.waitForTimeout(3500); // the second sample, for rates
    await shot(page, 'exporters');
    return `${list.length} exporter(s): ${cards.join(', ')}`;
  });

  await check('exporters: clicking an exporter shows its interfaces', async () => {
    const list = (await apiJson(ctx, '/api/v1/exporters')).body;
    if (!list.length) return 'no exporters';
    const mark = log.length;
    await page.click('[data-testid="exporter"] a.addr');
    await waitReady(page, 'top');
    const url = requested(log, 'top', { dimension: 'inif', filter: /^router ip / }, mark);
    const res = (await apiJson(ctx, url)).body;
    assert.deepEqual(await topRows(page), apiRows(res));
    return `${res.rows.length} interfaces`;
  });

  if (storageState) {
    await check('expired session: an API 401 leads to the login form, and logging in returns to the page', async () => {
      await page.goto(`${BASE}/exporters`);
      await waitReady(page, 'exporters');
      await ctx.clearCookies();
      await page.click('[data-testid="nav-top"]');
      await waitReady(page, 'login');
      const form = page.locator('form[data-testid="login-form"]');
      await form.locator('input[name="username"]').fill(args.user);
      await form.locator('input[name="password"]').fill(args.password);
      await form.locator('button[type="submit"]').click();
      await waitReady(page, 'top');
      assert.equal(new URL(page.url()).pathname, '/top');
      assert.ok(await page.locator('tr[data-testid="top-row"]').count() > 0, 'no rows after logging in again');
    }, { allowConsole: [/status of 401/] });
    await check('logout: "Log out" ends the session and shows the login form', async () => {
      await page.click('[data-testid="logout"]');
      await waitReady(page, 'login');
      await page.locator('form[data-testid="login-form"]').waitFor({ timeout: TIMEOUT });
      const s = (await apiJson(ctx, '/api/v1/session')).body;
      assert.equal(s.via, 'none', 'the session still works after logging out');
    }, { allowConsole: [/status of 401/] });
  }

  await check('no console errors or uncaught exceptions', async () => {
    if (consoleErrors.length) {
      throw new Error(consoleErrors.map((e) => `[${e.check}] ${e.text}`).join('\n'));
    }
  });
  await ctx.close();
} catch (e) {
  if (e.message !== 'no credentials') {
    console.log(`FAIL setup — ${e.stack || e}`);
    exitCode = 1;
  }
} finally {
  await browser.close();
}

const failed = results.filter((r) => !r.ok);
console.log(`\n${results.length - failed.length}/${results.length} checks passed; screenshots in ${OUT}`);
if (failed.length || exitCode || process.exitCode) {
  for (const f of failed) console.log(`failed: ${f.name}`);
  process.exit(1);
}
