/**
 * The status page `gov serve` shows at `/`: one self-contained HTML document (inline CSS and
 * JS, no external requests) with the backends, the queue and recent jobs, kept live by the
 * server-sent event stream `GET /v1/events`.
 *
 * When the gateway has a token, open the page once as `/?token=T` (or type the token into
 * the form `/` shows without it): the gateway sets an HttpOnly, SameSite=Strict session
 * cookie derived from the token (12 hours), valid only for requests from the page's own
 * origin, so reloads, the event stream and output links work without the token in any URL.
 * The script removes the token from the address bar and keeps it in the tab's
 * sessionStorage for its cancel calls (as a bearer header).
 *
 * @module
 */

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>gov serve</title>
<style>
  :root { --bg:#0f1115; --panel:#171a21; --line:#262b36; --fg:#e6e9ef; --dim:#8a93a6;
    --up:#3fb950; --down:#f85149; --unknown:#d29922; --run:#58a6ff; --accent:#a371f7; }
  * { box-sizing: border-box; }
  body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
    background:var(--bg); color:var(--fg); }
  header { display:flex; align-items:center; gap:16px; padding:14px 24px;
    border-bottom:1px solid var(--line); background:var(--panel); }
  header h1 { font-size:18px; margin:0; font-weight:600; }
  header .conn { margin-left:auto; font-size:12px; color:var(--dim); }
  .dot { display:inline-block; width:8px; height:8px; border-radius:50%; margin-right:6px;
    background:var(--unknown); vertical-align:middle; }
  .dot.live { background:var(--up); } .dot.dead { background:var(--down); }
  main { padding:18px 24px; display:grid; gap:18px; }
  .cards { display:flex; gap:12px; flex-wrap:wrap; }
  .card { background:var(--panel); border:1px solid var(--line); border-radius:8px;
    padding:10px 16px; min-width:120px; }
  .card .n { font-size:24px; font-weight:600; } .card .l { color:var(--dim); font-size:12px; }
  section { background:var(--panel); border:1px solid var(--line); border-radius:8px; }
  section h2 { font-size:14px; margin:0; padding:10px 14px; border-bottom:1px solid var(--line);
    font-weight:600; }
  section h2 small { color:var(--dim); font-weight:400; margin-left:8px; }
  table { width:100%; border-collapse:collapse; }
  th, td { text-align:left; padding:7px 14px; border-bottom:1px solid var(--line);
    white-space:nowrap; }
  th { color:var(--dim); font-weight:500; font-size:12px; }
  tr:last-child td { border-bottom:none; }
  td.err { white-space:normal; color:var(--down); max-width:420px; font-size:12px; }
  td.mono, .mono { font-family:ui-monospace,SFMono-Regular,Menlo,monospace; font-size:12px; }
  .badge { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px;
    border:1px solid currentColor; }
  .s-up, .s-completed { color:var(--up); } .s-down, .s-failed { color:var(--down); }
  .s-unknown, .s-queued { color:var(--unknown); } .s-running, .s-dispatched { color:var(--run); }
  .s-cancelled { color:var(--dim); }
  .bar { width:120px; height:8px; background:var(--line); border-radius:4px; overflow:hidden;
    display:inline-block; vertical-align:middle; }
  .bar > i { display:block; height:100%; background:var(--run); }
  .empty { color:var(--dim); padding:12px 14px; }
  a { color:var(--accent); } button { background:none; border:1px solid var(--line);
    color:var(--dim); border-radius:4px; cursor:pointer; font-size:12px; padding:1px 8px; }
  button:hover { color:var(--down); border-color:var(--down); }
</style>
</head>
<body>
<header>
  <h1>gov serve</h1><span class="mono" id="version"></span>
  <span class="conn"><span class="dot" id="dot"></span><span id="conn">connecting…</span></span>
</header>
<main>
  <div class="cards" id="cards"></div>
  <section><h2>Backends <small id="bsum"></small></h2>
    <table><thead><tr><th>Backend</th><th>State</th><th>Queue</th><th>In flight</th>
    <th>VRAM free</th><th>ComfyUI</th><th>Nodes</th><th>Last error</th></tr></thead>
    <tbody id="backends"></tbody></table></section>
  <section><h2>Queue <small id="qsum"></small></h2>
    <table><thead><tr><th>Job</th><th>State</th><th>Backend</th><th>Attempt</th>
    <th>Progress</th><th>Waiting since</th><th>Why waiting</th><th></th></tr></thead>
    <tbody id="queue"></tbody></table></section>
  <section><h2>Recent jobs</h2>
    <table><thead><tr><th>Job</th><th>State</th><th>Backend</th><th>Attempts</th>
    <th>Created</th><th>Took</th><th>Outputs</th><th>Error</th></tr></thead>
    <tbody id="recent"></tbody></table></section>
</main>
<script>
"use strict";
(function () {
  var params = new URLSearchParams(location.search);
  var token = params.get("token") || sessionStorage.getItem("gov-serve-token") || "";
  if (params.has("token")) {
    sessionStorage.setItem("gov-serve-token", token);
    params.delete("token");
    var rest = params.toString();
    history.replaceState(null, "", location.pathname + (rest ? "?" + rest : ""));
  }
  var state = { backends: [], jobs: new Map(), counts: {} };
  var ACTIVE = { queued: 1, dispatched: 1, running: 1 };

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) {
      if (k === "text") e.textContent = attrs[k]; else if (k === "cls") e.className = attrs[k];
      else e.setAttribute(k, attrs[k]);
    }
    (children || []).forEach(function (c) { if (c) e.appendChild(c); });
    return e;
  }
  function td(text, cls) { return el("td", { text: text == null ? "" : String(text), cls: cls || "" }); }
  function badge(s) { return el("span", { cls: "badge s-" + s, text: s }); }
  function ago(iso) {
    if (!iso) return "";
    var s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
    if (s < 60) return Math.floor(s) + "s ago";
    if (s < 3600) return Math.floor(s / 60) + "m ago";
    return Math.floor(s / 3600) + "h ago";
  }
  function took(j) {
    if (!j.finished_at) return "";
    var ms = Date.parse(j.finished_at) - Date.parse(j.created_at);
    return ms < 1000 ? ms + " ms" : (ms / 1000).toFixed(1) + " s";
  }
  function gib(b) { return b == null ? "" : (b / 1073741824).toFixed(1) + " GiB"; }

  function renderBackends() {
    var body = document.getElementById("backends");
    body.replaceChildren();
    if (!state.backends.length) {
      body.appendChild(el("tr", null, [el("td", { colspan: "8", cls: "empty",
        text: "No backends configured (gov backend add ...)." })]));
    }
    var up = 0;
    state.backends.forEach(function (b) {
      if (b.state === "up") up++;
      body.appendChild(el("tr", null, [
        el("td", null, [el("b", { text: b.id }), el("div", { cls: "mono", text: b.host + ":" + b.port })]),
        el("td", null, [badge(b.state)]),
        // A down backend's last queue depth is stale: show none rather than a false 0.
        td(b.state === "up" ? b.queue_remaining + " / " + b.max_queue : "\u2014"),
        td(b.in_flight),
        td(b.vram ? gib(b.vram.free) + " of " + gib(b.vram.total) : ""),
        td(b.comfyui_version || ""),
        td(b.node_classes),
        td(b.last_error || "", "err"),
      ]));
    });
    document.getElementById("bsum").textContent = up + " of " + state.backends.length + " up";
  }

  function progressCell(j) {
    var p = j.progress;
    if (!p || !p.max) return td(j.state === "running" ? "running" : "");
    var pct = Math.round((p.value / p.max) * 100);
    var bar = el("span", { cls: "bar" }, [el("i", { style: "width:" + pct + "%" })]);
    return el("td", null, [bar, document.createTextNode(" " + p.value + "/" + p.max)]);
  }

  function cancel(id) {
    fetch("/v1/jobs/" + encodeURIComponent(id), {
      method: "DELETE",
      headers: token ? { Authorization: "Bearer " + token } : {},
    });
  }

  function renderJobs() {
    var jobs = Array.from(state.jobs.values()).sort(function (a, b) {
      return a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : 0;
    });
    var queue = document.getElementById("queue"), recent = document.getElementById("recent");
    queue.replaceChildren(); recent.replaceChildren();
    var active = jobs.filter(function (j) { return ACTIVE[j.state]; }).reverse();
    if (!active.length) queue.appendChild(el("tr", null, [el("td", { colspan: "8", cls: "empty", text: "Nothing queued or running." })]));
    active.forEach(function (j) {
      var why = (j.refusals || []).map(function (r) { return r.backend + ": " + r.reason; }).join("; ");
      var btn = el("button", { text: "cancel", title: "DELETE /v1/jobs/" + j.id });
      btn.onclick = function () { cancel(j.id); };
      queue.appendChild(el("tr", null, [
        td(j.id, "mono"), el("td", null, [badge(j.state)]), td(j.backend || ""),
        td(j.attempts + " / " + j.max_attempts), progressCell(j), td(ago(j.created_at)),
        td(j.state === "queued" ? (why || j.error || "") : "", "err"), el("td", null, [btn]),
      ]));
    });
    document.getElementById("qsum").textContent = (state.counts.queued || 0) + " queued, " +
      ((state.counts.dispatched || 0) + (state.counts.running || 0)) + " running";
    var done = jobs.filter(function (j) { return !ACTIVE[j.state]; }).slice(0, 30);
    if (!done.length) recent.appendChild(el("tr", null, [el("td", { colspan: "8", cls: "empty", text: "No finished jobs yet." })]));
    done.forEach(function (j) {
      var outs = el("td", null, j.outputs.map(function (o, n) {
        var a = el("a", { href: o.url, target: "_blank", text: "#" + n });
        a.title = o.filename;
        return el("span", null, [a, document.createTextNode(" ")]);
      }));
      recent.appendChild(el("tr", null, [
        td(j.id, "mono"), el("td", null, [badge(j.state)]), td(j.backend || ""),
        td(j.attempts), td(ago(j.created_at)), td(took(j)), outs, td(j.error || "", "err"),
      ]));
    });
  }

  function renderCards() {
    var c = state.counts, cards = document.getElementById("cards");
    cards.replaceChildren();
    [["queued", c.queued], ["running", (c.dispatched || 0) + (c.running || 0)],
     ["completed", c.completed], ["failed", c.failed], ["cancelled", c.cancelled]]
      .forEach(function (p) {
        cards.appendChild(el("div", { cls: "card" }, [
          el("div", { cls: "n s-" + p[0], text: String(p[1] || 0) }), el("div", { cls: "l", text: p[0] })]));
      });
  }

  function render() { renderCards(); renderBackends(); renderJobs(); }
  function setConn(live, text) {
    document.getElementById("dot").className = "dot " + (live ? "live" : "dead");
    document.getElementById("conn").textContent = text;
  }

  fetch("/healthz").then(function (r) { return r.json(); }).then(function (h) {
    document.getElementById("version").textContent = "gov " + h.version;
  }).catch(function () {});

  var es = new EventSource("/v1/events");
  es.onopen = function () { setConn(true, "live"); };
  es.onerror = function () { setConn(false, "reconnecting…"); };
  es.addEventListener("snapshot", function (m) {
    var d = JSON.parse(m.data);
    state.backends = d.backends; state.counts = d.counts; state.jobs = new Map();
    d.jobs.forEach(function (j) { state.jobs.set(j.id, j); });
    render();
  });
  es.addEventListener("backends", function (m) {
    var d = JSON.parse(m.data);
    state.backends = d.backends; state.counts = d.counts;
    (d.queued || []).forEach(function (j) { state.jobs.set(j.id, j); });
    renderCards(); renderBackends(); renderJobs();
  });
  es.addEventListener("backend", function (m) {
    var b = JSON.parse(m.data);
    var i = state.backends.findIndex(function (x) { return x.id === b.id; });
    if (i >= 0) state.backends[i] = b; else state.backends.push(b);
    renderBackends();
  });
  es.addEventListener("job", function (m) {
    var d = JSON.parse(m.data);
    var prev = state.jobs.get(d.job.id);
    if (!prev || prev.state !== d.job.state) {
      if (prev) state.counts[prev.state] = Math.max(0, (state.counts[prev.state] || 1) - 1);
      state.counts[d.job.state] = (state.counts[d.job.state] || 0) + 1;
    }
    state.jobs.set(d.job.id, d.job);
    if (state.jobs.size > 200) {
      var oldest = Array.from(state.jobs.values()).filter(function (j) { return !ACTIVE[j.state]; })
        .sort(function (a, b) { return a.created_at < b.created_at ? -1 : 1; })[0];
      if (oldest) state.jobs.delete(oldest.id);
    }
    renderCards(); renderJobs();
  });
  setInterval(renderJobs, 5000);
})();
</script>
</body>
</html>
`;

/**
 * The status page's HTML.
 *
 * @example
 * ```ts
 * import { statusPageHtml } from "@/serve/status_page.ts";
 *
 * new Response(statusPageHtml(), { headers: { "content-type": "text/html" } });
 * ```
 */
export function statusPageHtml(): string {
  return PAGE;
}

/**
 * The page `/` shows a browser that has no valid token: a one-field form that reopens the
 * status page with `?token=`.
 *
 * @example
 * ```ts
 * import { signInPageHtml } from "@/serve/status_page.ts";
 *
 * new Response(signInPageHtml(false), { status: 401, headers: { "content-type": "text/html" } });
 * ```
 */
export function signInPageHtml(wrongToken: boolean): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>gov serve: token required</title>
<style>
  body { margin:0; min-height:100vh; display:grid; place-items:center; background:#0f1115;
    color:#e6e9ef; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; }
  form { background:#171a21; border:1px solid #262b36; border-radius:8px; padding:24px;
    display:grid; gap:12px; min-width:320px; }
  h1 { font-size:18px; margin:0; } p { margin:0; color:#8a93a6; }
  .err { color:#f85149; }
  input, button { font:inherit; padding:6px 10px; border-radius:4px; border:1px solid #262b36;
    background:#0f1115; color:#e6e9ef; }
  button { cursor:pointer; background:#1f6feb; border-color:#1f6feb; }
</style>
</head>
<body>
<form method="get" action="/">
  <h1>gov serve</h1>
  <p>This gateway requires its token (<code>gov serve --token-file</code> or GOV_SERVE_TOKEN).</p>
  <p class="err" id="wrong"${wrongToken ? "" : " hidden"}>That token is not the right one.</p>
  <input type="password" name="token" placeholder="token" autocomplete="current-password"
    required autofocus>
  <button type="submit">Open the status page</button>
</form>
<script>
"use strict";
// Signs in with a header, so the token never lands in the address bar, the history or a
// proxy's log; the gateway answers with the session cookie. Without script, the form
// falls back to /?token=.
document.querySelector("form").addEventListener("submit", function (ev) {
  ev.preventDefault();
  var token = this.elements.token.value;
  fetch("/", { headers: { Authorization: "Bearer " + token, Accept: "text/html" } })
    .then(function (r) {
      if (!r.ok) { document.getElementById("wrong").hidden = false; return; }
      sessionStorage.setItem("gov-serve-token", token);
      location.replace("/");
    });
});
</script>
</body>
</html>
`;
}
