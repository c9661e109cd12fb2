// The salience page: plain JavaScript, no build step, nothing from another host.
// Methods come from GET /api/v1/methods (the registry), so every method appears without code here.
"use strict";

const API = "/api/v1";
const $ = (id) => document.getElementById(id);

const state = {
  file: null,          // the image Blob
  original: null,      // HTMLImageElement of it (natural size)
  target: null,        // class index explained (null: the top-1 class)
  cards: new Map(),    // method name -> {canvas, gray (ImageBitmap), heat (canvas), kind}
  methods: [],
  busy: 0,
};

// ---- HTTP ------------------------------------------------------------------------------------------------
function authHeaders() {
  const t = sessionStorage.getItem("salience-token");
  return t ? { Authorization: "Bearer " + t } : {};
}

async function api(path, form) {
  const init = { method: form ? "POST" : "GET", headers: authHeaders() };
  if (form) init.body = form;
  let resp;
  try {
    resp = await fetch(API + path, init);
  } catch (err) {
    throw new Error("the server did not answer (" + err.message + "); is `salience serve` still running?");
  }
  if (resp.status === 401) $("token-form").hidden = false;
  if (!resp.ok) {
    let msg = resp.status + " " + resp.statusText;
    try {
      const body = await resp.json();
      if (body && body.error) msg = body.error.message + (body.error.field ? " (field: " + body.error.field + ")" : "");
    } catch (_) { /* not JSON */ }
    const e = new Error(msg);
    e.status = resp.status;
    throw e;
  }
  return resp;
}

function imageForm(extra) {
  const f = new FormData();
  f.append("image", state.file, state.file.name || "image");
  for (const [k, v] of Object.entries(extra || {})) if (v !== null && v !== undefined) f.append(k, String(v));
  return f;
}

// ---- status, errors, progress ----------------------------------------------------------------------------
function showError(text) { $("error").textContent = text; }
function addError(text) { $("error").textContent += ($("error").textContent ? "\n" : "") + text; }
function setStatus(text) { $("status").textContent = text; }
function begin() { state.busy += 1; $("progress").hidden = false; $("run").disabled = true; document.body.setAttribute("aria-busy", "true"); }
function end() {
  state.busy -= 1;
  if (state.busy <= 0) {
    state.busy = 0; $("progress").hidden = true; $("run").disabled = !state.file;
    document.body.removeAttribute("aria-busy");
  }
}

// ---- methods, from the registry --------------------------------------------------------------------------
async function loadMethods() {
  try {
    const [methods, models] = await Promise.all([(await api("/methods")).json(), (await api("/models")).json()]);
    state.methods = methods.methods;
    if (models.models.length) $("model-name").textContent = models.models[0].name;
    let first = true;
    for (const m of state.methods) {
      const box = $(m.kind === "bottom-up" ? "bottom-up" : "explanation");
      const label = document.createElement("label");
      const input = document.createElement("input");
      input.type = "checkbox"; input.name = "method"; input.value = m.name; input.dataset.kind = m.kind;
      if (m.kind === "bottom-up" && first) { input.checked = true; first = false; }
      label.title = m.description + "\n" + m.paper;
      label.append(input, " " + m.name);
      box.append(label);
    }
  } catch (err) {
    showError("Could not list the methods: " + err.message);
  }
}

function selectedMethods() {
  return [...document.querySelectorAll("input[name=method]:checked")].map((i) => ({ name: i.value, kind: i.dataset.kind }));
}

// ---- the image ---------------------------------------------------------------------------------------------
function setFile(blob) {
  if (!blob) return;
  if (blob.type && !blob.type.startsWith("image/")) { showError("That file is not an image (" + blob.type + ")."); return; }
  state.file = blob; state.target = null;
  $("file-name").textContent = (blob.name || "pasted image") + " (" + Math.round(blob.size / 1024) + " KiB)";
  showError(""); setStatus("");
  const img = new Image();
  img.onload = () => {
    state.original = img;
    $("maps").replaceChildren(); state.cards.clear();
    $("itti").replaceChildren(); $("classes").hidden = true; $("top5").replaceChildren(); $("target-note").textContent = "";
    const fig = figure("original", "Original (" + img.naturalWidth + " × " + img.naturalHeight + ")");
    const c = fig.querySelector("canvas");
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    c.getContext("2d").drawImage(img, 0, 0);
    c.setAttribute("aria-label", "the original image");
    $("maps").append(fig);
    $("run").disabled = false; $("itti-button").disabled = false;
  };
  img.onerror = () => showError("The browser cannot show this image; it may still work: press Compute maps.");
  img.src = URL.createObjectURL(blob);
  $("run").disabled = false;
}

// ---- cards -------------------------------------------------------------------------------------------------
function figure(key, caption, downloadable) {
  const fig = document.createElement("figure");
  fig.dataset.key = key;
  const canvas = document.createElement("canvas");
  canvas.setAttribute("role", "img");
  const cap = document.createElement("figcaption");
  const text = document.createElement("span");
  text.className = "caption"; text.textContent = caption;
  cap.append(text);
  if (downloadable) {
    const b = document.createElement("button");
    b.type = "button"; b.className = "secondary download"; b.textContent = "Download PNG";
    b.setAttribute("aria-label", "download the " + key + " map as PNG");
    b.addEventListener("click", () => download(canvas, key));
    cap.append(b);
  }
  fig.append(canvas, cap);
  return fig;
}

function download(canvas, key) {
  canvas.toBlob((blob) => {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = "salience-" + key.replace(/[^a-z0-9-]+/gi, "_") + ".png";
    document.body.append(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  }, "image/png");
}

function jet(t) {
  const c = (x) => Math.max(0, Math.min(1, x));
  return [c(1.5 - Math.abs(4 * t - 3)) * 255, c(1.5 - Math.abs(4 * t - 2)) * 255, c(1.5 - Math.abs(4 * t - 1)) * 255];
}

function heatCanvas(gray, w, h) {
  const tmp = document.createElement("canvas"); tmp.width = w; tmp.height = h;
  const ctx = tmp.getContext("2d");
  ctx.drawImage(gray, 0, 0, w, h);
  const d = ctx.getImageData(0, 0, w, h);
  for (let i = 0; i < d.data.length; i += 4) {
    const [r, g, b] = jet(d.data[i] / 255);
    d.data[i] = r; d.data[i + 1] = g; d.data[i + 2] = b; d.data[i + 3] = 255;
  }
  ctx.putImageData(d, 0, 0);
  return tmp;
}

function view() { return document.querySelector("input[name=view]:checked").value; }
function opacity() { return Number($("opacity").value) / 100; }

function draw(card) {
  const { canvas, gray } = card;
  const w = state.original ? state.original.naturalWidth : gray.width;
  const h = state.original ? state.original.naturalHeight : gray.height;
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext("2d");
  ctx.globalAlpha = 1;
  if (view() === "overlay" && state.original) {
    if (!card.heat) card.heat = heatCanvas(gray, w, h);
    ctx.drawImage(state.original, 0, 0, w, h);
    ctx.globalAlpha = opacity();
    ctx.drawImage(card.heat, 0, 0, w, h);
    ctx.globalAlpha = 1;
  } else {
    ctx.drawImage(gray, 0, 0, w, h);
  }
}

function redrawAll() { for (const card of state.cards.values()) draw(card); }

function cardFor(name, kind) {
  let card = state.cards.get(name);
  if (!card) {
    const fig = figure(name, name, true);
    fig.dataset.kind = kind;
    $("maps").append(fig);
    card = { fig, canvas: fig.querySelector("canvas"), gray: null, heat: null, kind };
    state.cards.set(name, card);
  }
  return card;
}

// ---- computing ---------------------------------------------------------------------------------------------
async function computeMap(m) {
  const card = cardFor(m.name, m.kind);
  card.fig.classList.add("pending");
  card.fig.setAttribute("aria-busy", "true");
  const fields = { method: m.name, output: "gray" };
  if (m.kind !== "bottom-up") fields.target = state.target === null ? "top1" : state.target;
  try {
    const resp = await api("/map", imageForm(fields));
    const blob = await resp.blob();
    card.gray = await createImageBitmap(blob);
    card.heat = null;
    const targetName = resp.headers.get("X-Salience-Target-Name");
    const caption = m.name + (targetName ? " · class: " + targetName : "");
    card.fig.querySelector(".caption").textContent = caption;
    card.canvas.setAttribute("aria-label", m.name + " saliency map" + (targetName ? " explaining " + targetName : ""));
    card.fig.dataset.target = resp.headers.get("X-Salience-Target") || "";
    draw(card);
    card.fig.dataset.ready = String(Number(card.fig.dataset.ready || 0) + 1);
  } catch (err) {
    addError(m.name + ": " + err.message);
    if (!card.gray) { card.fig.remove(); state.cards.delete(m.name); }  // nothing to show or download
    else card.fig.querySelector(".caption").textContent = m.name + " · failed: the previous map is shown";
  } finally {
    card.fig.classList.remove("pending");
    card.fig.removeAttribute("aria-busy");
  }
}

async function computeScanpath(method) {
  const n = Math.max(1, Math.min(20, Number($("scanpath-n").value) || 5));
  try {
    const r = await (await api("/scanpath", imageForm({ method, n }))).json();
    let fig = $("maps").querySelector("figure[data-key=scanpath]");
    if (!fig) { fig = figure("scanpath", "", true); $("maps").append(fig); }
    fig.querySelector(".caption").textContent = "scanpath (" + method + ")";
    const c = fig.querySelector("canvas");
    const w = state.original.naturalWidth, h = state.original.naturalHeight;
    c.width = w; c.height = h;
    const ctx = c.getContext("2d");
    ctx.drawImage(state.original, 0, 0);
    const rad = Math.max(6, Math.min(w, h) / 16);
    ctx.lineWidth = Math.max(2, rad / 5);
    ctx.strokeStyle = "#ffd400"; ctx.fillStyle = "rgba(0,0,0,0.55)";
    ctx.beginPath();
    r.points.forEach((p, i) => (i ? ctx.lineTo(p.x, p.y) : ctx.moveTo(p.x, p.y)));
    ctx.stroke();
    ctx.font = "bold " + Math.round(rad * 1.1) + "px system-ui, sans-serif";
    ctx.textAlign = "center"; ctx.textBaseline = "middle";
    for (const p of r.points) {
      ctx.beginPath(); ctx.arc(p.x, p.y, rad, 0, 2 * Math.PI); ctx.fill(); ctx.stroke();
      ctx.fillStyle = "#ffd400"; ctx.fillText(String(p.rank), p.x, p.y); ctx.fillStyle = "rgba(0,0,0,0.55)";
    }
    c.setAttribute("aria-label", "scanpath: " + r.points.map((p) => p.rank + " at (" + p.x + ", " + p.y + ")").join("; "));
  } catch (err) {
    addError("scanpath: " + err.message);
  }
}

async function computeClasses() {
  try {
    const r = await (await api("/classify", imageForm({ k: 5 }))).json();
    const ol = $("top5");
    ol.replaceChildren();
    for (const c of r.classes) {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button"; b.dataset.index = c.index;
      b.textContent = c.name + " — " + (100 * c.probability).toFixed(1) + "%";
      b.setAttribute("aria-pressed", String(state.target === null ? c === r.classes[0] : state.target === c.index));
      b.addEventListener("click", () => explainClass(c.index, c.name));
      li.append(b); ol.append(li);
    }
    $("classes").hidden = false;
  } catch (err) {
    addError("top-5 classes: " + err.message);
  }
}

async function explainClass(index, name) {
  state.target = index;
  for (const b of $("top5").querySelectorAll("button")) b.setAttribute("aria-pressed", String(Number(b.dataset.index) === index));
  const expl = selectedMethods().filter((m) => m.kind !== "bottom-up");
  if (!expl.length) { $("target-note").textContent = "Select a model explanation to explain " + name + "."; return; }
  $("target-note").textContent = "Explaining " + name + "…";
  showError(""); begin();
  setStatus("Explaining " + name + " with " + expl.map((m) => m.name).join(", ") + "…");
  try {
    await Promise.all(expl.map(computeMap));
    $("target-note").textContent = "Explaining: " + name;
    setStatus("Done.");
  } finally { end(); }
}

async function run() {
  if (!state.file) { showError("Choose an image first."); return; }
  const chosen = selectedMethods();
  if (!chosen.length) { showError("Choose at least one method."); return; }
  showError(""); begin();
  const t0 = performance.now();
  setStatus("Computing " + chosen.map((m) => m.name).join(", ") + "…");
  for (const [name, card] of state.cards) if (!chosen.some((m) => m.name === name)) { card.fig.remove(); state.cards.delete(name); }
  const jobs = chosen.map(computeMap);
  const bottomUp = chosen.find((m) => m.kind === "bottom-up");
  if ($("want-scanpath").checked) jobs.push(computeScanpath(bottomUp ? bottomUp.name : "itti"));
  if ($("want-classes").checked) jobs.push(computeClasses());
  try {
    await Promise.all(jobs);
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    setStatus($("error").textContent ? "Finished in " + secs + " s, with errors (below)." : "Done in " + secs + " s.");
  } finally { end(); }
}

async function showItti() {
  if (!state.file) { showError("Choose an image first."); return; }
  begin(); setStatus("Computing the Itti-Koch feature and conspicuity maps…");
  try {
    const r = await (await api("/itti", imageForm({}))).json();
    const box = $("itti"); box.replaceChildren();
    const group = (title, items) => {
      const h = document.createElement("h3"); h.textContent = title;
      const grid = document.createElement("div"); grid.className = "grid small";
      for (const m of items) {
        const fig = document.createElement("figure");
        const img = document.createElement("img");
        img.src = "data:image/png;base64," + m.png; img.alt = m.name + " (" + m.width + " × " + m.height + ")";
        const cap = document.createElement("figcaption"); cap.textContent = m.name;
        fig.append(img, cap); grid.append(fig);
      }
      box.append(h, grid);
    };
    group("Conspicuity maps", r.conspicuity);
    group("Feature maps (centre-surround, " + r.features.length + ")", r.features);
    setStatus("Itti-Koch maps shown.");
  } catch (err) {
    addError("Itti maps: " + err.message);
  } finally { end(); }
}

// ---- wiring ------------------------------------------------------------------------------------------------
function init() {
  $("file").addEventListener("change", (e) => setFile(e.target.files[0]));
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault(); drop.classList.remove("over");
    if (e.dataTransfer.files.length) setFile(e.dataTransfer.files[0]);
  });
  document.addEventListener("paste", (e) => {
    const item = [...(e.clipboardData ? e.clipboardData.items : [])].find((i) => i.type.startsWith("image/"));
    if (item) setFile(item.getAsFile());
  });
  $("run").addEventListener("click", run);
  $("itti-button").addEventListener("click", showItti);
  for (const r of document.querySelectorAll("input[name=view]")) r.addEventListener("change", redrawAll);
  $("opacity").addEventListener("input", () => {
    $("opacity-value").textContent = $("opacity").value + "%";
    if (view() !== "overlay") document.querySelector("input[name=view][value=overlay]").checked = true;
    redrawAll();
  });
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem("salience-token", $("token").value);
    $("token-form").hidden = true; showError("");
    if (!state.methods.length) loadMethods();
  });
  loadMethods();
}

document.addEventListener("DOMContentLoaded", init);
