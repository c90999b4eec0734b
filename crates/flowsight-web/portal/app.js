/* flowsight portal: a single-page app in plain JavaScript (no build step, no framework).
 *
 * Every page is rendered from the URL (path + query string), so links can be shared and the
 * back button works; internal links are real <a href> elements that the router intercepts.
 * The page sets <main data-ready="1"> once all its requests have finished and rendered.
 * CSP: no inline scripts, no eval, no inline handlers: listeners are attached here. */
'use strict';
(() => {
  // ---------------------------------------------------------------------------------------
  // DOM helpers
  // ---------------------------------------------------------------------------------------
  const $ = (sel, root = document) => root.querySelector(sel);

  /** h('a', {href, class, dataset: {..}, onclick: fn}, ...children) */
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : v);
    }
    for (const c of kids.flat(Infinity)) {
      if (c != null && c !== false) el.append(c instanceof Node ? c : String(c));
    }
    return el;
  }
  const card = (title, body, extra) =>
    h('section', { class: 'card' }, h('header', null, h('h2', null, title), extra || null), body);
  const empty = (msg) => h('div', { class: 'empty' }, msg);
  const loading = () => h('div', { class: 'loading' }, 'Loading…');

  // ---------------------------------------------------------------------------------------
  // Formatting (SI, 1000-based)
  // ---------------------------------------------------------------------------------------
  function si(n, units) {
    n = Number(n) || 0;
    let i = 0;
    while (Math.abs(n) >= 999.5 && i < units.length - 1) { n /= 1000; i++; }
    const a = Math.abs(n);
    const s = i === 0 && Number.isInteger(n) ? String(n)
      : a >= 99.95 ? n.toFixed(0) : a >= 9.995 ? n.toFixed(1) : n.toFixed(2);
    return s + units[i];
  }
  const fmtBytes = (n) => si(n, [' B', ' kB', ' MB', ' GB', ' TB', ' PB', ' EB']);
  const fmtBps = (n) => si(Math.round(n), [' b/s', ' kb/s', ' Mb/s', ' Gb/s', ' Tb/s', ' Pb/s']);
  const fmtCount = (n) => si(n, ['', 'k', 'M', 'G', 'T']);
  const fmtPps = (n) => si(n < 10 ? Math.round(n * 10) / 10 : Math.round(n), [' pps', 'k pps', 'M pps', 'G pps']);
  const exact = (n) => Number(n).toLocaleString('en-US');
  const FMT = { flows: fmtCount, packets: fmtCount, bytes: fmtBytes, bps: fmtBps, pps: fmtPps, bpp: (n) => fmtBytes(n) };
  // HTML-escapes text for the one place markup is built by hand (the map's tooltip).
  const esc = (t) => String(t).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const UNIT = { flows: 'flows', packets: 'packets', bytes: 'bytes', bps: 'bits/s', pps: 'packets/s', bpp: 'bytes/packet' };
  const METRIC_LABEL = { flows: 'Flows', packets: 'Packets', bytes: 'Bytes', bps: 'Bits/s', pps: 'Packets/s', bpp: 'Bytes/packet' };

  /** A number cell: human units, exact value in the title. */
  const num = (n, metric, tag = 'td') =>
    h(tag, { class: 'num', title: `${exact(n)} ${UNIT[metric] || ''}`.trim() }, (FMT[metric] || fmtCount)(n));

  const pad = (n, w = 2) => String(n).padStart(w, '0');
  function fmtTime(ms, withDate = true) {
    const d = new Date(ms);
    const t = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    return withDate ? `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${t}` : t;
  }
  function relTime(ms) {
    const s = Math.round((Date.now() - ms) / 1000);
    if (s < 2) return 'just now';
    if (s < 90) return `${s} s ago`;
    if (s < 5400) return `${Math.round(s / 60)} min ago`;
    if (s < 172800) return `${Math.round(s / 3600)} h ago`;
    return `${Math.round(s / 86400)} d ago`;
  }
  // TCP flags as the API's `flags` key writes them (UAPRSF), with E and C in front when set.
  const fmtFlags = (f) => (f & 128 ? 'C' : '') + (f & 64 ? 'E' : '') + [...'UAPRSF'].map((c, i) => (f & (32 >> i) ? c : '.')).join('');
  // Well-known ports, shown beside port numbers.
  const SERVICES = { 20: 'ftp-data', 21: 'ftp', 22: 'ssh', 23: 'telnet', 25: 'smtp', 53: 'dns', 67: 'dhcp', 68: 'dhcp', 80: 'http', 110: 'pop3',
    123: 'ntp', 143: 'imap', 161: 'snmp', 179: 'bgp', 389: 'ldap', 443: 'https', 445: 'smb', 465: 'smtps', 514: 'syslog', 587: 'submission',
    636: 'ldaps', 853: 'dns-tls', 993: 'imaps', 995: 'pop3s', 1194: 'openvpn', 1433: 'mssql', 1812: 'radius', 2055: 'netflow', 3306: 'mysql',
    3389: 'rdp', 4739: 'ipfix', 5060: 'sip', 5432: 'postgres', 6343: 'sflow', 6379: 'redis', 8080: 'http-alt', 8443: 'https-alt', 11211: 'memcached' };

  const regionNames = (() => { try { return new Intl.DisplayNames(['en'], { type: 'region' }); } catch { return null; } })();
  function countryName(cc) {
    if (!cc || cc === '-') return 'Unknown';
    try { const n = regionNames && regionNames.of(cc); if (n && n !== cc) return n; } catch { /* not a region code */ }
    return (S.geoNames && S.geoNames[cc]) || cc;
  }

  // Enrichment keys of addresses no source knows: "-" (the brief said "", accept both).
  const unknownKey = (v) => v === '' || v === '-';
  const IPV4 = /^(\d{1,3}\.){3}\d{1,3}$/;
  const IPV6 = /^[0-9a-f]{0,4}(:[0-9a-f]{0,4}){2,7}$|^[0-9a-f:]*:(\d{1,3}\.){3}\d{1,3}$/i;
  const isIP = (s) => typeof s === 'string' && (IPV4.test(s) || IPV6.test(s));

  // ---------------------------------------------------------------------------------------
  // State and URLs
  // ---------------------------------------------------------------------------------------
  const S = {
    session: null, health: null, gen: 0, ctrl: null, timer: null, page: null,
    charts: new Set(), world: null, geoNames: null, expPrev: new Map(), skew: 0,
  };
  const params = () => new URLSearchParams(location.search);
  const SHARED = ['filter', 'since', 'until', 'live'];
  /** The filter, range and live setting that carry across pages. */
  function shared(extra) {
    const p = params(), o = {};
    for (const k of SHARED) if (p.get(k)) o[k] = p.get(k);
    return Object.assign(o, extra);
  }
  function href(path, q) {
    const u = new URLSearchParams();
    for (const [k, v] of Object.entries(q || {})) if (v != null && v !== '') u.set(k, v);
    const s = u.toString();
    return s ? `${path}?${s}` : path;
  }
  /** The current URL with some parameters changed (null removes one). */
  function withParams(changes, path = location.pathname) {
    const p = params();
    for (const [k, v] of Object.entries(changes)) (v == null || v === '') ? p.delete(k) : p.set(k, v);
    const s = p.toString();
    return s ? `${path}?${s}` : path;
  }
  const safeDecode = (s) => { try { return decodeURIComponent(s); } catch { return s; } };
  const hostHref = (addr) => href('/host/' + addr, shared());

  // Time range: `since` (default 1h) and `until` (default now), as the API reads them.
  const PRESETS = ['15m', '1h', '6h', '24h', '7d'];
  const DUR = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
  function range() {
    const p = params();
    return { since: p.get('since') || '1h', until: p.get('until') || '' };
  }
  const isRelative = () => { const r = range(); return /^-?\d+[smhdw]$/.test(r.since) && (!r.until || r.until === 'now'); };
  function pointMs(s, now) {
    if (s === 'now') return now;
    const m = /^-?(\d+)([smhdw])$/.exec(s);
    if (m) return now - m[1] * DUR[m[2]] * 1000;
    if (/^\d+$/.test(s)) return s * 1000;
    const n = /^(\d{4})\/(\d\d)\/(\d\d)(?:\.(\d\d)(?::(\d\d)(?::(\d\d))?)?)?$/.exec(s);
    if (n) return Date.UTC(n[1], n[2] - 1, n[3], n[4] || 0, n[5] || 0, n[6] || 0);
    return Date.parse(s);
  }
  /** The server's clock (from the Date header when it differs from ours by over 5 s). */
  const serverNow = () => Date.now() + S.skew;
  /** The range as the API gets it: relative times resolved once per load (Unix seconds), so
   *  every panel of a page covers the same window and a page's URLs can be replayed. */
  function rangeQuery() {
    const r = range(), now = serverNow();
    const abs = (t) => (t === 'now' || /^-?\d+[smhdw]$/.test(t) ? String(Math.floor(pointMs(t, now) / 1000)) : t);
    return { since: abs(r.since), until: r.until ? abs(r.until) : String(Math.ceil(now / 1000)) };
  }
  /** Seconds covered by a resolved range (for average rates). */
  function rangeSeconds(rq = (S.page && S.page.rq) || rangeQuery()) {
    const now = serverNow();
    return Math.max(1, (pointMs(rq.until, now) - pointMs(rq.since, now)) / 1000);
  }
  const liveOn = () => params().get('live') !== '0' && isRelative();

  /** a AND b, parenthesising a side only when it holds an `or`. */
  function andF(a, b) {
    const wrap = (x) => (/\bor\b|\|\|/i.test(x) ? `(${x})` : x);
    return a && b ? `${wrap(a)} and ${wrap(b)}` : a || b || '';
  }
  /** A filter sent to the API: the user's (parenthesised) and the page's own term. */
  const scoped = (term) => { const f = params().get('filter'); return f ? `(${f}) and ${term}` : term; };

  // Filter terms for a dimension's value (docs/filters.md), for drill-down links.
  const TERM = {
    srcip: 'src host', dstip: 'dst host', ip: 'host', router: 'router ip', srcport: 'src port',
    dstport: 'dst port', port: 'port', srcas: 'src as', dstas: 'dst as', as: 'as', inif: 'in if',
    outif: 'out if', tos: 'tos', vlan: 'vlan', srcgeo: 'src geo', dstgeo: 'dst geo', geo: 'geo',
    srcasname: 'src as name', dstasname: 'dst as name', asname: 'as name', inifname: 'in if name',
    outifname: 'out if name', tenant: 'tenant', srctenant: 'src tenant', dsttenant: 'dst tenant',
    srccity: 'src city', dstcity: 'dst city', proto: 'proto',
  };
  const PROTO_TERM = { tcp: 'tcp', udp: 'udp', icmp: 'icmp', icmp6: 'icmp6', icmpv6: 'icmp6', 'ipv6-icmp': 'icmp6', gre: 'gre', esp: 'esp', ah: 'ah', sctp: 'sctp' };
  function term(dim, v) {
    const t = TERM[dim];
    if (!t || v == null || v === '' || (v === '-' && dim !== 'flags')) return null;
    if (dim === 'proto') {
      const p = PROTO_TERM[v.toLowerCase()] || (/^\d+$/.test(v) ? v : null);
      return p && `proto ${p}`;
    }
    if (/name$|tenant|city/.test(dim)) return `${t} "${v.replace(/"/g, '')}"`;
    if (/(^|[a-z])(as|port|if|tos|vlan)$/.test(dim)) {
      const m = /^(?:AS)?(\d+)/i.exec(v);
      return m ? `${t} ${m[1]}` : null;
    }
    if (/ip$|router/.test(dim)) return isIP(v) ? `${t} ${v}` : null;
    return `${t} ${v}`;
  }

  // ---------------------------------------------------------------------------------------
  // API
  // ---------------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, err, sentFilter) {
      super(err.message || `HTTP ${status}`);
      Object.assign(this, { status, code: err.code, parameter: err.parameter, position: err.position, sentFilter });
    }
  }
  async function api(path, q, opts = {}) {
    const url = href('/api/v1/' + path, q);
    const r = await fetch(url, {
      method: opts.method || 'GET', signal: opts.signal, credentials: 'same-origin',
      headers: opts.body ? { 'Content-Type': 'application/json', Accept: 'application/json' } : { Accept: 'application/json' },
      body: opts.body ? JSON.stringify(opts.body) : undefined,
    });
    const date = Date.parse(r.headers.get('date') || '');
    if (Number.isFinite(date)) { const d = date + 500 - Date.now(); S.skew = Math.abs(d) > 5000 ? d : 0; }
    let body = null;
    if (r.status !== 204) { try { body = await r.json(); } catch { body = null; } }
    if (!r.ok) {
      const err = (body && body.error) || { code: `http_${r.status}`, message: `${r.status} ${r.statusText}` };
      if (r.status === 401 && !opts.noLoginRedirect) toLogin();
      throw new ApiError(r.status, err, q && q.filter);
    }
    return body;
  }
  /** Page-scoped request: aborted when the page changes. */
  const get = (p, path, q) => api(path, Object.assign({}, p.rq, q), { signal: p.signal });
  /** Reloads page `p`'s data in place (live refresh): the relative range moves on. */
  const reload = (p) => { p.rq = rangeQuery(); return p.refresh(true); };

  // ---------------------------------------------------------------------------------------
  // Banner and filter errors
  // ---------------------------------------------------------------------------------------
  const banner = $('#banner'), ferr = $('#filter-error');
  function showBanner(msg) {
    const seen = [...banner.querySelectorAll('.msg')].map((e) => e.textContent);
    if (seen.includes(msg)) return;
    if (banner.hidden) banner.replaceChildren(h('button', { class: 'close', type: 'button', title: 'Dismiss', onclick: () => { banner.hidden = true; } }, '×'));
    banner.append(h('div', { class: 'msg' }, msg));
    banner.hidden = false;
  }
  function showFilterError(e) {
    const text = params().get('filter') || e.sentFilter || '';
    const chars = Array.from(text);
    let pos = e.position, msg = e.message;
    // Requests that scope the user's filter send `(FILTER) and TERM`: shift back by the `(`.
    if (pos != null && e.sentFilter && e.sentFilter !== text && e.sentFilter.startsWith(`(${text})`)) {
      pos -= 1;
      msg = msg.replace(/\bcolumn (\d+)/, (_, n) => `column ${n - 1}`);
    }
    ferr.replaceChildren(h('div', { class: 'msg' }, msg));
    if (pos != null && pos >= 0 && text) {
      pos = Math.min(pos, chars.length);
      ferr.append(h('pre', { class: 'caret', 'aria-hidden': 'true' },
        chars.slice(0, pos).join(''), h('mark', null, chars[pos] || ' '), chars.slice(pos + 1).join(''), '\n',
        ' '.repeat(pos) + '^'));
      ferr.dataset.position = pos;
      const inp = $('#filter-input');
      if (inp.value === text) { try { inp.setSelectionRange(pos, Math.min(pos + 1, text.length)); } catch { /* ignore */ } }
    }
    ferr.hidden = false;
  }
  function clearErrors() {
    banner.hidden = true; banner.replaceChildren();
    ferr.hidden = true; ferr.replaceChildren(); delete ferr.dataset.position;
  }
  /** Reports a failed request of page `p` (ignored once the page is gone). */
  function fail(p, e) {
    if (!p.current() || (e && e.name === 'AbortError')) return;
    if (e instanceof ApiError && (e.code === 'bad_filter' || e.parameter === 'filter')) showFilterError(e);
    else if (e instanceof ApiError && e.status === 401) return;
    else showBanner(e instanceof ApiError ? e.message : `Request failed: ${e.message}`);
  }
  /** Runs `promise`, then puts render(result) into `box`; a loading state first unless silent. */
  async function fill(p, box, promise, render, silent) {
    if (!silent) box.replaceChildren(loading());
    try {
      const d = await promise;
      if (!p.current()) return;
      box.replaceChildren(render(d));
    } catch (e) {
      if (!p.current() || e.name === 'AbortError') return;
      fail(p, e);
      if (!silent) box.replaceChildren(failed(e));
    }
  }
  /** The placeholder of a section whose request failed. */
  const failed = (e) => h('div', { class: 'empty error' }, e.code === 'bad_filter' ? 'Fix the filter above.' : 'Could not load: ' + e.message);

  // ---------------------------------------------------------------------------------------
  // Charts (ECharts)
  // ---------------------------------------------------------------------------------------
  const PALETTE = ['#2f6fbf', '#e0873a', '#3aa57a', '#c44e52', '#8064a2', '#3fb1c5', '#b8a230', '#d46fa9', '#6b8e23', '#8c6d4f'];
  function chart(el, option) {
    let c = echarts.getInstanceByDom(el);
    if (!c) { c = echarts.init(el, null, { renderer: 'canvas' }); S.charts.add(c); }
    c.setOption(option, true);
    return c;
  }
  function disposeCharts() { for (const c of S.charts) c.dispose(); S.charts.clear(); }
  window.addEventListener('resize', () => { for (const c of S.charts) c.resize(); });

  function seriesLabel(dim, key) {
    if (key === 'other') return 'Other';
    if (/geo$/.test(dim)) return unknownKey(key) ? 'Unknown' : `${key} ${countryName(key)}`;
    if (/port$/.test(dim) && SERVICES[key]) return `${key} ${SERVICES[key]}`;
    return key === '' ? '(none)' : key;
  }
  /** A stacked area chart of a /timeseries answer into `box` (an empty state when no traffic). */
  function seriesChart(box, res, silent) {
    const fmt = FMT[res.metric] || fmtCount;
    const note = box.parentElement && box.parentElement.querySelector('.note');
    if (note) {
      const b = res.bucket_s, w = b % 3600 === 0 ? `${b / 3600} h` : b % 60 === 0 ? `${b / 60} min` : `${b} s`;
      note.textContent = ['pps', 'bps'].includes(res.metric) ? `average per ${w}` : `${UNIT[res.metric]} per ${w}`;
    }
    const any = res.series.some((s) => s.values.some((v) => v > 0));
    let el = box.querySelector('.chart');
    if (!any) {
      if (el) { const c = echarts.getInstanceByDom(el); if (c) { S.charts.delete(c); c.dispose(); } }
      box.replaceChildren(empty('No flows in this range'));
      return;
    }
    if (!el) { el = h('div', { class: 'chart' }); box.replaceChildren(el); }
    const t = res.times_ns.map((ns) => Math.floor(ns / 1e6));
    const series = res.series
      .filter((s) => s.key !== 'other' || s.values.some((v) => v > 0))
      .map((s, i) => ({
        name: seriesLabel(res.dimension, s.key), type: 'line', stack: 'total', symbol: 'none', sampling: 'lttb',
        lineStyle: { width: 0 }, areaStyle: { opacity: 0.7 }, emphasis: { focus: 'series' },
        color: s.key === 'other' ? '#b8bec8' : PALETTE[i % PALETTE.length],
        data: s.values.map((v, j) => [t[j], v]),
      }));
    chart(el, {
      animation: !silent,
      textStyle: { fontFamily: 'inherit' },
      tooltip: { trigger: 'axis', valueFormatter: (v) => fmt(v), order: 'seriesDesc' },
      legend: { type: 'scroll', top: 0, left: 0, right: 0, icon: 'roundRect', itemWidth: 12, itemHeight: 8 },
      grid: { left: 8, right: 12, top: 30, bottom: 4, containLabel: true },
      xAxis: { type: 'time', axisLine: { lineStyle: { color: '#c4cad3' } } },
      yAxis: { type: 'value', axisLabel: { formatter: (v) => fmt(v) }, splitLine: { lineStyle: { color: '#eef0f3' } } },
      series,
    });
  }

  // ---------------------------------------------------------------------------------------
  // Ranked tables (the top-table testability contract)
  // ---------------------------------------------------------------------------------------
  const KEY_LABEL = {
    srcip: 'Source', dstip: 'Destination', ip: 'Address', srcport: 'Source port', dstport: 'Port', port: 'Port',
    proto: 'Protocol', srcas: 'Source AS', dstas: 'Destination AS', as: 'AS', inif: 'In interface', outif: 'Out interface',
    router: 'Exporter', tos: 'ToS', flags: 'Flags', vlan: 'VLAN', srcgeo: 'Source country', dstgeo: 'Destination country',
    geo: 'Country', srcasname: 'Source AS name', dstasname: 'Destination AS name', inifname: 'In interface', outifname: 'Out interface',
    tenant: 'Tenant',
  };
  const keyLabel = (d) => KEY_LABEL[d] || KEY_LABEL[d.replace(/[46]?\/\d+$/, '').replace(/[46]$/, '')] || d;

  /** A key cell's content: IPs link to the host view, countries to the geo drill-down. */
  function keyContent(dim, v) {
    if (isIP(v)) return h('a', { class: 'ip', href: hostHref(v) }, v);
    if (/^(src|dst)?geo$/.test(dim)) {
      if (unknownKey(v)) return h('span', { class: 'muted' }, 'Unknown');
      const side = dim.startsWith('dst') ? 'dst' : 'src';
      return h('a', { href: href('/geo', shared({ side, country: v })), title: v }, h('span', { class: 'cc' }, v), ' ', countryName(v));
    }
    if (v === '') return h('span', { class: 'muted' }, '(none)');
    if (/port$/.test(dim) && SERVICES[v]) return [v, ' ', h('span', { class: 'svc' }, SERVICES[v])];
    return v;
  }
  /** Ranked table of a /top answer. opts: {compact, drill} */
  function topTable(res, opts = {}) {
    const dims = res.dimension.split(',');
    const m = res.metric;
    const unit = m === 'pps' ? 'packets' : (m === 'bps' || m === 'bpp') ? 'bytes' : m;
    if (!res.rows.length) return empty(res.totals.flows ? 'No rows' : 'No flows in this range');
    const cols = opts.cols ? opts.cols : opts.compact ? [m] : ['flows', 'packets', 'bytes', 'bps'].concat(['pps', 'bpp'].includes(m) ? [m] : []);
    const bar = (pct) => h('td', { class: 'pct', title: `${pct.toFixed(3)} %` },
      h('div', { class: 'bar' }, (() => { const s = h('span'); s.style.width = `${Math.max(0, Math.min(100, pct))}%`; return s; })()),
      h('span', { class: 'pv' }, pct >= 10 ? pct.toFixed(0) + ' %' : pct.toFixed(1) + ' %'));
    const drillCell = (keys) => {
      if (!opts.drill) return null;
      const t = keys.map((k, i) => term(dims[i], k)).filter(Boolean);
      const links = [];
      if (t.length === keys.length) links.push(h('a', { href: href('/flows', shared({ filter: andF(params().get('filter'), t.join(' and ')) })), title: 'Flows of this row' }, 'flows'));
      if (dims.length === 1 && dims[0] === 'router' && isIP(keys[0])) {
        links.push(' ', h('a', { href: href('/top', shared({ dimension: 'inif', filter: andF(params().get('filter'), `router ip ${keys[0]}`) })) }, 'interfaces'));
      }
      return h('td', { class: 'drill' }, links);
    };
    const head = h('tr', null, h('th', { class: 'num rank' }, '#'), dims.map((d) => h('th', null, keyLabel(d))),
      cols.map((c) => h('th', { class: 'num' + (c === m ? ' sorted' : '') }, METRIC_LABEL[c])), h('th', { class: 'pct' }, '% of ' + unit),
      opts.drill ? h('th') : null);
    const body = res.rows.map((r, i) => h('tr', {
      'data-testid': 'top-row', 'data-key': r.key.join('|'), 'data-flows': r.flows, 'data-packets': r.packets, 'data-bytes': r.bytes,
    }, h('td', { class: 'num rank' }, i + 1), r.key.map((k, j) => h('td', { class: 'key' }, keyContent(dims[j], k))),
    cols.map((c) => num(r[c], c)), bar(r.percent), drillCell(r.key)));
    const o = res.other, tot = res.totals;
    const share = (c) => (tot[unit] ? (c[unit] / tot[unit]) * 100 : 0);
    const rate = (c, col) => (col === 'bps' || col === 'pps' || col === 'bpp' ? null : c[col]);
    const countRow = (cls, label, c, pct) => h('tr', { class: cls }, h('td'), h('td', { colspan: dims.length }, label),
      cols.map((col) => (rate(c, col) == null ? h('td', { class: 'num muted' }, '') : num(c[col], col))), pct == null ? h('td') : bar(pct), opts.drill ? h('td') : null);
    const foot = [];
    if (o && o.flows > 0) foot.push(countRow('other-row', 'Other', o, m === 'bpp' ? null : share(o)));
    if (!opts.compact) foot.push(countRow('total-row', 'Total', tot, null));
    return h('table', { class: 'data top', 'data-testid': 'top-table', 'data-dimension': res.dimension, 'data-metric': m },
      h('thead', null, head), h('tbody', null, body), foot.length ? h('tfoot', null, foot) : null);
  }
  const scanNote = (s) => s && h('div', { class: 'scan' }, `Read ${exact(s.files_read)} of ${exact(s.files_total)} files, ${exact(s.rows_read)} rows`);

  /** Headline numbers (flows, packets, bytes, average rate) from a /top answer's totals. */
  function headlines(tot, extra = []) {
    const item = (id, label, v, text, title) => h('div', { class: 'headline', 'data-testid': id && `headline-${id}`, 'data-value': id ? v : null, title },
      h('div', { class: 'hv' }, text), h('div', { class: 'hl' }, label));
    const secs = rangeSeconds();
    return h('div', { class: 'headlines' },
      item('flows', 'Flows', tot.flows, fmtCount(tot.flows), `${exact(tot.flows)} flows`),
      item('packets', 'Packets', tot.packets, fmtCount(tot.packets), `${exact(tot.packets)} packets`),
      item('bytes', 'Bytes', tot.bytes, fmtBytes(tot.bytes), `${exact(tot.bytes)} bytes`),
      item(null, 'Average rate', null, fmtBps((tot.bytes * 8) / secs), `${exact(Math.round((tot.bytes * 8) / secs))} bit/s over ${exact(Math.round(secs))} s`),
      extra);
  }
  /** A <select> that navigates to the URL with `name` changed. */
  function selectParam(name, value, options, label, testid, extra) {
    if (!options.some(([v]) => v === value)) options = options.concat([[value, value]]);
    const s = h('select', { 'data-testid': testid, 'aria-label': label, onchange: (e) => navigate(withParams(Object.assign({ [name]: e.target.value }, extra))) },
      options.map(([v, t]) => h('option', { value: v, selected: v === value }, t)));
    return h('label', { class: 'ctl' }, label, ' ', s);
  }

  // ---------------------------------------------------------------------------------------
  // Pages. Each gets `p` = {params, signal, main, current()} and may set p.refresh(silent)
  // for the live refresh; it returns once its first load has rendered.
  // ---------------------------------------------------------------------------------------

  // Overview ------------------------------------------------------------------------------
  const SPLITS = [['proto', 'Protocol'], ['dstport', 'Destination port'], ['router', 'Exporter'], ['dstas', 'Destination AS']];
  async function pageOverview(p) {
    const split = p.params.get('split') || 'proto', metric = p.params.get('metric') || 'bps';
    const head = h('div', null, loading()), series = h('div', { class: 'chart-box' }, loading());
    const t1 = h('div'), t2 = h('div'), t3 = h('div');
    const more = (dim) => h('a', { class: 'more', href: href('/top', shared({ dimension: dim })) }, 'more ›');
    p.main.append(h('h1', null, 'Overview'), head,
      card('Traffic over time', series, h('div', { class: 'ctls' }, h('span', { class: 'note' }),
        selectParam('split', split, SPLITS, 'Split by', 'split-select'),
        selectParam('metric', metric, [['bps', 'Bits/s'], ['pps', 'Packets/s'], ['flows', 'Flows']], 'Metric', 'metric-select'))),
      h('div', { class: 'grid3' },
        card(h('a', { href: href('/top', shared({ dimension: 'srcip' })) }, 'Top talkers'), t1, more('srcip')),
        card(h('a', { href: href('/top', shared({ dimension: 'dstip' })) }, 'Top listeners'), t2, more('dstip')),
        card(h('a', { href: href('/top', shared({ dimension: 'dstport' })) }, 'Top ports'), t3, more('dstport'))));
    const filter = p.params.get('filter') || null;
    p.refresh = (silent) => Promise.all([
      fill(p, t1, get(p, 'top', { dimension: 'srcip', metric: 'bytes', limit: 5, filter }), (r) => {
        head.replaceChildren(headlines(r.totals));
        return topTable(r, { compact: true });
      }, silent).then(() => { if (head.querySelector('.loading')) head.replaceChildren(); }),
      fill(p, t2, get(p, 'top', { dimension: 'dstip', metric: 'bytes', limit: 5, filter }), (r) => topTable(r, { compact: true }), silent),
      fill(p, t3, get(p, 'top', { dimension: 'dstport', metric: 'bytes', limit: 5, filter }), (r) => topTable(r, { compact: true }), silent),
      (async () => {
        try {
          const r = await get(p, 'timeseries', { dimension: split, metric, k: 8, filter });
          if (p.current()) seriesChart(series, r, silent);
        } catch (e) { fail(p, e); if (!silent && p.current()) series.replaceChildren(failed(e)); }
      })(),
    ]);
    await p.refresh(false);
  }

  // Top items -----------------------------------------------------------------------------
  const TOP_TABS = [
    ['Talkers', [['srcip', '']]], ['Listeners', [['dstip', '']]], ['Conversations', [['srcip,dstip', '']]],
    ['Ports', [['dstport', '']]], ['Protocols', [['proto', '']]], ['ASes', [['srcas', 'source'], ['dstas', 'destination']]],
    ['Countries', [['srcgeo', 'source'], ['dstgeo', 'destination']]], ['Exporters', [['router', '']]],
    ['Interfaces', [['inif', 'in'], ['outif', 'out']]],
  ];
  const MORE_DIMS = ['srcport', 'port', 'ip', 'as', 'tos', 'flags', 'vlan', 'srcasname', 'dstasname', 'inifname', 'outifname', 'tenant'];
  const METRICS = [['bytes', 'Bytes'], ['packets', 'Packets'], ['flows', 'Flows'], ['bps', 'Bits/s'], ['pps', 'Packets/s'], ['bpp', 'Bytes/packet']];
  async function pageTop(p) {
    const dim = p.params.get('dimension') || 'srcip', metric = p.params.get('metric') || 'bytes';
    const limit = p.params.get('limit') || '25';
    const tabHref = (d) => withParams({ dimension: d });
    const tab = (d, label) => h('a', { class: 'tab' + (d === dim ? ' active' : ''), href: tabHref(d), 'data-testid': 'dim-tab', 'data-dimension': d, 'aria-current': d === dim ? 'page' : null }, label);
    const tabs = h('nav', { class: 'tabs', 'aria-label': 'Dimension' }, TOP_TABS.map(([label, ds]) => ds.length === 1 ? tab(ds[0][0], label)
      : h('span', { class: 'tabgroup' + (ds.some(([d]) => d === dim) ? ' active' : '') }, h('span', { class: 'tg' }, label), ds.map(([d, l]) => tab(d, l)))));
    const known = TOP_TABS.flatMap(([, ds]) => ds.map(([d]) => d));
    const moreDims = MORE_DIMS.includes(dim) || known.includes(dim) ? MORE_DIMS : MORE_DIMS.concat([dim]);
    const moreSel = h('select', { class: 'more-dims', 'aria-label': 'Other dimension', 'data-testid': 'dimension-select', onchange: (e) => e.target.value && navigate(tabHref(e.target.value)) },
      h('option', { value: '' }, 'other…'), moreDims.map((d) => h('option', { value: d, selected: d === dim }, `${keyLabel(d)} (${d})`)));
    const box = h('div', null, loading()), scan = h('div');
    const title = known.includes(dim) ? TOP_TABS.find(([, ds]) => ds.some(([d]) => d === dim))[0] : keyLabel(dim);
    p.main.append(h('h1', null, 'Top items', h('span', { class: 'sub' }, ` · ${title}`)),
      h('div', { class: 'bar-row' }, tabs, h('div', { class: 'ctls' }, moreSel,
        selectParam('metric', metric, METRICS, 'Rank by', 'metric-select'),
        selectParam('limit', limit, [['10', '10'], ['25', '25'], ['50', '50'], ['100', '100'], ['250', '250']], 'Rows', 'limit-select'))),
      h('section', { class: 'card' }, box, scan));
    p.refresh = (silent) => fill(p, box, get(p, 'top', { dimension: dim, metric, limit, filter: p.params.get('filter') || null }), (r) => {
      scan.replaceChildren(scanNote(r.scan) || '');
      return topTable(r, { drill: true });
    }, silent);
    await p.refresh(false);
  }

  // Geo map -------------------------------------------------------------------------------
  // world-atlas rings that cross the antimeridian jump between -180 and 180 (spherical
  // stitching); a planar map would draw them as lines across the world: unwrap them.
  function unwrapRings(geo) {
    for (const f of geo.features) {
      const g = f.geometry;
      if (!g) continue;
      for (const poly of g.type === 'MultiPolygon' ? g.coordinates : [g.coordinates]) {
        for (const ring of poly) {
          for (let i = 1; i < ring.length; i++) {
            const d = ring[i][0] - ring[i - 1][0];
            if (Math.abs(d) > 180) ring[i] = [ring[i][0] - 360 * Math.sign(d), ring[i][1]];
          }
        }
      }
    }
    return geo;
  }
  function loadWorld() {
    if (!S.world) {
      S.world = fetch('/assets/vendor/world/world.geo.json', { credentials: 'same-origin' })
        .then((r) => { if (!r.ok) throw new Error(`world map: HTTP ${r.status}`); return r.json(); })
        .then((geo) => {
          S.geoNames = {};
          for (const f of geo.features) if (f.properties.iso2) S.geoNames[f.properties.iso2] = f.properties.name;
          echarts.registerMap('world', unwrapRings(geo));
          return geo;
        })
        .catch((e) => { S.world = null; throw e; });
    }
    return S.world;
  }
  async function pageGeo(p) {
    const side = p.params.get('side') === 'dst' ? 'dst' : 'src';
    const country = (p.params.get('country') || '').toUpperCase();
    const metric = p.params.get('metric') || 'bytes';
    const sideTabs = h('div', { class: 'tabs' }, [['src', 'Source countries'], ['dst', 'Destination countries']].map(([s, l]) =>
      h('a', { class: 'tab' + (s === side ? ' active' : ''), href: withParams({ side: s, country: null }), 'data-testid': 'side-tab', 'data-side': s, 'aria-current': s === side ? 'page' : null }, l)));
    p.main.append(h('h1', null, 'Geo map', country ? h('span', { class: 'sub' }, ` · ${countryName(country)} (${country})`) : null));
    if (S.health && S.health.enrichment !== 'on') {
      p.main.append(h('div', { class: 'notice', 'data-testid': 'geo-off' },
        h('strong', null, 'GeoIP enrichment is off.'), ' Countries are looked up when flows arrive, from GeoIP databases listed under ',
        h('code', null, '[enrich] geoip = [...]'), ' in flowsight.toml. Fetch free databases with ', h('code', null, 'scripts/fetch-geo-data geo-data'),
        ', add the printed [enrich] section and restart serve; see docs/enrichment.md. Flows received before then have no country.'));
      return;
    }
    const dimension = `${side}geo`;
    if (country) {
      // Drill-down: the hosts within the country, and their peers.
      const f = scoped(`${side} geo ${country}`);
      const [inDim, peerDim] = side === 'src' ? ['srcip', 'dstip'] : ['dstip', 'srcip'];
      const head = h('div'), a = h('div', null, loading()), b = h('div', null, loading());
      const nm = countryName(country);
      p.main.append(h('div', { class: 'bar-row' }, sideTabs, h('div', { class: 'ctls' },
        h('a', { href: withParams({ country: null }) }, '‹ all countries'), ' ',
        h('a', { href: href('/flows', shared({ filter: andF(p.params.get('filter'), `${side} geo ${country}`) })) }, 'flows ›'))),
      head, h('div', { class: 'grid2' },
        card(side === 'src' ? `Talkers in ${nm}` : `Listeners in ${nm}`, a),
        card(side === 'src' ? `Their destinations` : `Their sources`, b)));
      const cols = metric === 'flows' ? ['flows', 'bytes'] : ['flows', metric];
      p.refresh = (silent) => Promise.all([
        fill(p, a, get(p, 'top', { dimension: inDim, metric, limit: 25, filter: f }), (r) => { head.replaceChildren(headlines(r.totals)); return topTable(r, { drill: true, cols }); }, silent),
        fill(p, b, get(p, 'top', { dimension: peerDim, metric, limit: 25, filter: f }), (r) => topTable(r, { drill: true, cols }), silent),
      ]);
      await p.refresh(false);
      return;
    }
    const mapEl = h('div', { class: 'map', 'data-testid': 'geo-map' }), list = h('div', { class: 'scroll' }, loading());
    p.main.append(h('div', { class: 'bar-row' }, sideTabs, h('div', { class: 'ctls' },
      selectParam('metric', metric, METRICS.filter(([m]) => m !== 'bpp'), 'Shade by', 'metric-select'))),
    h('div', { class: 'geo' }, h('section', { class: 'card map-card' }, mapEl), card('Countries', list)));
    p.refresh = async (silent) => {
      try {
        const [, r] = await Promise.all([loadWorld(), get(p, 'top', { dimension, metric, limit: 300, filter: p.params.get('filter') || null })]);
        if (!p.current()) return;
        list.replaceChildren(topTable(r, { cols: metric === 'flows' ? ['flows', 'bytes'] : ['flows', metric] }));
        // Shaded on a log scale: one big country would otherwise wash out all the others.
        const data = r.rows.filter((x) => !unknownKey(x.key[0])).map((x) => ({ name: x.key[0], value: Math.log10(1 + x[metric]), raw: x[metric] }));
        const max = Math.max(1, ...data.map((d) => d.value));
        const fmt = FMT[metric];
        const c = chart(mapEl, {
          animation: !silent,
          tooltip: { trigger: 'item', formatter: (q) => `${esc(countryName(q.name))} (${esc(q.name || '?')})<br>${q.data ? esc(fmt(q.data.raw)) : 'no traffic'}` },
          visualMap: { type: 'continuous', min: 0, max, left: 8, bottom: 8, calculable: true, text: ['high', 'low'], formatter: (v) => fmt(Math.round(10 ** v - 1)),
            inRange: { color: ['#dbe9f7', '#8fb8e3', '#3f7fc6', '#1d4f8c', '#0c2d57'] } },
          series: [{ type: 'map', map: 'world', nameProperty: 'iso2', roam: true, zoom: 1.15, data, selectedMode: false,
            itemStyle: { areaColor: '#f1f3f6', borderColor: '#b9c0ca', borderWidth: 0.5 },
            emphasis: { label: { show: false }, itemStyle: { areaColor: '#f2b84b' } } }],
        });
        c.off('click');
        c.on('click', (q) => { if (q.name && data.some((d) => d.name === q.name)) navigate(withParams({ country: q.name })); });
        if (!data.length && !silent) mapEl.append(h('div', { class: 'overlay' }, r.totals.flows ? 'No flow has a known country in this range' : 'No flows in this range'));
      } catch (e) {
        fail(p, e);
        if (!silent && p.current()) list.replaceChildren(failed(e));
      }
    };
    await p.refresh(false);
  }

  // Flow explorer -------------------------------------------------------------------------
  const FLOW_COLUMNS = 'time_flow_start_ns,time_flow_end_ns,src_addr,src_port,dst_addr,dst_port,proto,bytes,packets,sampler_address,in_if,out_if,tcp_flags,src_country,dst_country';
  const SORTS = {
    start: (f) => f.time_flow_start_ns, end: (f) => f.time_flow_end_ns, src: (f) => f.src_addr, dst: (f) => f.dst_addr,
    proto: (f) => f.proto, bytes: (f) => f.bytes, packets: (f) => f.packets, exporter: (f) => f.sampler_address,
    ifs: (f) => f.in_if, flags: (f) => f.tcp_flags,
  };
  async function pageFlows(p) {
    const limit = p.params.get('limit') || '100';
    const cursor = p.params.get('cursor') || null;
    const prev = p.params.get('prev') ? p.params.get('prev').split(',') : [];
    const filter = p.params.get('filter') || null;
    const box = h('div', null, loading()), summary = h('div', { class: 'summary' }), pager = h('div', { class: 'pager' }), pagerTop = h('span', { class: 'pager-top' });
    const exp = (format) => href('/api/v1/flows', Object.assign({}, p.rq, { filter, format, limit: 1000000 }));
    p.main.append(h('h1', null, 'Flow explorer'),
      h('div', { class: 'bar-row' }, summary, h('div', { class: 'ctls' }, pagerTop,
        selectParam('limit', limit, [['50', '50'], ['100', '100'], ['500', '500'], ['1000', '1000']], 'Per page', 'limit-select', { cursor: null, prev: null }),
        h('a', { class: 'btn', href: exp('csv'), download: 'flows.csv', 'data-testid': 'export-csv' }, 'Export CSV'),
        h('a', { class: 'btn', href: exp('ndjson'), download: 'flows.ndjson', 'data-testid': 'export-ndjson' }, 'Export NDJSON'))),
      h('section', { class: 'card' }, box, pager));
    let res;
    try {
      res = await get(p, 'flows', { limit, cursor, filter, columns: FLOW_COLUMNS });
    } catch (e) {
      fail(p, e);
      if (p.current()) box.replaceChildren(failed(e));
      return;
    }
    if (!p.current()) return;
    const m = res.matched;
    summary.replaceChildren(h('span', { 'data-testid': 'flows-matched', 'data-value': m.flows }, `${exact(m.flows)} flows matched`),
      ` · ${fmtCount(m.packets)} packets · ${fmtBytes(m.bytes)}`, prev.length || cursor ? ` · page ${prev.length + 1}` : '');
    const draw = () => box.replaceChildren(flowTable(res.flows, draw));
    draw();
    const prevHref = prev.length ? withParams({ cursor: prev[prev.length - 1] === '-' ? null : prev[prev.length - 1], prev: prev.slice(0, -1).join(',') || null }) : null;
    const nextHref = res.next_cursor ? withParams({ cursor: res.next_cursor, prev: prev.concat([cursor || '-']).join(',') }) : null;
    const links = (tid) => [
      prevHref ? h('a', { class: 'btn', href: prevHref, 'data-testid': tid && 'prev-page' }, '‹ Previous') : h('span', { class: 'btn disabled' }, '‹ Previous'),
      nextHref ? h('a', { class: 'btn', href: nextHref, 'data-testid': tid && 'next-page' }, 'Next ›') : h('span', { class: 'btn disabled' }, 'Next ›')];
    pager.replaceChildren(...links(true), scanNote(res.scan) || '');
    if (prevHref || nextHref) pagerTop.replaceChildren(...links(false));
  }
  function flowTable(flows, redraw) {
    if (!flows.length) return empty('No flows in this range');
    const sort = params().get('sort') || '';
    const key = sort.replace(/^-/, ''), desc = sort.startsWith('-');
    const rows = flows.slice();
    if (SORTS[key]) {
      const f = SORTS[key];
      rows.sort((a, b) => { const x = f(a), y = f(b); return (x < y ? -1 : x > y ? 1 : 0) * (desc ? -1 : 1); });
    }
    const geo = flows.some((f) => f.src_country || f.dst_country);
    const th = (k, label, cls) => {
      const next = key === k ? (desc ? '' : '-' + k) : k;
      return h('th', { class: (cls || '') + ' sortable' + (key === k ? ' sorted' : ''), 'data-sort': k, title: 'Sort (within this page)', 'aria-sort': key === k ? (desc ? 'descending' : 'ascending') : null,
        onclick: () => { history.replaceState(null, '', withParams({ sort: next || null })); redraw(); } },
      label, key === k ? (desc ? ' ▼' : ' ▲') : '');
    };
    const ep = (addr, port) => h('td', { class: 'ep' }, isIP(addr) ? h('a', { class: 'ip', href: hostHref(addr) }, addr.includes(':') ? `[${addr}]` : addr) : addr || '', port != null ? h('span', { class: 'port' }, ':' + port) : null);
    const ms = (ns) => Math.floor(ns / 1e6);
    const tm = (ns, withDate) => h('td', { class: 'time', title: new Date(ms(ns)).toISOString() }, fmtTime(ms(ns), withDate));
    return h('div', null, h('table', { class: 'data flows', 'data-testid': 'flow-table' },
      h('thead', null, h('tr', null, th('start', 'Start'), th('end', 'End'), th('src', 'Source'), th('dst', 'Destination'), th('proto', 'Proto'),
        th('bytes', 'Bytes', 'num'), th('packets', 'Packets', 'num'), th('exporter', 'Exporter'), th('ifs', 'In → out'), th('flags', 'TCP flags'),
        geo ? h('th', null, 'Countries') : null)),
      h('tbody', null, rows.map((f) => h('tr', { 'data-testid': 'flow-row' }, tm(f.time_flow_start_ns, true), tm(f.time_flow_end_ns, false),
        ep(f.src_addr, f.src_port), ep(f.dst_addr, f.dst_port), h('td', null, f.proto),
        num(f.bytes, 'bytes'), num(f.packets, 'packets'),
        h('td', null, isIP(f.sampler_address) ? h('a', { class: 'ip', href: hostHref(f.sampler_address) }, f.sampler_address) : f.sampler_address || ''),
        h('td', { class: 'num' }, `${f.in_if ?? ''} → ${f.out_if ?? ''}`),
        h('td', { class: 'mono' }, f.proto === 'TCP' || f.proto === 6 ? fmtFlags(f.tcp_flags || 0) : ''),
        geo ? h('td', null, `${f.src_country || '?'} → ${f.dst_country || '?'}`) : null)))),
    sort ? h('div', { class: 'scan' }, 'Sorted within this page; pages follow start time.') : null);
  }

  // Host view -----------------------------------------------------------------------------
  async function pageHost(p, addr) {
    addr = safeDecode(addr);
    const hostTerm = `host ${addr}`;
    const head = h('div', null, loading()), series = h('div', { class: 'chart-box' }, loading());
    const out = h('div'), inn = h('div'), ports = h('div'), cOut = h('div'), cIn = h('div');
    const geoOn = S.health && S.health.enrichment === 'on';
    p.main.append(h('h1', { 'data-testid': 'host-title', 'data-address': addr }, 'Host ', h('span', { class: 'mono' }, addr)),
      h('div', { class: 'bar-row' }, h('div', { class: 'muted' }, 'Filter ', h('code', null, scoped(hostTerm))),
        h('div', { class: 'ctls' }, h('a', { class: 'btn', href: href('/flows', shared({ filter: andF(p.params.get('filter'), hostTerm) })), 'data-testid': 'host-flows' }, 'Flows of this host ›'))),
      head, card('Traffic over time', series, h('span', { class: 'note' })),
      h('div', { class: 'grid3' }, card('Peers it sends to (as source)', out), card('Peers it hears from (as destination)', inn), card('Destination ports', ports)),
      geoOn ? h('div', { class: 'grid2' }, card('Countries it sends to', cOut), card('Countries it hears from', cIn)) : null);
    const t = (box, dim, f, silent, withHead) => fill(p, box, get(p, 'top', { dimension: dim, metric: 'bytes', limit: 10, filter: scoped(f) }), (r) => {
      if (withHead) head.replaceChildren(headlines(r.totals));
      return topTable(r, { compact: true, drill: true });
    }, silent);
    p.refresh = (silent) => Promise.all([
      t(ports, 'dstport', hostTerm, silent, true).then(() => { if (head.querySelector('.loading')) head.replaceChildren(); }),
      t(out, 'dstip', `src host ${addr}`, silent), t(inn, 'srcip', `dst host ${addr}`, silent),
      geoOn ? t(cOut, 'dstgeo', `src host ${addr}`, silent) : null, geoOn ? t(cIn, 'srcgeo', `dst host ${addr}`, silent) : null,
      (async () => {
        try {
          const r = await get(p, 'timeseries', { dimension: 'proto', metric: 'bps', k: 6, filter: scoped(hostTerm) });
          if (p.current()) seriesChart(series, r, silent);
        } catch (e) { fail(p, e); if (!silent && p.current()) series.replaceChildren(failed(e)); }
      })(),
    ]);
    await p.refresh(false);
  }

  // Exporters -----------------------------------------------------------------------------
  const EXP_KNOWN = ['address', 'format', 'packets', 'flows', 'decode_errors', 'sequence_lost', 'sequence_resets', 'templates', 'sampling_rate', 'last_seen_ns'];
  const humanKey = (k) => k.replace(/_ns$/, '').replace(/_/g, ' ');
  async function pageExporters(p) {
    const box = h('div', { class: 'exporters' }, loading());
    p.main.append(h('h1', null, 'Exporters', h('span', { class: 'sub' }, ' · counters since the collector started; traffic in the selected range')), box);
    p.refresh = async (silent) => {
      let list;
      // Traffic per exporter in the range, from the store (optional: the cards show without it).
      const traffic = get(p, 'top', { dimension: 'router', metric: 'bytes', limit: 1000, filter: p.params.get('filter') || null })
        .catch((e) => { fail(p, e); return null; });
      try { list = await api('exporters', null, { signal: p.signal }); } catch (e) { fail(p, e); if (!silent && p.current()) box.replaceChildren(failed(e)); return; }
      const top = await traffic;
      if (!p.current()) return;
      const inRange = new Map(top ? top.rows.map((r) => [r.key[0], r]) : []);
      const now = Date.now();
      if (!list.length) {
        box.replaceChildren(empty(S.health && S.health.collector === 'off'
          ? 'The collector is off: this server only answers queries (serve was started without listeners).'
          : 'No exporter has sent anything since the collector started.'));
        return;
      }
      box.replaceChildren(...list.map((e) => exporterCard(e, now, top && (inRange.get(e.address) || { flows: 0, bytes: 0, percent: 0 }))));
      for (const e of list) S.expPrev.set(e.address, { t: now, flows: e.flows, packets: e.packets });
    };
    await p.refresh(false);
    // Rates need two samples: take the second one soon rather than at the next live tick.
    setTimeout(() => { if (p.current()) reload(p); }, 3000);
  }
  function exporterCard(e, now, tr) {
    const prev = S.expPrev.get(e.address);
    const dt = prev ? (now - prev.t) / 1000 : 0;
    const rate = (k) => (prev && dt > 0.5 && typeof e[k] === 'number' ? Math.max(0, (e[k] - prev[k]) / dt) : null);
    const fr = rate('flows'), pr = rate('packets');
    const seenMs = e.last_seen_ns ? Math.floor(e.last_seen_ns / 1e6) : 0;
    const age = seenMs ? (now - seenMs) / 1000 : Infinity;
    const state = age < 60 ? 'active' : 'stale';
    const warn = (e.decode_errors > 0) || (e.sequence_lost > 0);
    const stat = (label, value, title, cls) => h('div', { class: 'stat' + (cls ? ' ' + cls : ''), title }, h('div', { class: 'sv' }, value), h('div', { class: 'sl' }, label));
    const lossPct = e.flows ? (e.sequence_lost / (e.flows + e.sequence_lost)) * 100 : 0;
    const fHref = (dim) => href('/top', shared({ dimension: dim, filter: andF(params().get('filter'), `router ip ${e.address}`) }));
    const extra = Object.entries(e).filter(([k]) => !EXP_KNOWN.includes(k));
    return h('article', { class: `exporter ${state}${warn ? ' warn' : ''}`, 'data-testid': 'exporter', 'data-address': e.address },
      h('header', null, h('span', { class: 'dot', title: state === 'active' ? 'Sent within the last minute' : 'Silent for over a minute' }),
        h('a', { class: 'addr', href: fHref('inif'), title: 'Top input interfaces of this exporter' }, e.address),
        e.format ? h('span', { class: 'tag' }, e.format) : null,
        h('span', { class: 'seen', title: seenMs ? new Date(seenMs).toISOString() : '' }, seenMs ? `last seen ${relTime(seenMs)}` : 'never seen')),
      h('div', { class: 'stats' },
        stat('flows/s', fr == null ? '…' : fmtCount(Math.round(fr)), fr == null ? 'Measured between two refreshes' : `${fr.toFixed(1)} flows/s`),
        stat('datagrams/s', pr == null ? '…' : fmtCount(Math.round(pr)), pr == null ? 'Measured between two refreshes' : `${pr.toFixed(1)} datagrams/s`),
        stat('flows', fmtCount(e.flows || 0), `${exact(e.flows || 0)} flow records decoded`),
        stat('datagrams', fmtCount(e.packets || 0), `${exact(e.packets || 0)} datagrams received`),
        stat('decode errors', exact(e.decode_errors || 0), 'Datagrams that failed to decode', e.decode_errors ? 'bad' : ''),
        stat('sequence loss', exact(e.sequence_lost || 0), `${lossPct.toFixed(3)} % estimated lost; ${exact(e.sequence_resets || 0)} sequence resets`, e.sequence_lost ? 'bad' : ''),
        stat('templates', exact(e.templates || 0), 'Templates held'),
        stat('sampling', e.sampling_rate > 1 ? `1:${exact(e.sampling_rate)}` : 'none', e.sampling_rate > 1 ? `1 in ${e.sampling_rate} packets` : 'Unsampled or unknown'),
        tr ? [stat('flows in range', fmtCount(tr.flows), `${exact(tr.flows)} flows stored for the selected range`),
          stat('bytes in range', fmtBytes(tr.bytes), `${exact(tr.bytes)} bytes`),
          stat('average rate', fmtBps((tr.bytes * 8) / rangeSeconds()), 'Over the selected range'),
          stat('share of bytes', `${tr.percent.toFixed(1)} %`, 'Of all exporters in the range')] : null),
      extra.length ? h('dl', { class: 'extra' }, extra.map(([k, v]) => [h('dt', null, humanKey(k)), h('dd', null, typeof v === 'number' ? exact(v) : typeof v === 'object' ? JSON.stringify(v) : String(v))])) : null,
      h('footer', null, h('a', { href: fHref('inif') }, 'In interfaces ›'), h('a', { href: fHref('outif') }, 'Out interfaces ›'),
        h('a', { href: href('/flows', shared({ filter: andF(params().get('filter'), `router ip ${e.address}`) })) }, 'Flows ›')));
  }

  // Login ---------------------------------------------------------------------------------
  async function pageLogin(p) {
    // Only a path of this site: `//host` or `/\\host` would leave it.
    const wanted = p.params.get('next') || '/';
    const next = /^\/(?![\/\\])/.test(wanted) ? wanted : '/';
    const s = S.session;
    if (s && !(s.auth_required && s.via === 'none')) { navigate(next, true); return; }
    if (s && !s.login_available) {
      p.main.append(h('div', { class: 'login' }, h('h1', null, 'Sign-in needed'),
        h('p', null, 'This server requires an API token and has no portal users. Add a [[users]] entry to flowsight.toml (', h('code', null, 'flowsight user add NAME'), ') and restart serve.')));
      return;
    }
    const msg = h('div', { class: 'login-error', role: 'alert', hidden: true });
    const user = h('input', { name: 'username', autocomplete: 'username', required: true, autofocus: true });
    const pass = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
    const btn = h('button', { type: 'submit' }, 'Sign in');
    const form = h('form', { class: 'login', 'data-testid': 'login-form' }, h('h1', null, 'Sign in to flowsight'),
      h('label', null, 'User', user), h('label', null, 'Password', pass), msg, btn);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      btn.disabled = true; msg.hidden = true;
      try {
        await api('login', null, { method: 'POST', body: { username: user.value, password: pass.value }, noLoginRedirect: true });
        await boot(next);
      } catch (e) {
        msg.textContent = e.status === 401 ? 'Unknown user or wrong password.' : e.status === 429 ? 'Too many failed logins for this name: wait a minute and try again.' : e.message;
        msg.hidden = false; pass.select();
      } finally { btn.disabled = false; }
    });
    p.main.append(form);
    user.focus();
  }

  async function pageNotFound(p) {
    p.main.append(h('div', { class: 'empty' }, 'No such page. ', h('a', { href: '/' }, 'Go to the overview')));
  }

  // ---------------------------------------------------------------------------------------
  // Chrome: nav, toolbar, status, user
  // ---------------------------------------------------------------------------------------
  const ROUTES = [
    [/^\/$/, 'overview', pageOverview, 'Overview'], [/^\/top\/?$/, 'top', pageTop, 'Top items'], [/^\/geo\/?$/, 'geo', pageGeo, 'Geo map'],
    [/^\/flows\/?$/, 'flows', pageFlows, 'Flow explorer'], [/^\/host\/(.+)$/, 'host', pageHost, 'Host'],
    [/^\/exporters\/?$/, 'exporters', pageExporters, 'Exporters'], [/^\/login\/?$/, 'login', pageLogin, 'Sign in'],
  ];
  function syncChrome(name) {
    const bare = name === 'login' || name === 'notfound';
    $('#nav').hidden = name === 'login';
    for (const a of document.querySelectorAll('#nav a')) {
      const pg = a.dataset.page;
      a.href = href(pg === 'overview' ? '/' : '/' + pg, shared());
      a.classList.toggle('active', pg === name);
      if (pg === name) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    }
    $('#toolbar').hidden = bare;
    if (bare) return;
    const p = params(), f = p.get('filter') || '';
    $('#filter-input').value = f;
    const clear = $('#filter-clear');
    clear.hidden = !f;
    clear.href = withParams({ filter: null, cursor: null, prev: null });
    const r = range(), custom = !PRESETS.includes(r.since) || !!r.until;
    const rangeHref = (s) => withParams({ since: s === '1h' ? null : s, until: null, cursor: null, prev: null });
    $('#ranges').replaceChildren(...PRESETS.map((s) => h('a', { href: rangeHref(s), class: 'seg' + (!custom && r.since === s ? ' active' : ''), 'data-range': s }, s)),
      h('button', { type: 'button', class: 'seg' + (custom ? ' active' : ''), 'data-range': 'custom', onclick: () => { const cf = $('#custom-range'); cf.hidden = !cf.hidden; } }, 'Custom'));
    const cf = $('#custom-range');
    cf.hidden = !custom;
    const now = Date.now();
    const local = (ms) => { if (!Number.isFinite(ms)) return ''; const d = new Date(ms); return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`; };
    cf.elements.since.value = local(pointMs(r.since, now));
    cf.elements.until.value = r.until ? local(pointMs(r.until, now)) : '';
    const live = $('#live');
    live.checked = liveOn();
    live.disabled = !isRelative();
    $('#live-label').hidden = name === 'flows' || name === 'notfound';
  }
  function renderStatus() {
    const st = $('#status'), hl = S.health;
    st.replaceChildren();
    if (hl) {
      const pill = (label, on, title) => h('span', { class: 'pill ' + (on ? 'on' : 'off'), title }, label);
      st.append(pill(`collector ${hl.collector}`, hl.collector === 'on', hl.collector === 'on' ? 'Receiving flows' : 'Query-only server'),
        pill(`enrichment ${hl.enrichment}`, hl.enrichment === 'on', (hl.enrichment_sources || []).join('\n') || 'No GeoIP/ASN sources configured (docs/enrichment.md)'),
        h('span', { class: 'version', title: `status: ${hl.status}` }, 'v' + hl.version));
    }
    const u = $('#user'), s = S.session;
    u.replaceChildren();
    if (s && s.via === 'session') {
      u.append(h('span', { class: 'who', 'data-testid': 'user' }, s.user || ''), h('button', { type: 'button', class: 'link', 'data-testid': 'logout', onclick: logout }, 'Log out'));
    }
  }
  async function logout() {
    try { await api('logout', null, { method: 'POST', noLoginRedirect: true }); } catch (e) { showBanner(e.message); }
    S.session = null;
    await boot('/login');
  }

  // Toolbar listeners (static elements of index.html).
  $('#filter-form').addEventListener('submit', (e) => {
    e.preventDefault();
    navigate(withParams({ filter: $('#filter-input').value.trim() || null, cursor: null, prev: null, sort: null }));
  });
  $('#custom-range').addEventListener('submit', (e) => {
    e.preventDefault();
    const f = e.target.elements;
    const iso = (v) => (v ? new Date(v).toISOString().replace(/\.\d{3}Z$/, 'Z') : null);
    navigate(withParams({ since: iso(f.since.value), until: iso(f.until.value), cursor: null, prev: null }));
  });
  $('#live').addEventListener('change', (e) => {
    history.replaceState(null, '', withParams({ live: e.target.checked ? null : '0' }));
    syncChrome(S.page && S.page.name);
    startLive();
  });
  $('#reload').addEventListener('click', () => render());
  document.addEventListener('keydown', (e) => {
    if (e.key === '/' && !/^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName)) { e.preventDefault(); $('#filter-input').focus(); }
  });

  // ---------------------------------------------------------------------------------------
  // Router
  // ---------------------------------------------------------------------------------------
  const main = $('#main');
  function navigate(url, replace = false) {
    if (replace || url === location.pathname + location.search) history.replaceState(null, '', url); else history.pushState(null, '', url);
    render();
  }
  function toLogin() {
    if (location.pathname === '/login') return;
    S.session = Object.assign({}, S.session || { auth_required: true, login_available: true }, { via: 'none' });
    navigate(href('/login', { next: location.pathname + location.search }), true);
  }
  // Internal links: pushState instead of a page load (modified clicks open tabs as usual).
  document.addEventListener('click', (e) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    const a = e.target.closest && e.target.closest('a[href]');
    if (!a || (a.target && a.target !== '_self') || a.hasAttribute('download')) return;
    const u = new URL(a.href, location.href);
    if (u.origin !== location.origin || /^\/(api|assets|metrics)(\/|$)/.test(u.pathname)) return;
    e.preventDefault();
    navigate(u.pathname + u.search);
  });
  window.addEventListener('popstate', () => render());

  function startLive() {
    clearInterval(S.timer);
    S.timer = null;
    const p = S.page;
    if (!p || !p.refresh || !liveOn() || p.name === 'flows') return;
    let busy = false;
    S.timer = setInterval(async () => {
      if (busy || document.hidden || !p.current()) return;
      busy = true;
      try { await reload(p); } finally { busy = false; }
    }, 10000);
  }

  async function render() {
    const gen = ++S.gen;
    if (S.ctrl) S.ctrl.abort();
    S.ctrl = new AbortController();
    clearInterval(S.timer);
    disposeCharts();
    clearErrors();
    if (S.bootError) showBanner(S.bootError);
    main.dataset.ready = '0';
    main.replaceChildren();
    const path = location.pathname;
    let route = ROUTES.find(([re]) => re.test(path));
    const s = S.session;
    if (s && s.auth_required && s.via === 'none' && (!route || route[1] !== 'login')) {
      navigate(href('/login', { next: path + location.search }), true);
      return;
    }
    if (!route) route = [null, 'notfound', pageNotFound, 'Not found'];
    const [re, name, fn, title] = route;
    const arg = re ? re.exec(path)[1] : undefined;
    const p = { name, gen, params: params(), signal: S.ctrl.signal, main, current: () => gen === S.gen, rq: rangeQuery() };
    S.page = p;
    main.dataset.page = name;
    syncChrome(name);
    document.title = `${name === 'host' ? safeDecode(arg) : title} · flowsight`;
    try {
      await fn(p, arg);
    } catch (e) {
      fail(p, e);
    }
    if (!p.current()) return;
    main.dataset.ready = '1';
    startLive();
  }

  // Session and health first: the login page when one is needed, then the page of the URL.
  async function boot(next) {
    try {
      S.session = await api('session', null, { noLoginRedirect: true });
      S.bootError = null;
    } catch (e) {
      S.session = null;
      S.bootError = `Cannot reach the flowsight API: ${e.message}`;
    }
    const locked = S.session && S.session.auth_required && S.session.via === 'none';
    if (!locked) {
      try { S.health = await api('health', null, { noLoginRedirect: true }); } catch (e) { S.health = null; }
    }
    renderStatus();
    if (next) navigate(next, true); else render();
  }
  boot();
})();
