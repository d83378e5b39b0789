import type { UpstreamSnapshot } from "./upstreams.js";

/**
 * The admin listener's `/`: every upstream, its members (state, address,
 * RTT sparkline, in-flight, last error) and its recent events. The page is
 * whole without JavaScript (server-rendered); a few lines of script replace
 * <main> with a fresh render of `/diagnostics/fragment` every second, so it
 * updates live. Everything interpolated is escaped; upstream targets are
 * shown redacted, and nothing else on the page comes from configuration.
 */
export function renderPage(upstreams: UpstreamSnapshot[], meta: { version: string; startedAt: string }): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>dialtone broker</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em;margin:0 0 .2em} h2{font-size:1.15em;margin:1.4em 0 .3em}
table{border-collapse:collapse;margin:.4em 0} td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}
th{background:#f4f4f4} .ready{color:#070} .unhealthy,.closed{color:#b00} .connecting,.draining{color:#a60}
.meta{color:#666} .events{font:12px ui-monospace,monospace;max-height:14em;overflow:auto;border:1px solid #ddd;padding:.3em;margin:0}
.err{color:#b00;max-width:30em;overflow-wrap:anywhere}
</style></head>
<body><h1>dialtone broker</h1>
<p class="meta">version ${esc(meta.version)} · up since ${esc(meta.startedAt)} · <a href="/stats">/stats</a> · <a href="/metrics">/metrics</a> · <a href="/readyz">/readyz</a> · <span id="live">static</span></p>
<main id="main">${renderFragment(upstreams)}</main>
<script>
(function(){var live=document.getElementById("live");live.textContent="live";
setInterval(function(){fetch("/diagnostics/fragment",{cache:"no-store"}).then(function(r){if(!r.ok)throw new Error(r.status);return r.text()})
.then(function(h){document.getElementById("main").innerHTML=h;live.textContent="live · "+new Date().toLocaleTimeString()})
.catch(function(){live.textContent="broker unreachable"})},1000)})();
</script></body></html>`;
}

export function renderFragment(upstreams: UpstreamSnapshot[]): string {
  if (upstreams.length === 0) return "<p>No upstreams configured.</p>";
  return upstreams.map(renderUpstream).join("\n");
}

function renderUpstream(u: UpstreamSnapshot): string {
  const ch = u.channel;
  const state = !u.open ? "idle (closed until the next request)" : u.is_connected ? (ch?.degraded ? "connected, degraded" : "connected") : "disconnected";
  const remaining = u.time_remaining === null ? "" : ` · closes when idle in ${Math.round(u.time_remaining / 1000)} s`;
  const members = ch
    ? `<table><tr><th>#</th><th>address</th><th>state</th><th>RTT</th><th>recent RTT</th><th>in flight</th><th>last error</th></tr>
${ch.members
  .map(
    (m) =>
      `<tr data-member="${esc(m.address)}"><td>${m.id}</td><td>${esc(m.address)}</td><td class="${esc(m.state)}">${esc(m.state)}</td><td>${m.rttMs === undefined ? "–" : `${m.rttMs.toFixed(2)} ms`}</td><td>${sparkline(u.rtt[m.address] ?? [])}</td><td>${m.inFlight}</td><td class="err">${esc(m.lastError ?? "")}</td></tr>`,
  )
  .join("\n")}</table>
<p class="meta">${ch.ready}/${ch.wanted} ready · ${ch.usable} usable · ${ch.queued} queued${ch.lastError ? ` · last error: <span class="err">${esc(ch.lastError)}</span>` : ""}</p>`
    : "";
  const events = u.events
    .slice(0, 30)
    .map((e) => `${esc(e.at.slice(11, 23))} ${esc(e.type)}: ${esc(e.text)}`)
    .join("\n");
  return `<section data-upstream="${esc(u.name)}"><h2>${esc(u.name)} <small class="meta">${esc(u.kind)} → ${esc(u.target)}</small></h2>
<p><span class="status">${esc(state)}</span> · ${u.in_flight} in flight · last activity ${esc(u.last_activity ?? "never")}${remaining}${u.warm ? " · warm" : ""}${u.hosts.length ? ` · hosts ${esc(u.hosts.join(", "))}` : ""}${u.default ? " · default" : ""}</p>
${members}
<pre class="events">${events || "no events yet"}</pre></section>`;
}

/** An inline SVG polyline of recent RTTs: no script, no library, readable in any browser. */
export function sparkline(samples: readonly number[]): string {
  if (samples.length < 2) return "";
  const w = 120;
  const h = 24;
  const max = Math.max(...samples, 0.001);
  const step = w / (samples.length - 1);
  const points = samples.map((v, i) => `${(i * step).toFixed(1)},${(h - (v / max) * (h - 2) - 1).toFixed(1)}`).join(" ");
  return `<svg class="spark" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img" aria-label="RTT, max ${max.toFixed(2)} ms"><polyline fill="none" stroke="#36c" stroke-width="1.5" points="${points}"/></svg>`;
}

export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] as string);
}
