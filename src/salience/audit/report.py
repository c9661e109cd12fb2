"""The HTML report of a data-set audit (:func:`salience.audit.dataset.audit_dataset`): one self-contained file.

Everything is inline: the style sheet in a ``<style>`` element, every picture a ``data:image/png;base64``
URI, the eigengap spectra inline SVG.  The page loads nothing from another host (and runs no script), so it
can be mailed or archived as one file; its only links are relative ones to the tables beside it.

>>> import numpy as np
>>> uri = png_data_uri(np.zeros((2, 3), np.uint8))
>>> uri.startswith("data:image/png;base64,")
True
"""

from __future__ import annotations

import base64
import html
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from .dataset import SPOT_BOX

__all__ = ["write_report", "png_data_uri", "eigengap_svg"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:1.5em auto;max-width:1200px;
color:#222;line-height:1.4;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}h3{margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.88em}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:right}th{background:#f3f3f3}
td.l,th.l{text-align:left}
.note{background:#fff7e0;border-left:4px solid #e0a800;padding:.4em .8em;margin:.5em 0}
.finding{background:#fdecea;border-left:4px solid #d33;padding:.4em .8em;margin:.5em 0}
.row{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start}
figure{margin:0;text-align:center;font-size:.8em}figure img{display:block;image-rendering:pixelated}
.sheet{display:flex;flex-wrap:wrap;gap:3px;max-width:560px}.sheet img{image-rendering:auto}
.muted{color:#777}code{background:#f3f3f3;padding:0 .2em}
"""


def png_data_uri(array: np.ndarray) -> str:
    """A uint8 ``(H, W)`` or ``(H, W, 3)`` array as a ``data:image/png;base64,...`` URI."""
    from ..io import encode_png

    return "data:image/png;base64," + base64.b64encode(encode_png(np.ascontiguousarray(array))).decode("ascii")


def _heat(m: np.ndarray, side: int) -> np.ndarray:
    import cv2

    from ..viz import colorize

    rgb = colorize(np.asarray(m, dtype=np.float64), "jet")
    return cv2.resize(rgb, (side, side), interpolation=cv2.INTER_NEAREST if m.shape[0] < side else cv2.INTER_AREA)


def _img(array: np.ndarray, caption: str = "", title: str = "") -> str:
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    t = f' title="{html.escape(title)}"' if title else ""
    return f'<figure><img src="{png_data_uri(array)}" alt="{html.escape(caption or title)}"{t}>{cap}</figure>'


def _thumb(path: str, evidence: np.ndarray | None, side: int = 128) -> np.ndarray | None:
    """The image (decoded at a reduced size) with the evidence over it, longest side ``side``."""
    import cv2
    from PIL import Image

    from ..viz import overlay

    try:
        with Image.open(path) as im:
            im.draft("RGB", (side * 2, side * 2))  # JPEG: decode at a fraction of the size
            rgb = np.asarray(im.convert("RGB"))
    except Exception:
        return None
    h, w = rgb.shape[:2]
    s = side / max(h, w)
    rgb = cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    if evidence is None:
        return rgb
    return overlay(rgb, np.asarray(evidence, np.float32), alpha=0.45, resize=True)


def eigengap_svg(eigenvalues: np.ndarray, chosen: int, *, width: int = 260, height: int = 120) -> str:
    """Inline SVG of the smallest eigenvalues (bars) with the chosen number of clusters marked: the gap
    after bar ``chosen`` is the largest."""
    ev = np.asarray(eigenvalues, dtype=np.float64)
    k = len(ev)
    if k == 0:
        return ""
    top = max(float(ev.max()), 1e-9)
    bw = (width - 30) / k
    parts = [f'<svg width="{width}" height="{height + 30}" '
             f'role="img" aria-label="eigenvalues">']
    for i, v in enumerate(ev):
        bh = (height - 10) * float(v) / top
        x = 25 + i * bw
        colour = "#d33" if i < chosen else "#4a7ebb"
        parts.append(f'<rect x="{x + 1:.1f}" y="{height - bh:.1f}" width="{max(1.0, bw - 2):.1f}" '
                     f'height="{bh:.1f}" fill="{colour}"><title>lambda_{i} = {v:.4f}</title></rect>')
        parts.append(f'<text x="{x + bw / 2:.1f}" y="{height + 12}" font-size="9" text-anchor="middle">{i}</text>')
    parts.append(f'<line x1="24" y1="{height}" x2="{width - 4}" y2="{height}" stroke="#444"/>')
    parts.append(f'<text x="2" y="10" font-size="9">{top:.2f}</text><text x="10" y="{height}" font-size="9">0</text>')
    parts.append(f'<text x="{width / 2:.0f}" y="{height + 26}" font-size="10" text-anchor="middle">'
                 f'eigenvalues of the Laplacian; {chosen} cluster(s) (red) before the largest gap</text></svg>')
    return "".join(parts)


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if math.isnan(v):
            return "&ndash;"
        return f"{v:.{digits}f}"
    return html.escape(str(v))


def _table(rows: list[dict[str, Any]], cols: list[str], headers: list[str] | None = None,
           left: tuple[str, ...] = ("method", "group", "pred_name", "image", "score", "worst_group",
                                    "best_group", "kind", "metric", "direction", "dataset")) -> str:
    if not rows:
        return ""
    hs = headers or cols
    out = ["<table><tr>" + "".join(f'<th class="{"l" if c in left else ""}">{html.escape(h)}</th>'
                                   for c, h in zip(cols, hs)) + "</tr>"]
    for r in rows:
        out.append("<tr>" + "".join(f'<td class="{"l" if c in left else ""}">{_fmt(r.get(c))}</td>'
                                    for c in cols) + "</tr>")
    out.append("</table>")
    return "".join(out)


def _rel_link(path: Path, out: Path) -> str:
    rel = os.path.relpath(path, out)
    return f'<a href="{html.escape(rel)}">{html.escape(rel)}</a>'


def _spot_words(x: float, y: float) -> str:
    """Where a point (fractions of the width / height) lies, in thirds of the image: "at the top-left",
    "at the top", ..., "in the centre"."""
    v = "top" if y < 1 / 3 else ("bottom" if y > 2 / 3 else "")
    hz = "left" if x < 1 / 3 else ("right" if x > 2 / 3 else "")
    words = "-".join(p for p in (v, hz) if p)
    return f"at the {words}" if words else "in the centre"


def _class_section(audit: Any, key: tuple[str, int], c: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    method, cls = key
    n_ex = int(audit.options.get("n_examples", 3))
    parts = [f'<h3 id="{html.escape(method)}-{cls}">{html.escape(str(c["pred_name"]))} '
             f'<span class="muted">(class {cls}, {c["n"]} image(s), {html.escape(method)})</span></h3>']
    parts.append('<div class="row">')
    parts.append(_img(_heat(audit.class_maps[key], 160), "mean explanation map"))
    stats = (f'<table><tr><th class="l">centre of mass</th><td>x {_fmt(c["com_x_mean"])}, '
             f'y {_fmt(c["com_y_mean"])}</td></tr><tr><th class="l">spread (sd x, sd y)</th>'
             f'<td>{_fmt(c["com_sd_x"])}, {_fmt(c["com_sd_y"])}</td></tr><tr><th class="l">evidence near the border'
             f'</th><td>{_fmt(c.get("border_share"))} (uniform map: {_fmt(rows[0]["border_area"])})</td></tr>')
    for s, label in (("pointing", "pointing game"), ("energy_pointing", "energy pointing game"),
                     ("outside_share", "evidence outside the object")):
        if s in c:
            stats += f'<tr><th class="l">{label}</th><td>{_fmt(c[s])}</td></tr>'
    parts.append(stats + "</table></div>")
    if n_ex and len(rows) > 1:
        ok = [r for r in rows if not math.isnan(r["border_share"])]
        picks = [("most evidence near the border", sorted(ok, key=lambda r: -r["border_share"])[:n_ex], "border_share"),
                 ("least evidence near the border", sorted(ok, key=lambda r: r["border_share"])[:n_ex], "border_share"),
                 ("centre of mass farthest from the class's", sorted(rows, key=lambda r: -r["com_dev"])[:n_ex],
                  "com_dev")]
        for label, chosen, col in picks:
            figs = []
            for r in chosen:
                t = _thumb(r["input"], audit.small.get((method, r["image"])))
                if t is not None:
                    figs.append(_img(t, f'{r["image"]} ({col.replace("_", " ")} {r[col]:.2f})'))
            if figs:
                parts.append(f'<p class="muted">{label}:</p><div class="row">{"".join(figs)}</div>')
    res = audit.spray.get(key)
    if res is not None:
        parts.append(_spray_section(audit, key, res, rows))
    return "".join(parts)


def _spray_section(audit: Any, key: tuple[str, int], res: Any, rows: list[dict[str, Any]]) -> str:
    method, _ = key
    members = audit.members[key]
    by_rel = {r["image"]: r for r in rows}
    n = len(members)
    parts = [f'<h4>SpRAy: {res.n_clusters} cluster(s)</h4><div class="row">'
             f'{eigengap_svg(res.eigenvalues, res.n_clusters)}</div>']
    if res.n_clusters > 1:
        # the sentences a user looks for: a cluster whose evidence sits in one place the class's other images
        # hardly use (a watermark, a stamp, a tag), or a smaller cluster whose evidence sits near the border
        for c in audit.tables.get("clusters", []):
            if c["method"] == method and c["pred_class"] == key[1] and c.get("candidate_shortcut"):
                also = c.get("same_spot") or ""
                also = f" (as does cluster {', '.join(also.split())})" if also else ""
                parts.append(f'<p class="finding">Cluster {c["cluster"]} ({c["size"]} of {n} images) puts '
                             f'{c["spot_share"]:.0%} of its evidence in one spot '
                             f'{_spot_words(c["spot_x"], c["spot_y"])} '
                             f'(x {c["spot_x"]:.2f}, y {c["spot_y"]:.2f}){also}, where the images of the clusters '
                             f'that look elsewhere put {c["rest_spot_share"]:.0%} of theirs (a uniform map: '
                             f'{SPOT_BOX ** 2:.0%}): a candidate shortcut (a stamp, watermark or tag the model relies '
                             'on); look at its members below.</p>')
        for k in range(1, res.n_clusters):
            idx = np.asarray(res.members(k))
            inside = set(idx.tolist())
            bs = [by_rel[members[i]]["border_share"] for i in idx]
            others = [by_rel[members[i]]["border_share"] for i in range(n) if i not in inside]
            if bs and others and np.nanmean(bs) > np.nanmean(others) + 0.15:
                parts.append(f'<p class="finding">Cluster {k} ({len(idx)} of {n} images) puts '
                             f'{np.nanmean(bs):.0%} of its evidence near the border, the other images '
                             f'{np.nanmean(others):.0%}: a candidate shortcut; look at its members below.</p>')
    for k in range(res.n_clusters):
        idx = np.asarray(res.members(k)).tolist()
        sheet = []
        for i in idx[:24]:
            r = by_rel[members[i]]
            t = _thumb(r["input"], audit.small.get((method, r["image"])), side=72)
            if t is not None:
                sheet.append(f'<img src="{png_data_uri(t)}" alt="{html.escape(r["image"])}" '
                             f'title="{html.escape(r["image"])}">')
        more = f'<span class="muted">&hellip; and {len(idx) - 24} more</span>' if len(idx) > 24 else ""
        mean = _img(_heat(res.mean_maps[k], 112), f"cluster {k}: {len(idx)} image(s) ({len(idx) / n:.0%})")
        parts.append(f'<div class="row"><div>{mean}</div><div class="sheet">{"".join(sheet)}{more}</div></div>')
    return "".join(parts)


def write_report(audit: Any, path: str | os.PathLike) -> Path:
    """Write the report of ``audit`` (a :class:`~salience.audit.dataset.DatasetAudit`) to ``path``
    atomically; returns the path."""
    from ..io import atomic_write_bytes

    out = Path(audit.out)
    t = audit.tables
    images = t.get("images", [])
    ok = [r for r in images if r["status"] == "ok"]
    failed = [r for r in images if r["status"] != "ok"]
    title = "Data-set audit: " + ", ".join(audit.methods) + (f" on {audit.model}" if audit.model else "")
    body = [f"<h1>{html.escape(title)}</h1>"]
    n_img = len({r["image"] for r in images})
    batch = "; ".join(f'{m}: {b["done"]} map(s) computed now, {b["skipped"]} done before, {b["failed"]} failed'
                      for m, b in audit.batch.items())
    body.append(f"<p>{n_img} image(s) from {html.escape(', '.join(audit.options.get('inputs', [])[:3]))}"
                f"{' &hellip;' if len(audit.options.get('inputs', [])) > 3 else ''}. Batch runs (in "
                f"<code>maps/</code>): {html.escape(batch)}. Evidence: each map minus its minimum, scaled to "
                f"[0, 1]; near the border: within {audit.options.get('border', 0.1):.0%} of the width or "
                "height of an edge. Explanations are of the top-1 (predicted) class.</p>")
    links = [_rel_link(p, out) for name, p in audit.files.items() if name != "report"]
    if links:
        body.append("<p>Tables: " + ", ".join(links) + "</p>")
    for note in audit.notes:
        body.append(f'<p class="note">{html.escape(note)}</p>')
    if failed:
        body.append(f'<p class="note">{len(failed)} image/method pair(s) failed; the first: '
                    f'{html.escape(str(failed[0]["input"]))}: {html.escape(str(failed[0]["error"]))}</p>')
    for method in audit.methods:
        classes = [c for c in t.get("classes", []) if c["method"] == method]
        body.append(f"<h2>{html.escape(method)}: per predicted class</h2>")
        cols = ["pred_name", "pred_class", "n", "com_x_mean", "com_y_mean", "com_spread", "border_share"]
        cols += [c for c in ("pointing", "energy_pointing", "outside_share") if classes and c in classes[0]]
        cols += ["n_clusters"]
        body.append(_table(classes, cols, ["class", "index", "images", "COM x", "COM y", "COM spread",
                                           "border share"] + cols[7:]))
        shown = classes[: int(audit.options.get("report_classes", 20))]
        if len(classes) > len(shown):
            body.append(f'<p class="muted">Sections for the {len(shown)} largest of {len(classes)} classes; the '
                        "tables hold them all.</p>")
        by: dict[int, list[dict[str, Any]]] = {}
        for r in ok:
            if r["method"] == method:
                by.setdefault(int(r["pred_class"]), []).append(r)
        for c in shown:
            key = (method, int(c["pred_class"]))
            if key in audit.class_maps:
                body.append(_class_section(audit, key, c, by[int(c["pred_class"])]))
    if t.get("groups"):
        body.append("<h2>Per group</h2>")
        g = t["groups"]
        body.append(_table(g, list(g[0])))
        body.append("<h3>The worst group per score</h3>")
        body.append(_table(t.get("worst_groups", []), ["method", "score", "direction", "worst_group", "worst",
                                                       "best_group", "best", "gap"]))
    if t.get("fixations"):
        fx = t["fixations"]
        body.append("<h2>Plausibility: the maps as predictions of where people look</h2>")
        body.append(f'<p>Data set {html.escape(str(fx[0]["dataset"]))}, '
                    f'{audit.options.get("fixation_images", "?")} image(s); mean and 95 % interval over images. '
                    "The learned fixation model and the centre bias are scored on the same images.</p>")
        metrics = list(dict.fromkeys(r["metric"] for r in fx))
        rows = []
        for m in dict.fromkeys(r["method"] for r in fx):
            mine = {r["metric"]: r for r in fx if r["method"] == m}
            row: dict[str, Any] = {"method": m, "kind": next(iter(mine.values()))["kind"]}
            for mt in metrics:
                s = mine.get(mt)
                row[mt] = "" if s is None else f'{s["mean"]:.3f} [{s["low"]:.3f}, {s["high"]:.3f}]'
            rows.append(row)
        body.append(_table(rows, ["method", "kind"] + metrics,
                           left=("method", "kind", *metrics)))
    secs = ", ".join(f"{k} {v:.1f} s" for k, v in audit.seconds.items() if k != "report")
    body.append(f'<p class="muted">Made by salience audit-dataset ({html.escape(secs)}).</p>')
    page = ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>"
            f"{html.escape(title)}</title><style>{_CSS}</style></head><body>{''.join(body)}</body></html>")
    return atomic_write_bytes(path, page.encode("utf-8"), overwrite=True)
