"""The thread inspector's page (HTML, CSS and plain JavaScript)."""

PAGE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>lgdist · thread inspector</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  :root { --fg:#1d2330; --muted:#6b7385; --line:#e3e6ec; --bg:#f6f7f9; --accent:#3558d6; }
  * { box-sizing: border-box; }
  body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color:var(--fg); background:var(--bg); }
  header { padding:10px 18px; background:#1d2330; color:#fff; display:flex; gap:16px; align-items:center; }
  header h1 { font-size:16px; margin:0; font-weight:600; white-space:nowrap; }
  header span { color:#aab3c5; font-size:12px; }
  #info { white-space:nowrap; overflow:hidden; text-overflow:ellipsis; min-width:0; flex:1; }
  main { display:grid; grid-template-columns: 330px 1fr; gap:14px; padding:14px; }
  section { background:#fff; border:1px solid var(--line); border-radius:8px; padding:12px; }
  h2 { font-size:13px; text-transform:uppercase; letter-spacing:.04em; color:var(--muted); margin:0 0 8px; }
  table { border-collapse:collapse; width:100%; }
  td, th { text-align:left; padding:5px 6px; border-bottom:1px solid var(--line); font-size:13px; vertical-align:top; }
  th { color:var(--muted); font-weight:500; }
  tr.pick { cursor:pointer; } tr.pick:hover { background:#f0f3fb; } tr.sel { background:#e6ecfb; }
  .badge { display:inline-block; padding:1px 7px; border-radius:9px; font-size:11px; font-weight:600; }
  .idle,.success { background:#e3f4e8; color:#1c7a3a; } .busy,.running,.pending { background:#fff1d6; color:#8a5a00; }
  .interrupted { background:#e8e6fb; color:#4b3bb5; } .error { background:#fde4e4; color:#a12020; }
  .mono { font-family: ui-monospace, Menlo, Consolas, monospace; font-size:12px; }
  pre { background:#f6f7f9; border:1px solid var(--line); border-radius:6px; padding:8px; max-height:260px; overflow:auto; margin:6px 0; }
  .grid { display:grid; grid-template-columns: 1fr 1fr; gap:14px; }
  button { background:var(--accent); color:#fff; border:0; border-radius:6px; padding:6px 12px; cursor:pointer; font-size:13px; }
  button.ghost { background:#fff; color:var(--accent); border:1px solid var(--accent); padding:3px 8px; font-size:12px; }
  textarea { width:100%; min-height:60px; font-family: ui-monospace, monospace; font-size:12px; border:1px solid var(--line); border-radius:6px; padding:6px; }
  .bar { height:10px; background:var(--accent); border-radius:3px; min-width:2px; }
  .muted { color:var(--muted); } .row { display:flex; gap:10px; align-items:center; margin:6px 0; }
  #interrupts .item { border:1px solid #d8d3fb; background:#f7f6ff; border-radius:6px; padding:8px; margin-bottom:8px; }
</style>
</head>
<body>
<header><h1>lgdist · thread inspector</h1><span id="info"></span>
  <button class="ghost" id="refresh" style="background:transparent;color:#fff;border-color:#aab3c5">Refresh</button></header>
<main>
  <section>
    <h2>Threads</h2>
    <table id="threads"><thead><tr><th>thread</th><th>graph</th><th>status</th></tr></thead><tbody></tbody></table>
  </section>
  <div>
    <section id="detail"><h2>Thread</h2><p class="muted" id="empty">Pick a thread.</p>
      <div id="thread" hidden>
        <div class="row"><b class="mono" id="tid"></b><span id="tstatus"></span><span class="muted" id="tgraph"></span></div>
        <div id="interrupts"></div>
        <div class="grid">
          <div><h2>Runs</h2><table id="runs"><thead><tr><th>run</th><th>status</th><th>created</th></tr></thead><tbody></tbody></table></div>
          <div><h2>Timeline <span class="muted" id="trun"></span></h2>
            <table id="timeline"><thead><tr><th>step</th><th>node</th><th>worker</th><th>seconds</th><th></th></tr></thead><tbody></tbody></table></div>
        </div>
        <h2 style="margin-top:12px">Checkpoints</h2>
        <table id="history"><thead><tr><th>step</th><th>source</th><th>next</th><th>checkpoint</th><th></th></tr></thead><tbody></tbody></table>
        <h2 style="margin-top:12px">State <span class="muted" id="stateat"></span></h2>
        <pre id="state" class="mono"></pre>
      </div>
    </section>
  </div>
</main>
<script>
const $ = (s) => document.querySelector(s);
let current = null, key = localStorage.getItem("lgdist-api-key") || "";
async function api(method, path, body) {
  const headers = {"content-type": "application/json"};
  if (key) headers["x-api-key"] = key;
  const r = await fetch(path, {method, headers, body: body === undefined ? undefined : JSON.stringify(body)});
  if (r.status === 401) {
    key = prompt("API key (x-api-key)") || ""; localStorage.setItem("lgdist-api-key", key);
    return api(method, path, body);
  }
  if (!r.ok) throw new Error(method + " " + path + ": " + r.status + " " + await r.text());
  return r.status === 204 ? null : r.json();
}
const badge = (s) => `<span class="badge ${s}">${s}</span>`;
const esc = (v) => String(v).replace(/[&<>"]/g, (c) => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;"}[c]));
const short = (id) => esc(String(id).slice(0, 12));
const when = (iso) => iso ? new Date(iso).toLocaleTimeString() : "";

async function loadThreads() {
  const info = await api("GET", "/info");
  $("#info").textContent = "graphs: " + info.graphs.join(", ");
  const threads = await api("POST", "/threads/search", {limit: 100});
  $("#threads tbody").innerHTML = threads.map((t) =>
    `<tr class="pick ${current === t.thread_id ? "sel" : ""}" data-id="${esc(t.thread_id)}">
       <td class="mono">${short(t.thread_id)}</td><td>${esc(t.metadata.graph_id || "")}</td><td>${badge(t.status)}</td></tr>`).join("");
  document.querySelectorAll("#threads tr.pick").forEach((tr) => tr.onclick = () => openThread(tr.dataset.id));
}

async function openThread(id) {
  current = id;
  $("#empty").hidden = true; $("#thread").hidden = false;
  const t = await api("GET", `/threads/${encodeURIComponent(id)}`);
  $("#tid").textContent = id; $("#tstatus").innerHTML = badge(t.status);
  $("#tgraph").textContent = t.metadata.graph_id || "";
  const runs = await api("GET", `/threads/${encodeURIComponent(id)}/runs?limit=50`);
  $("#runs tbody").innerHTML = runs.map((r) =>
    `<tr class="pick" data-run="${esc(r.run_id)}"><td class="mono">${short(r.run_id)}</td><td>${badge(r.status)}</td><td>${when(r.created_at)}</td></tr>`).join("");
  document.querySelectorAll("#runs tr.pick").forEach((tr) => tr.onclick = () => showTimeline(tr.dataset.run));
  if (runs.length) showTimeline(runs[0].run_id);
  const history = await api("POST", `/threads/${encodeURIComponent(id)}/history`, {limit: 100});
  $("#history tbody").innerHTML = history.map((h, i) =>
    `<tr class="pick" data-i="${i}"><td>${h.metadata.step}</td><td>${esc(h.metadata.source || "")}</td>
       <td>${esc((h.next || []).join(", "))}</td><td class="mono">${short(h.checkpoint_id)}</td>
       <td><button class="ghost fork" data-cp="${esc(h.checkpoint_id)}">Fork from here</button></td></tr>`).join("");
  document.querySelectorAll("#history tr.pick").forEach((tr) => tr.onclick = () => showState(history[+tr.dataset.i]));
  document.querySelectorAll("button.fork").forEach((b) => b.onclick = (e) => { e.stopPropagation(); fork(b.dataset.cp, t); });
  const state = await api("GET", `/threads/${encodeURIComponent(id)}/state`);
  showState(state, "latest");
  renderInterrupts(state, t);
  loadThreads();
}

function showState(s, label) {
  $("#stateat").textContent = label || `at step ${s.metadata.step} (${short(s.checkpoint_id)})`;
  $("#state").textContent = JSON.stringify(s.values, null, 2);
}

async function showTimeline(runId) {
  $("#trun").textContent = short(runId);
  const rows = await api("GET", `/ui/api/threads/${encodeURIComponent(current)}/runs/${encodeURIComponent(runId)}/timeline`);
  const max = Math.max(0.001, ...rows.map((r) => r.seconds));
  $("#timeline tbody").innerHTML = rows.map((r) =>
    `<tr><td>${r.step ?? ""}</td><td>${esc(r.node)}</td><td class="mono">${esc(r.worker)}</td><td>${r.seconds.toFixed(3)}</td>
       <td style="width:30%"><div class="bar" style="width:${Math.round(100 * r.seconds / max)}%"></div></td></tr>`).join("")
    || `<tr><td colspan="5" class="muted">no node ran in this run</td></tr>`;
}

function renderInterrupts(state, thread) {
  const box = $("#interrupts");
  if (!(state.next || []).length) { box.innerHTML = ""; return; }
  const items = (state.interrupts || []).map((i) => `<pre class="mono">${esc(JSON.stringify(i.value, null, 2))}</pre>`).join("");
  box.innerHTML = `<div class="item"><b>Paused before: ${esc(state.next.join(", "))}</b>${items}
    <div class="row"><label><input type="radio" name="mode" value="resume" checked> resume value</label>
      <label><input type="radio" name="mode" value="update"> state update</label></div>
    <textarea id="resume-value" placeholder='JSON, e.g. "yes" or {"key": "value"} (empty: continue)'></textarea>
    <div class="row"><button id="resume">Resume</button><span id="resume-status" class="muted"></span></div></div>`;
  $("#resume").onclick = async () => {
    const text = $("#resume-value").value.trim();
    let value = null;
    if (text) { try { value = JSON.parse(text); } catch (e) { value = text; } }
    const mode = document.querySelector("input[name=mode]:checked").value;
    const body = {assistant_id: thread.metadata.graph_id, multitask_strategy: "reject"};
    if (mode === "update") body.command = {update: value};
    else if (value !== null) body.command = {resume: value};
    else body.input = null;
    $("#resume-status").textContent = "running…";
    try {
      const run = await api("POST", `/threads/${encodeURIComponent(current)}/runs`, body);
      await api("GET", `/threads/${encodeURIComponent(current)}/runs/${run.run_id}/join`);
      $("#resume-status").textContent = "done";
    } catch (e) { $("#resume-status").textContent = e.message; }
    openThread(current);
  };
}

async function fork(checkpointId, thread) {
  const run = await api("POST", `/threads/${encodeURIComponent(current)}/runs`,
    {assistant_id: thread.metadata.graph_id, input: null, checkpoint_id: checkpointId, multitask_strategy: "reject"});
  await api("GET", `/threads/${encodeURIComponent(current)}/runs/${run.run_id}/join`);
  openThread(current);
}

$("#refresh").onclick = () => current ? openThread(current) : loadThreads();
loadThreads().then(() => { const id = new URLSearchParams(location.search).get("thread"); if (id) openThread(id); });
</script>
</body>
</html>
"""
