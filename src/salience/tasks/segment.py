"""Salient-object masks and boxes from any saliency map or explanation.

:func:`segment` turns a map into a binary mask (Otsu, a fixed threshold, or the adaptive threshold
``min(2 mean, 1)`` of the salient-object literature), optionally refines it with GrabCut on the image
initialised from the map (the SaliencyCut scheme of Cheng et al.), and returns the connected components as
boxes ranked by the saliency mass they hold, with a minimum area and non-maximum suppression.

:func:`evidence_box` is weakly supervised localisation: the box around the strongest evidence an
explanation method finds for a class (the rule of Zhou et al.'s CAM paper: the largest region above 20% of
the map's peak).

Boxes are integer pixel edges ``(x0, y0, x1, y1)`` with ``x1``, ``y1`` exclusive, so ``image[y0:y1, x0:x1]``
is the box's content.

>>> import numpy as np
>>> from salience.tasks.segment import segment
>>> img = np.full((60, 80, 3), 0.5, np.float32); img[20:40, 30:55] = (1.0, 0.0, 0.0)
>>> seg = segment(img, "frequency-tuned")
>>> b = seg.boxes[0]; (b.x0, b.y0, b.x1, b.y1)
(30, 20, 55, 40)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from ..errors import InputError
from ..registry import EXPLANATION, get_method
from ._maps import Rect, image_and_map, to_u8

__all__ = ["Box", "Segmentation", "segment", "evidence_box", "mask_from_map", "boxes_from_mask",
           "grabcut_refine", "draw_segmentation", "box_iou", "THRESHOLDS"]

#: Named thresholds of :func:`mask_from_map` (a number in [0, 1] is a fixed threshold).
THRESHOLDS = ("otsu", "adaptive")

#: The CAM paper's localisation threshold: 20% of the map's peak (Zhou et al., CVPR 2016).
CAM_FRACTION = 0.2


@dataclass(frozen=True)
class Box(Rect):
    """One box: pixel edges ``x0 <= x < x1``, ``y0 <= y < y1``; ``score`` = the share of the map's total
    saliency mass inside the component (0..1); ``area`` = the component's pixel count.

    >>> b = Box(5, 5, 9, 9, score=0.75, area=16)
    >>> b.width, b.height, b.as_tuple()
    (4, 4, (5, 5, 9, 9, 0.75))
    """

    area: int = 0

    def as_tuple(self) -> tuple[int, int, int, int, float]:
        return (self.x0, self.y0, self.x1, self.y1, self.score)

    def as_dict(self) -> dict[str, Any]:
        return {"x0": self.x0, "y0": self.y0, "x1": self.x1, "y1": self.y1, "score": self.score,
                "area": self.area}


@dataclass
class Segmentation:
    """What :func:`segment` returns.

    Attributes
    ----------
    mask: bool ``(H, W)``, True on the salient object(s).
    boxes: the connected components' boxes, best (most saliency mass) first.
    saliency: float64 ``(H, W)``, the map normalised to ``[0, 1]``.
    threshold: the threshold applied to ``saliency`` (in ``[0, 1]``).
    method: the registry name of the map's method (``"given"`` for a precomputed map).
    refined: True when GrabCut changed the mask.
    """

    mask: np.ndarray
    boxes: list[Box]
    saliency: np.ndarray
    threshold: float
    method: str
    refined: bool = False
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        h, w = self.mask.shape
        return {"method": self.method, "width": w, "height": h, "threshold": self.threshold,
                "grabcut": self.refined, "mask_fraction": float(self.mask.mean()),
                "boxes": [b.as_dict() for b in self.boxes], "notes": list(self.notes)}


def _number(v: Any, name: str, lo: float, hi: float) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
        raise InputError(f"{name} must be a number in [{lo}, {hi}], got {v!r}")
    return float(v)


def mask_from_map(saliency: np.ndarray, threshold: str | float = "adaptive") -> tuple[np.ndarray, float]:
    """Binary mask of a map in ``[0, 1]`` and the threshold used.

    ``"otsu"``: Otsu's threshold (N. Otsu, "A threshold selection method from gray-level histograms",
    IEEE SMC 1979) on the map quantised to 256 levels; ``"adaptive"``: ``min(2 mean, 1)`` (Achanta et al.,
    CVPR 2009); a number ``t`` in ``[0, 1]``: fixed.  The mask is ``saliency >= t`` (``> t`` for Otsu,
    whose threshold is the last level of the background class).  A constant map carries no information
    and gives an empty mask whatever the threshold.

    >>> m, t = mask_from_map(np.array([[0.0, 0.1, 0.9, 1.0]]), "otsu"); m.tolist()
    [[False, False, True, True]]
    """
    s = np.asarray(saliency, dtype=np.float64)
    blank = float(s.max()) == float(s.min())
    if isinstance(threshold, str):
        key = threshold.strip().lower()
        if key == "adaptive":
            if blank:
                return np.zeros(s.shape, bool), 1.0
            t = min(2.0 * float(s.mean()), 1.0)
            return s >= t, t
        if key == "otsu":
            q = np.floor(np.clip(s, 0, 1) * 255.0 + 0.5).astype(np.uint8)
            if q.min() == q.max():
                return np.zeros(s.shape, bool), 1.0
            level, _ = cv2.threshold(q, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
            return q > level, float(level) / 255.0
        raise InputError(f"threshold must be otsu, adaptive or a number in [0, 1], got {threshold!r}")
    t = _number(threshold, "threshold", 0.0, 1.0)
    return (np.zeros(s.shape, bool) if blank else s >= t), t


def box_iou(a: Any, b: Any) -> float:
    """Intersection over union of two boxes ``(x0, y0, x1, y1, ...)`` (pixel edges, x1/y1 exclusive).

    >>> box_iou((0, 0, 10, 10), (5, 0, 15, 10))
    0.3333333333333333
    """
    ax0, ay0, ax1, ay1 = (a.as_tuple() if isinstance(a, Box) else tuple(a))[:4]
    bx0, by0, bx1, by1 = (b.as_tuple() if isinstance(b, Box) else tuple(b))[:4]
    iw = max(0, min(ax1, bx1) - max(ax0, bx0))
    ih = max(0, min(ay1, by1) - max(ay0, by0))
    inter = iw * ih
    union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter
    return float(inter / union) if union > 0 else 0.0


def boxes_from_mask(mask: np.ndarray, saliency: np.ndarray, *, min_area: float = 0.001, nms: float = 0.5,
                    max_boxes: int | None = None) -> list[Box]:
    """Connected components (8-connected) of ``mask`` as boxes ranked by saliency mass.

    ``min_area``: components smaller than this fraction of the image are dropped.  ``nms``: a box whose IoU
    with a better-ranked kept box exceeds this is dropped (greedy non-maximum suppression; 1 keeps all).
    ``max_boxes``: keep at most this many.

    Examples
    --------
    >>> m = np.zeros((10, 10), bool); m[1:3, 1:3] = True; m[5:9, 5:9] = True
    >>> [b.as_tuple()[:4] for b in boxes_from_mask(m, m * 1.0)]
    [(5, 5, 9, 9), (1, 1, 3, 3)]
    """
    min_area = _number(min_area, "min_area", 0.0, 1.0)
    nms = _number(nms, "nms", 0.0, 1.0)
    if max_boxes is not None and (isinstance(max_boxes, bool) or not isinstance(max_boxes, int) or max_boxes < 1):
        raise InputError(f"max_boxes must be a whole number >= 1 (or None), got {max_boxes!r}")
    m = np.asarray(mask, dtype=bool)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m.astype(np.uint8), connectivity=8)
    if n <= 1:
        return []
    total = float(np.asarray(saliency, dtype=np.float64).sum())
    mass = np.bincount(labels.ravel(), weights=np.asarray(saliency, dtype=np.float64).ravel(), minlength=n)
    smallest = min_area * m.size
    cands: list[Box] = []
    for k in range(1, n):
        x, y, w, h, area = (int(v) for v in stats[k])
        if area < smallest:
            continue
        score = float(mass[k] / total) if total > 0 else 0.0
        cands.append(Box(x, y, x + w, y + h, score, area))
    cands.sort(key=lambda b: (-b.score, -b.area, b.y0, b.x0))
    kept: list[Box] = []
    for b in cands:
        if all(box_iou(b, k) <= nms for k in kept):
            kept.append(b)
            if max_boxes is not None and len(kept) >= max_boxes:
                break
    return kept


def grabcut_refine(image: np.ndarray, mask: np.ndarray, *, iterations: int = 4) -> tuple[np.ndarray, list[str]]:
    """Refine a mask with GrabCut on the image, initialised from the mask (SaliencyCut).

    M.-M. Cheng, N. J. Mitra, X. Huang, P. H. S. Torr, S.-M. Hu. Global contrast based salient region
    detection. IEEE TPAMI 37(3):569-582, 2015 (SaliencyCut); C. Rother, V. Kolmogorov, A. Blake.
    "GrabCut": interactive foreground extraction using iterated graph cuts. SIGGRAPH 2004.

    Each round labels the eroded mask as sure foreground, the mask as probable foreground, a band around
    it (dilation) as probable background and the rest as sure background, runs GrabCut, and takes its
    foreground as the next mask; it stops early when the mask no longer changes.  A mask too small or too
    large for both colour models is returned unchanged (with a note saying so).
    """
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise InputError(f"GrabCut iterations must be a whole number >= 1, got {iterations!r}")
    rgb = to_u8(image)
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    h, w = mask.shape
    r = max(1, round(0.02 * min(h, w)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    cur = np.asarray(mask, dtype=bool)
    notes: list[str] = []
    for _ in range(iterations):
        m8 = cur.astype(np.uint8)
        gc = np.full((h, w), cv2.GC_BGD, np.uint8)
        gc[cv2.dilate(m8, kernel, iterations=2) > 0] = cv2.GC_PR_BGD
        gc[cur] = cv2.GC_PR_FGD
        gc[cv2.erode(m8, kernel) > 0] = cv2.GC_FGD
        fg = int(np.count_nonzero((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)))
        if fg < 10 or h * w - fg < 10:
            notes.append("GrabCut skipped: the mask leaves too few pixels for a foreground or a background model")
            break
        bgd = np.zeros((1, 65), np.float64)
        fgd = np.zeros((1, 65), np.float64)
        cv2.grabCut(bgr, gc, None, bgd, fgd, 3, cv2.GC_INIT_WITH_MASK)
        new = (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)
        if np.array_equal(new, cur):
            break
        cur = new
    return cur, notes


def segment(image: Any, method: str = "frequency-tuned", *, threshold: str | float | None = None,
            grabcut: bool = False, grabcut_iterations: int = 4, min_area: float = 0.001, nms: float = 0.5,
            max_boxes: int | None = None, saliency: Any = None, model: Any = None, target: Any = None,
            layer: Any = None, **params: Any) -> Segmentation:
    """Salient-object mask and boxes of an image from any registry method (or a given map).

    Parameters
    ----------
    image:
        Anything :func:`salience.load_image` accepts.
    method:
        A registry name (bottom-up or explanation); default ``"frequency-tuned"`` (Achanta et al.'s
        salient-region detector).
    threshold:
        ``"otsu"``, ``"adaptive"`` (``min(2 mean, 1)``), or a fixed number in ``[0, 1]`` on the map
        min-max normalised to ``[0, 1]``.  Default: ``"adaptive"`` for bottom-up maps, ``0.2`` for
        explanations (the CAM paper's 20%-of-peak rule).
    grabcut:
        Refine the mask with GrabCut on the image (see :func:`grabcut_refine`).
    min_area, nms, max_boxes:
        See :func:`boxes_from_mask`.
    saliency:
        A precomputed map (any size; resized bilinearly to the image) instead of ``method``.
    model, target, layer, **params:
        Passed to :func:`salience.saliency_map` (``model`` / ``target`` / ``layer`` for explanations only).

    Returns
    -------
    Segmentation
        ``mask`` bool ``(H, W)``, ``boxes`` (best first), ``saliency`` float64 ``(H, W)`` in ``[0, 1]``.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.full((60, 80, 3), 0.5, np.float32); img[10:30, 10:30] = 1.0; img[35:55, 50:75] = 0.0
    >>> seg = segment(img, "frequency-tuned", threshold="otsu")
    >>> len(seg.boxes), seg.mask.dtype
    (2, dtype('bool'))
    """
    img, sal, name = image_and_map(image, method, saliency, model=model, target=target, layer=layer, **params)
    if threshold is None:
        explained = saliency is None and get_method(name).kind == EXPLANATION
        threshold = CAM_FRACTION if explained else "adaptive"
    mask, t = mask_from_map(sal, threshold)
    notes: list[str] = []
    refined = False
    if grabcut:
        new, notes = grabcut_refine(img, mask, iterations=grabcut_iterations)
        refined = not np.array_equal(new, mask)
        mask = new
    if not mask.any():
        notes.append("the mask is empty: the map is blank or no pixel reaches the threshold")
    boxes = boxes_from_mask(mask, sal, min_area=min_area, nms=nms, max_boxes=max_boxes)
    return Segmentation(mask=mask, boxes=boxes, saliency=sal, threshold=t, method=name, refined=refined,
                        notes=notes)


def evidence_box(image: Any, method: str = "gradcam", *, model: Any = None, target: Any = None,
                 layer: Any = None, fraction: float = CAM_FRACTION, saliency: Any = None, **params: Any) -> Box:
    """The box of a model's evidence for a class: weakly supervised localisation.

    B. Zhou, A. Khosla, A. Lapedriza, A. Oliva, A. Torralba. Learning deep features for discriminative
    localization. CVPR 2016: threshold the class activation map at ``fraction`` (20%) of its peak and take
    the box of the largest region (here: the region holding the most evidence).

    Raises :class:`~salience.errors.InputError` when the map is blank (no evidence anywhere).

    >>> import numpy as np
    >>> sal = np.zeros((50, 50)); sal[10:20, 30:45] = 1.0
    >>> evidence_box(np.zeros((50, 50, 3)), saliency=sal).as_tuple()
    (30, 10, 45, 20, 1.0)
    """
    fraction = _number(fraction, "fraction", 0.0, 1.0)
    seg = segment(image, method, threshold=fraction, saliency=saliency, model=model, target=target,
                  layer=layer, min_area=0.0, nms=1.0, max_boxes=1, **params)
    if not seg.boxes:
        raise InputError(f"the {seg.method} map is blank, so there is no evidence to put a box around")
    return seg.boxes[0]


def draw_segmentation(image: Any, seg: Segmentation, *, alpha: float = 0.35,
                      colours: Sequence[tuple[int, int, int]] = ((255, 40, 40), (40, 200, 255), (255, 220, 0))) -> np.ndarray:
    """uint8 RGB ``(H, W, 3)``: the image with the mask tinted, its outline and the boxes drawn (rank 1
    in the first colour, with its rank and score).

    >>> import numpy as np
    >>> img = np.zeros((40, 40, 3), np.float32); img[10:30, 10:30] = 1
    >>> draw_segmentation(img, segment(img, saliency=img[..., 0])).shape
    (40, 40, 3)
    """
    from ..io import as_image_array

    rgb = to_u8(as_image_array(image))
    out = rgb.copy()
    m = seg.mask
    if m.shape != rgb.shape[:2]:
        raise InputError("the segmentation is not of this image's size")
    tint = np.array(colours[0], np.float64)
    out[m] = np.clip((1 - alpha) * out[m] + alpha * tint, 0, 255).astype(np.uint8)
    contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, colours[0], 1)
    thick = max(1, round(min(m.shape) / 200))
    for i, b in enumerate(seg.boxes):
        c = colours[min(i, len(colours) - 1)]
        cv2.rectangle(out, (b.x0, b.y0), (b.x1 - 1, b.y1 - 1), c, thick)
        label = f"{i + 1}: {b.score:.2f}"
        cv2.putText(out, label, (b.x0 + 2, max(10, b.y0 + 11)), cv2.FONT_HERSHEY_SIMPLEX, 0.35, c, 1, cv2.LINE_AA)
    return out
