// The live trial panel (panel.py): sortable trial table, stop button, trial log viewer.
// Everything here runs in the browser and talks to the Jupyter server's hops REST api
// directly, because the kernel handles no widget message while it runs the cell.

const STREAMS = ["stdout", "stderr", "hdfs"];
const POLL_MS = 1000;
const LOG_MAX_CHARS = 400000; // the viewer keeps the tail of a long log
const LOG_CHUNK = 65536; // the most bytes one answer of the log route holds

function pageConfig() {
  const node = document.getElementById("jupyter-config-data");
  if (!node) return {};
  try {
    return JSON.parse(node.textContent || "{}");
  } catch {
    return {};
  }
}

function baseUrl(model) {
  const base = pageConfig().baseUrl || model.get("base_url") || "/";
  return base.endsWith("/") ? base : base + "/";
}

function cookie(name) {
  const found = document.cookie.match(new RegExp("(?:^|;\\s*)" + name + "=([^;]*)"));
  return found ? decodeURIComponent(found[1]) : "";
}

function headers(write) {
  const out = {};
  const token = pageConfig().token;
  if (token) out.Authorization = "token " + token;
  if (write) {
    out["X-XSRFToken"] = cookie("_xsrf");
    out["Content-Type"] = "application/json";
  }
  return out;
}

// Durations as the kernel writes them (formatting.py): 1.23 s, 2 min 3 s, 1 h 2 min.
export function duration(seconds) {
  if (!isFinite(seconds)) return "";
  seconds = Math.max(0, seconds);
  if (seconds < 59.5) return Number(seconds.toPrecision(3)) + " s";
  const whole = Math.round(seconds);
  if (whole < 3600) {
    const m = Math.floor(whole / 60), s = whole % 60;
    return s ? `${m} min ${s} s` : `${m} min`;
  }
  const h = Math.floor(whole / 3600), m = Math.floor((whole % 3600) / 60);
  return m ? `${h} h ${m} min` : `${h} h`;
}

function element(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

// Sort the table's trials (one <tbody> each: the row and its error line) by a column.
export function sortTable(table, col, dir) {
  if (!table || col === null) return;
  const th = table.querySelector(`th[data-col="${col}"]`);
  const numeric = th && th.dataset.num === "1";
  const bodies = Array.from(table.tBodies);
  const key = (body) => {
    const cell = body.rows[0] && body.rows[0].cells[col];
    const raw = cell ? cell.dataset.v || "" : "";
    if (raw === "") return null;
    return numeric ? parseFloat(raw) : raw;
  };
  const keyed = bodies.map((body, i) => [key(body), i, body]);
  keyed.sort((a, b) => {
    if (a[0] === null || b[0] === null || (numeric && (isNaN(a[0]) || isNaN(b[0])))) {
      const am = a[0] === null || (numeric && isNaN(a[0]));
      const bm = b[0] === null || (numeric && isNaN(b[0]));
      if (am !== bm) return am ? 1 : -1; // no value: last either way
      return a[1] - b[1];
    }
    const c = numeric ? a[0] - b[0] : String(a[0]).localeCompare(String(b[0]), undefined, { numeric: true });
    return c ? c * dir : a[1] - b[1];
  });
  for (const [, , body] of keyed) table.appendChild(body);
  for (const head of table.querySelectorAll("th[data-col]")) {
    head.style.cursor = "pointer";
    head.title = "sort";
    const mark = head.querySelector(".hops-sort") || head.appendChild(element("span", "hops-sort"));
    mark.textContent = Number(head.dataset.col) === col ? (dir > 0 ? " ▲" : " ▼") : "";
  }
}

function render({ model, el }) {
  const root = element("div", "hops-panel");
  const bar = element("div", "hops-toolbar");
  const stop = element("button", "hops-stop", "■ Stop experiment");
  stop.title = "Stop: running trials are killed, queued ones never start";
  const note = element("span", "hops-note");
  const hint = element("span", "hops-hint", "click a column to sort · click a trial for its logs");
  bar.append(stop, note, hint);
  const holder = element("div", "hops-table");
  const logs = element("div", "hops-logs");
  logs.hidden = true;
  const logbar = element("div", "hops-logbar");
  const select = element("select", "hops-trial");
  const tabs = element("span", "hops-streams");
  const state = element("span", "hops-logstate");
  const close = element("button", "hops-close", "×");
  close.title = "close the logs";
  logbar.append(element("span", "", "Logs of "), select, tabs, state, close);
  const text = element("pre", "hops-logtext");
  logs.append(logbar, text);
  root.append(bar, holder, logs);
  el.appendChild(root);

  let sortCol = null, sortDir = 1;
  let trial = "", stream = "stdout", offset = null, generation = 0, timer = null, polling = false;
  let stopping = false;

  // --- the table ---------------------------------------------------------------------------
  const table = () => holder.querySelector("table");
  const bodyOf = (id) => Array.from(table()?.tBodies || []).find((b) => b.dataset.trial === id);

  function showTable() {
    const open = new Set(
      Array.from(holder.querySelectorAll("tbody details[open]")).map((d) => d.closest("tbody").dataset.trial),
    );
    const scroll = holder.firstElementChild ? holder.firstElementChild.scrollTop : 0;
    holder.innerHTML = model.get("table_html");
    if (holder.firstElementChild) holder.firstElementChild.scrollTop = scroll;
    for (const body of table()?.tBodies || []) {
      body.style.cursor = "pointer";
      if (open.has(body.dataset.trial)) body.querySelector("details")?.setAttribute("open", "");
      if (body.dataset.trial === trial) body.classList.add("hops-selected");
    }
    if (table()) sortTable(table(), sortCol, sortDir);
    tick();
    fillSelect();
  }

  function tick() {
    const now = Date.now();
    for (const cell of holder.querySelectorAll("td[data-started]")) {
      const begun = Date.parse(cell.dataset.started);
      if (!isNaN(begun)) cell.textContent = duration((now - begun) / 1000);
    }
  }

  holder.addEventListener("click", (event) => {
    const head = event.target.closest("th[data-col]");
    if (head) {
      const col = Number(head.dataset.col);
      sortDir = col === sortCol ? -sortDir : 1;
      sortCol = col;
      sortTable(table(), sortCol, sortDir);
      return;
    }
    if (event.target.closest("details, a")) return; // a traceback opening, a link
    const body = event.target.closest("tbody[data-trial]");
    if (body) choose(body.dataset.trial);
  });

  // --- the logs ----------------------------------------------------------------------------
  function fillSelect() {
    const bodies = Array.from(table()?.tBodies || []);
    const wanted = bodies.map((b) => {
      const number = b.rows[0]?.cells[0]?.dataset.v || "";
      return [b.dataset.trial, `${number ? "#" + number + " " : ""}${b.dataset.label} (${b.dataset.status})`];
    });
    wanted.sort((a, b) => a[1].localeCompare(b[1], undefined, { numeric: true }));
    const current = Array.from(select.options).map((o) => o.value + "\u0000" + o.textContent).join("\n");
    if (current === wanted.map(([v, t]) => v + "\u0000" + t).join("\n")) return;
    select.replaceChildren(...wanted.map(([value, label]) => {
      const option = element("option", "", label);
      option.value = value;
      return option;
    }));
    select.value = trial;
  }

  for (const name of STREAMS) {
    const tab = element("button", "hops-stream", name);
    tab.dataset.stream = name;
    tab.addEventListener("click", () => {
      stream = name;
      restart();
    });
    tabs.appendChild(tab);
  }
  select.addEventListener("change", () => choose(select.value));
  close.addEventListener("click", () => {
    logs.hidden = true;
    trial = "";
    restart();
    for (const b of holder.querySelectorAll("tbody.hops-selected")) b.classList.remove("hops-selected");
  });

  function choose(id) {
    trial = id;
    logs.hidden = !id;
    select.value = id;
    for (const b of table()?.tBodies || []) b.classList.toggle("hops-selected", b.dataset.trial === id);
    restart();
  }

  function restart() {
    generation += 1;
    offset = null;
    text.textContent = "";
    clearTimeout(timer);
    polling = false;
    for (const tab of tabs.children) tab.classList.toggle("hops-active", tab.dataset.stream === stream);
    if (trial) {
      polling = true;
      poll(generation);
    }
  }

  function live() {
    const status = bodyOf(trial)?.dataset.status;
    return status === "RUNNING" || status === "PENDING";
  }

  async function poll(mine) {
    const exp = encodeURIComponent(model.get("experiment_id"));
    const url = `${baseUrl(model)}hops/api/experiments/${exp}/trials/${encodeURIComponent(trial)}` +
      `/logs/${stream}` + (offset === null ? "" : `?offset=${offset}`);
    let again = live();
    let delay = POLL_MS;
    try {
      const reply = await fetch(url, { credentials: "same-origin", headers: headers(false) });
      if (mine !== generation) return;
      if (reply.status === 404) {
        state.textContent = live() ? "no output yet" : "no output";
      } else if (!reply.ok) {
        state.textContent = `could not read the log (HTTP ${reply.status})`;
        again = false;
      } else {
        const data = await reply.json();
        if (mine !== generation) return;
        const atEnd = text.scrollHeight - text.scrollTop - text.clientHeight < 30;
        let shown = (offset === null ? "" : text.textContent) + (data.text || "");
        if (shown.length > LOG_MAX_CHARS) shown = "…" + shown.slice(shown.length - LOG_MAX_CHARS);
        if (offset === null || data.text) text.textContent = shown;
        if (atEnd) text.scrollTop = text.scrollHeight;
        // Behind a chatty trial by more than the viewer keeps: jump to the tail; by more than
        // one answer holds: read on at once, not a second later (it would never catch up).
        const behind = (data.size || 0) - data.next_offset;
        offset = behind > LOG_MAX_CHARS ? null : data.next_offset;
        if (behind > LOG_CHUNK) [again, delay] = [true, 0];
        const size = data.size === undefined ? "" : ` · ${data.size} bytes`;
        state.textContent = (shown ? "" : "empty") + size + (live() ? " · live" : "");
      }
    } catch (err) {
      if (mine !== generation) return;
      state.textContent = "logs need the hops-jupyter server extension (" + err + ")";
      again = false;
    }
    if (mine !== generation) return;
    polling = again;
    if (again) timer = setTimeout(() => poll(mine), delay);
  }

  // --- stopping ----------------------------------------------------------------------------
  function showStatus() {
    const status = model.get("status");
    const running = status === "RUNNING";
    stop.hidden = !running;
    if (!running) {
      note.textContent = stopping || status === "KILLED" ? `experiment ${status}` : "";
      stopping = false;
    }
  }

  stop.addEventListener("click", async () => {
    stop.disabled = true;
    stop.textContent = "stopping…";
    stopping = true;
    const exp = encodeURIComponent(model.get("experiment_id"));
    try {
      const reply = await fetch(`${baseUrl(model)}hops/api/experiments/${exp}/stop`, {
        method: "POST", credentials: "same-origin", headers: headers(true), body: "{}",
      });
      if (reply.status === 202) {
        note.textContent = "stop requested: ending running trials…";
        return;
      }
      note.textContent = reply.status === 409 ? "the experiment has already ended"
        : `could not stop (HTTP ${reply.status}): run experiment.stop("${model.get("experiment_id")}")`;
    } catch (err) {
      note.textContent = `could not reach the server (${err}): run experiment.stop("${model.get("experiment_id")}")`;
    }
    stopping = false;
    stop.disabled = false;
    stop.textContent = "■ Stop experiment";
  });

  model.on("change:table_html", () => {
    showTable();
    if (trial && !polling && live()) {
      polling = true;
      poll(generation); // the trial started since its log was read: follow it again
    }
  });
  model.on("change:status", showStatus);
  showTable();
  showStatus();
  restart();
  const ticker = setInterval(tick, 1000);
  return () => {
    clearInterval(ticker);
    clearTimeout(timer);
    generation += 1;
  };
}

export default { render };
