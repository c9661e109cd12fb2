"""Pictures of saliency maps: grayscale, colour heatmaps, overlays, feature panels and scanpaths.

Everything here returns ``uint8`` RGB (or grayscale) arrays ready for :func:`salience.io.encode_png`; it
draws with OpenCV and numpy only (matplotlib is not needed).  Colormaps come from OpenCV's lookup tables
(the same names as matplotlib's, same look; ``"gray"`` is the identity ramp).

Maps are shown min-max stretched, so brightness (or colour) ranks the values within one map; a constant
map shows as all zeros.  Where an image and a map meet (:func:`overlay`, :func:`draw_scanpath`), their sizes
must agree: a mismatch raises :class:`~salience.errors.InputError` unless ``resize=True`` asks for the map
to be resized to the image (bilinear).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import cv2
import numpy as np

from .errors import InputError
from .io import as_image_array, check_map, map_to_uint8

__all__ = [
    "COLORMAPS",
    "to_gray",
    "colorize",
    "overlay",
    "feature_panel",
    "draw_scanpath",
    "image_to_uint8",
]

#: Colormap names accepted by :func:`colorize` and :func:`overlay` (OpenCV lookup tables).
COLORMAPS: dict[str, int | None] = {
    "gray": None,
    "jet": cv2.COLORMAP_JET,
    "turbo": cv2.COLORMAP_TURBO,
    "viridis": cv2.COLORMAP_VIRIDIS,
    "inferno": cv2.COLORMAP_INFERNO,
    "magma": cv2.COLORMAP_MAGMA,
    "plasma": cv2.COLORMAP_PLASMA,
    "hot": cv2.COLORMAP_HOT,
    "bone": cv2.COLORMAP_BONE,
    "cool": cv2.COLORMAP_COOL,
    "parula": cv2.COLORMAP_PARULA,
}

_LUTS: dict[str, np.ndarray] = {}


def _lut(cmap: str) -> np.ndarray:
    """(256, 3) uint8 RGB lookup table of a colormap."""
    if not isinstance(cmap, str) or cmap.lower() not in COLORMAPS:
        raise InputError(f"unknown colormap {cmap!r}; choose one of {', '.join(COLORMAPS)}")
    name = cmap.lower()
    if name not in _LUTS:
        ramp = np.arange(256, dtype=np.uint8).reshape(256, 1)
        code = COLORMAPS[name]
        if code is None:
            lut = np.repeat(ramp, 3, axis=1)
        else:
            lut = cv2.cvtColor(cv2.applyColorMap(ramp, code), cv2.COLOR_BGR2RGB).reshape(256, 3)
        lut.setflags(write=False)
        _LUTS[name] = lut
    return _LUTS[name]


def to_gray(saliency: Any, *, normalize: bool = True) -> np.ndarray:
    """The map as an 8-bit grayscale image: brightness is saliency.

    Parameters
    ----------
    saliency: a 2-D map (any real dtype, finite).
    normalize: min-max stretch to 0..255 (default); False takes values in ``[0, 1]`` and clips.

    Returns
    -------
    numpy.ndarray
        uint8 ``(H, W)``.

    Examples
    --------
    >>> import numpy as np
    >>> from salience.viz import to_gray
    >>> to_gray(np.array([[0.0, 0.5], [1.0, 0.25]])).tolist()
    [[0, 128], [255, 64]]
    """
    return map_to_uint8(saliency, normalize=normalize)


def colorize(saliency: Any, cmap: str = "jet", *, normalize: bool = True) -> np.ndarray:
    """The map through a colormap: uint8 RGB ``(H, W, 3)``.

    ``cmap`` is one of :data:`COLORMAPS` (``"jet"``, ``"turbo"``, ``"viridis"``, ``"inferno"``, ``"magma"``,
    ``"plasma"``, ``"hot"``, ``"bone"``, ``"cool"``, ``"parula"``, ``"gray"``); low values take the
    colormap's first colour (dark blue for jet), high values its last (dark red for jet).

    Examples
    --------
    >>> import numpy as np
    >>> from salience.viz import colorize
    >>> rgb = colorize(np.array([[0.0, 1.0]]), "jet")
    >>> rgb.shape, rgb.dtype, bool(rgb[0, 0, 2] > rgb[0, 0, 0]), bool(rgb[0, 1, 0] > rgb[0, 1, 2])
    ((1, 2, 3), dtype('uint8'), True, True)
    """
    lut = _lut(cmap)
    return lut[to_gray(saliency, normalize=normalize)]


def image_to_uint8(image: Any, name: str = "image") -> np.ndarray:
    """Any image array :func:`salience.io.as_image_array` accepts, as uint8 RGB ``(H, W, 3)``.

    A uint8 ``(H, W, 3)`` array is returned as it is; anything else is validated, converted to float
    ``[0, 1]`` and rounded to ``0..255``.

    Examples
    --------
    >>> import numpy as np
    >>> from salience.viz import image_to_uint8
    >>> image_to_uint8(np.full((2, 2), 0.5, np.float32))[0, 0].tolist()
    [128, 128, 128]
    """
    if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3:
        return image
    rgb = as_image_array(image, name=name)
    return np.floor(rgb * 255.0 + 0.5).astype(np.uint8)


def _map_for(image_shape: tuple[int, int], saliency: Any, resize: bool, what: str) -> np.ndarray:
    m = check_map(saliency)
    if m.shape != tuple(image_shape):
        if not resize:
            raise InputError(
                f"{what}: the map is {m.shape[1]} x {m.shape[0]} (W x H) but the image is "
                f"{image_shape[1]} x {image_shape[0]}; pass a map of the image's size, or resize=True to "
                "resize the map to the image (bilinear)"
            )
        m = cv2.resize(m.astype(np.float32), (image_shape[1], image_shape[0]), interpolation=cv2.INTER_LINEAR)
    return m


def overlay(image: Any, saliency: Any, cmap: str = "jet", alpha: float = 0.5, *, resize: bool = False,
            normalize: bool = True) -> np.ndarray:
    """A heatmap of the map blended over the image: ``(1 - alpha) * image + alpha * colorize(map)``.

    Parameters
    ----------
    image:
        An image array as :func:`salience.load_image` accepts (float in ``[0, 1]``, uint8, grayscale, ...).
    saliency:
        A 2-D map of the image's size.
    cmap:
        A colormap name from :data:`COLORMAPS`.
    alpha:
        Opacity of the heatmap, in ``[0, 1]`` (0: the image only; 1: the heatmap only).
    resize:
        When the map's size differs from the image's: False (default) raises InputError, True resizes the
        map to the image (bilinear).

    Returns
    -------
    numpy.ndarray
        uint8 ``(H, W, 3)`` RGB.

    Examples
    --------
    >>> import numpy as np
    >>> from salience.viz import overlay
    >>> img = np.zeros((4, 5, 3), np.float32); sal = np.zeros((4, 5)); sal[1, 2] = 1.0
    >>> out = overlay(img, sal, alpha=0.5)
    >>> out.shape, out.dtype, int(out[1, 2, 0]) > int(out[0, 0, 0])
    ((4, 5, 3), dtype('uint8'), True)
    """
    try:
        a = float(alpha)
    except (TypeError, ValueError):
        a = float("nan")
    if not (0.0 <= a <= 1.0):
        raise InputError(f"alpha must be a number in [0, 1], got {alpha!r}")
    rgb = image_to_uint8(image)
    m = _map_for(rgb.shape[:2], saliency, resize, "overlay")
    heat = colorize(m, cmap, normalize=normalize)
    return cv2.addWeighted(rgb, 1.0 - a, heat, a, 0.0)


# ---- feature panel --------------------------------------------------------------------------------------

def _panel_items(result: Any, image: Any) -> list[tuple[str, np.ndarray]]:
    items: list[tuple[str, np.ndarray]] = []
    if image is not None:
        items.append(("image", image_to_uint8(image)))
    if isinstance(result, Mapping):
        if not result:
            raise InputError("feature_panel needs at least one map; got an empty dict")
        for name, m in result.items():
            items.append((str(name), check_map(m, f"map {name!r}")))
        return items
    sal = getattr(result, "saliency", None)
    feats = getattr(result, "feature_maps", None)
    consp = getattr(result, "conspicuity", None)
    if sal is None or not isinstance(feats, Mapping) or not isinstance(consp, Mapping):
        raise InputError(
            "feature_panel expects an IttiResult (salience.itti_koch(image, return_intermediates=True)) or a "
            f"dict of name -> 2-D map, got {type(result).__name__}"
        )
    items.append(("saliency", check_map(sal, "saliency")))
    for name, m in consp.items():
        items.append((f"{name} (conspicuity)", check_map(m, f"conspicuity map {name!r}")))
    for name, m in feats.items():
        items.append((str(name), check_map(m, f"feature map {name!r}")))
    return items


def _fit_text(text: str, width: int, scale: float) -> tuple[str, float]:
    font = cv2.FONT_HERSHEY_SIMPLEX
    while scale > 0.3 and cv2.getTextSize(text, font, scale, 1)[0][0] > width - 4:
        scale -= 0.05
    while len(text) > 1 and cv2.getTextSize(text, font, scale, 1)[0][0] > width - 4:
        text = text[:-2] + "~"
    return text, scale


def feature_panel(result: Any, *, image: Any = None, cols: int | None = None, tile_width: int = 200,
                  cmap: str = "gray") -> np.ndarray:
    """A grid of labelled tiles: every feature and conspicuity map of an Itti-Koch run, or any dict of maps.

    Parameters
    ----------
    result:
        An ``IttiResult`` (from ``salience.itti_koch(image, return_intermediates=True)``): the tiles are the
        saliency map, the 3 conspicuity maps, then the 42 feature maps (``"intensity c2s5"``, ...), each at
        its own scale enlarged to the tile (nearest neighbour, so the resolution of each scale shows).  Or
        a dict ``{name: 2-D map}``, shown in its order.
    image:
        Optional input image, shown as the first tile.
    cols:
        Tiles per row; default 6 for an IttiResult (a row per feature group), else about a square grid.
    tile_width:
        Width of one tile in pixels (>= 32); the height follows the first map's aspect ratio.
    cmap:
        Colormap of the tiles (``"gray"``: brightness is the value).  Each tile is min-max stretched.

    Returns
    -------
    numpy.ndarray
        uint8 ``(rows * (tile_h + label_h), cols * tile_width, 3)`` RGB.

    Examples
    --------
    >>> import numpy as np
    >>> from salience.viz import feature_panel
    >>> maps = {"a": np.eye(8), "b": np.ones((4, 4)), "c": np.zeros((2, 2))}
    >>> panel = feature_panel(maps, cols=3, tile_width=64)
    >>> panel.shape, panel.dtype
    ((84, 192, 3), dtype('uint8'))
    """
    items = _panel_items(result, image)
    if isinstance(tile_width, bool) or not isinstance(tile_width, (int, np.integer)) or tile_width < 32:
        raise InputError(f"tile_width must be an integer >= 32, got {tile_width!r}")
    is_itti = not isinstance(result, Mapping)
    if cols is None:
        cols = 6 if is_itti else max(1, math.ceil(math.sqrt(len(items))))
    if isinstance(cols, bool) or not isinstance(cols, (int, np.integer)) or cols < 1:
        raise InputError(f"cols must be an integer >= 1, got {cols!r}")
    cols = int(min(cols, len(items)))
    if is_itti:  # the feature maps start on a fresh row, so that each row is one feature group
        head = 1 + len(getattr(result, "conspicuity", {})) + (image is not None)
        if head % cols and len(items) > head:
            items[head:head] = [("", None)] * (cols - head % cols)
    tw = int(tile_width)
    ref = items[1][1] if items[0][0] == "image" and len(items) > 1 else items[0][1]
    th = max(8, int(round(tw * ref.shape[0] / ref.shape[1])))
    label_h = 20
    rows = math.ceil(len(items) / cols)
    panel = np.full((rows * (th + label_h), cols * tw, 3), 255, np.uint8)
    lut = _lut(cmap)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for k, (name, data) in enumerate(items):
        if data is None:  # a blank cell
            continue
        r, c = divmod(k, cols)
        y0, x0 = r * (th + label_h), c * tw
        if data.ndim == 3:  # the image
            tile = cv2.resize(data, (tw, th), interpolation=cv2.INTER_AREA)
        else:
            g = to_gray(data)
            up = g.shape[0] < th or g.shape[1] < tw
            g = cv2.resize(g, (tw, th), interpolation=cv2.INTER_NEAREST if up else cv2.INTER_AREA)
            tile = lut[g]
        panel[y0 + label_h:y0 + label_h + th, x0:x0 + tw] = tile
        panel[y0:y0 + label_h, x0:x0 + tw] = 40
        text, scale = _fit_text(name, tw, 0.45)
        cv2.putText(panel, text, (x0 + 3, y0 + label_h - 6), font, scale, (255, 255, 255), 1, cv2.LINE_AA)
        # thin white separators between tiles
        panel[y0:y0 + th + label_h, x0:x0 + 1] = 255
    return panel


# ---- scanpath -------------------------------------------------------------------------------------------

def _xy(points: Iterable[Any]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for i, p in enumerate(points):
        if hasattr(p, "x") and hasattr(p, "y"):
            x, y = p.x, p.y
        else:
            try:
                x, y = p[0], p[1]
            except (TypeError, IndexError, KeyError):
                raise InputError(
                    f"point {i} is {p!r}; expected an attended point (with .x and .y) or an (x, y) pair"
                ) from None
        try:
            fx, fy = float(x), float(y)
        except (TypeError, ValueError):
            raise InputError(f"point {i} has non-numeric coordinates ({x!r}, {y!r})") from None
        if not (math.isfinite(fx) and math.isfinite(fy)):
            raise InputError(f"point {i} has non-finite coordinates ({x!r}, {y!r})")
        out.append((fx, fy))
    return out


def draw_scanpath(image: Any, points: Sequence[Any], radius: float | None = None, *,
                  color: tuple[int, int, int] = (255, 255, 0), thickness: int | None = None) -> np.ndarray:
    """The attended locations drawn on the image: numbered circles joined by lines, in attention order.

    Parameters
    ----------
    image:
        An image array as :func:`salience.load_image` accepts.
    points:
        Attended points in order: objects with ``.x`` and ``.y`` (``salience.scanpath`` returns them) or
        ``(x, y)`` pairs, in pixels of the image (x to the right, y down).
    radius:
        Circle radius in pixels; default ``max(4, min(H, W) / 12)``.  Pass the focus-of-attention radius
        used for inhibition of return to show the inhibited discs.
    color:
        RGB colour of the circles, lines and numbers.
    thickness:
        Line thickness; default scales with the image size.

    Returns
    -------
    numpy.ndarray
        uint8 ``(H, W, 3)`` RGB, a new array.

    Raises
    ------
    InputError
        A point outside the image, non-numeric coordinates, or a bad radius.

    Examples
    --------
    >>> import numpy as np
    >>> from salience.viz import draw_scanpath
    >>> out = draw_scanpath(np.zeros((60, 80, 3), np.float32), [(20, 30), (60, 10)])
    >>> out.shape, out.dtype, bool(out.any())
    ((60, 80, 3), dtype('uint8'), True)
    """
    rgb = image_to_uint8(image).copy()
    H, W = rgb.shape[:2]
    pts = _xy(points)
    for i, (x, y) in enumerate(pts):
        if not (-0.5 <= x <= W - 0.5 and -0.5 <= y <= H - 0.5):
            raise InputError(f"point {i} ({x:g}, {y:g}) lies outside the {W} x {H} image")
    if radius is None:
        radius = max(4.0, min(H, W) / 12.0)
    try:
        rad = float(radius)
    except (TypeError, ValueError):
        rad = float("nan")
    if not (math.isfinite(rad) and rad > 0):
        raise InputError(f"radius must be a positive number of pixels, got {radius!r}")
    t = int(thickness) if thickness is not None else max(1, int(round(min(H, W) / 250)))
    col = tuple(int(c) for c in color)
    ipts = [(int(round(x)), int(round(y))) for x, y in pts]
    for a, b in zip(ipts, ipts[1:]):
        cv2.line(rgb, a, b, col, t, cv2.LINE_AA)
    font = cv2.FONT_HERSHEY_SIMPLEX
    scale = max(0.35, min(1.5, rad / 20.0))
    for k, (x, y) in enumerate(ipts, start=1):
        cv2.circle(rgb, (x, y), int(round(rad)), col, t, cv2.LINE_AA)
        text = str(k)
        (tw, th), _ = cv2.getTextSize(text, font, scale, max(1, t))
        org = (x - tw // 2, y + th // 2)
        cv2.putText(rgb, text, org, font, scale, (0, 0, 0), max(1, t) + 2, cv2.LINE_AA)
        cv2.putText(rgb, text, org, font, scale, col, max(1, t), cv2.LINE_AA)
    return rgb
