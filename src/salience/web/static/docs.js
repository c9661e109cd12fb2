// Interactive API docs drawn from /openapi.json, with nothing loaded from another host.
"use strict";

function el(tag, props, ...kids) {
  const e = document.createElement(tag);
  Object.assign(e, props || {});
  for (const k of kids) e.append(k);
  return e;
}

function resolve(doc, schema) {
  while (schema && schema.$ref) schema = schema.$ref.split("/").slice(1).reduce((o, k) => o[k], doc);
  return schema || {};
}

function authHeaders() {
  const t = sessionStorage.getItem("salience-token");
  return t ? { Authorization: "Bearer " + t } : {};
}

async function tryIt(path, method, form, out) {
  out.textContent = "…";
  const init = { method: method.toUpperCase(), headers: authHeaders() };
  let url = path;
  if (init.method === "GET") {
    const q = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v !== "") q.append(k, v);
    if ([...q].length) url += "?" + q;
  } else {
    const fd = new FormData();
    for (const [k, v] of new FormData(form)) if (!(v instanceof File && !v.size) && v !== "") fd.append(k, v);
    init.body = fd;
  }
  const resp = await fetch(url, init);
  const type = resp.headers.get("content-type") || "";
  out.replaceChildren();
  out.append(el("p", { textContent: resp.status + " " + resp.statusText + " · " + type }));
  if (type.startsWith("image/")) {
    out.append(el("img", { src: URL.createObjectURL(await resp.blob()), alt: "response image" }));
  } else {
    const text = await resp.text();
    let shown = text;
    try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (_) { /* text */ }
    out.append(el("pre", { textContent: shown.length > 20000 ? shown.slice(0, 20000) + "\n…" : shown }));
  }
}

function fieldsFor(doc, op) {
  const fields = [];
  for (const p of op.parameters || []) fields.push({ name: p.name, schema: resolve(doc, p.schema), required: p.required, description: p.description || "" });
  const body = op.requestBody && op.requestBody.content && op.requestBody.content["multipart/form-data"];
  if (body) {
    const s = resolve(doc, body.schema);
    for (const [name, sub] of Object.entries(s.properties || {})) {
      fields.push({ name, schema: resolve(doc, sub), required: (s.required || []).includes(name), description: sub.description || "" });
    }
  }
  return fields;
}

function isFile(schema) {
  if (schema.format === "binary" || schema.contentMediaType) return true;
  return (schema.anyOf || []).some(isFile);
}

async function main() {
  const box = document.getElementById("endpoints");
  const resp = await fetch("/openapi.json", { headers: authHeaders() });
  if (!resp.ok) { box.textContent = "Could not read /openapi.json (" + resp.status + ")."; return; }
  const doc = await resp.json();
  box.replaceChildren();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const sec = el("section", {});
      sec.append(el("h2", { textContent: method.toUpperCase() + " " + path }), el("p", { textContent: op.summary || "" }));
      const form = el("form", {});
      for (const f of fieldsFor(doc, op)) {
        const id = (method + path + "-" + f.name).replace(/[^a-z0-9]/gi, "-");
        const input = isFile(f.schema) ? el("input", { type: "file", name: f.name, id })
          : el("input", { type: "text", name: f.name, id, value: f.schema.default !== undefined && f.schema.default !== null ? String(f.schema.default) : "" });
        form.append(el("p", {}, el("label", { htmlFor: id, textContent: f.name + (f.required ? " (required)" : "") + (f.description ? ": " + f.description : "") + " " }), input));
      }
      const out = el("div", { className: "response" });
      const button = el("button", { type: "submit", textContent: "Send " + method.toUpperCase() + " " + path });
      form.append(button);
      form.addEventListener("submit", (e) => { e.preventDefault(); tryIt(path, method, form, out).catch((err) => { out.textContent = String(err); }); });
      const codes = Object.entries(op.responses || {}).map(([c, r]) => c + ": " + (r.description || "") + " [" + Object.keys(r.content || {}).join(", ") + "]");
      sec.append(form, el("p", { className: "muted", textContent: "Responses: " + codes.join(" · ") }), out);
      box.append(sec);
    }
  }
}

document.addEventListener("DOMContentLoaded", () => main().catch((err) => { document.getElementById("endpoints").textContent = String(err); }));
