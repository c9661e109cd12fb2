"""Eye-fixation data sets: OSIE, a generic CSV layout, and folders of fixation maps (MIT1003 style).

Every loader returns the same thing, a :class:`FixationDataset`: a sequence of :class:`ImageFixations`,
one per image, each holding the image's path and size and its fixations as 0-based pixel positions with
the subject who made them (and, when known, onset and duration).

Coordinate convention (all loaders, all of salience)
    ``x`` is the column, ``y`` the row, both 0-based, **pixel centres at integers**: the top-left pixel is
    centred on ``(0, 0)`` and covers ``[-0.5, 0.5)``; a ``W x H`` image covers ``-0.5 <= x < W - 0.5`` and
    ``-0.5 <= y < H - 0.5``.  MATLAB's 1-based coordinates (OSIE, MIT) become ``x - 1``.  The pixel a
    fixation falls on is ``floor(x + 0.5)``, which is MATLAB's ``round(x_1based) - 1`` (halves away from
    zero), the rule the MIT benchmark code uses to build its binary fixation maps.

Fixation (density) maps
    :meth:`ImageFixations.density_map` blurs the fixated pixels with a Gaussian whose standard deviation is
    given in pixels (``sigma``) or in degrees of visual angle (``sigma_deg`` with ``pixels_per_degree``):
    a plain Gaussian filter (:func:`salience.metrics.fixation_density_map` with ``convention="gaussian"``).
    Without either it is the MIT benchmark's own blur, ``run_antonioGaussian(F, 25)``, whose effective
    standard deviation is ``25 * N / max(H, W)`` pixels with ``N`` the next power of two (32 px on an
    800 x 600 image; circular boundary on the padded FFT grid), which both metric conventions use as
    their default ground truth.

Where the data are
    :func:`shared_data_dir` is the folder holding the shared data sets: the environment variable
    ``SALIENCE_SHARED_DATA`` when set, otherwise ``<repository root>/../shared/data``.  OSIE is expected in
    its ``osie`` subfolder (``stimuli/*.jpg`` and ``fixations.mat``).

Example
-------
>>> import numpy as np, salience.datasets as sd
>>> item = sd.ImageFixations("a", None, (8, 6), x=np.array([1.0, 4.4]), y=np.array([2.0, 3.5]),
...                          subject=np.array(["s1", "s2"]))
>>> item.points().tolist(), int(item.binary_map().sum())
([[1.0, 2.0], [4.4, 3.5]], 2)
"""

from __future__ import annotations

import csv
import io as _io
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from .errors import DataError, ImageReadError, InputError

__all__ = [
    "ImageFixations",
    "FixationDataset",
    "shared_data_dir",
    "osie_dir",
    "load_osie",
    "load_csv",
    "load_map_folder",
    "load_saliency_map",
    "find_saliency_maps",
    "load_dataset",
    "IMAGE_EXTENSIONS",
    "MAP_EXTENSIONS",
    "CSV_COLUMNS",
]

#: file name extensions taken as images (lower case)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
#: file name extensions taken as saliency / fixation maps (lower case)
MAP_EXTENSIONS = (".png", ".npy", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
#: required and optional columns of the generic CSV layout
CSV_COLUMNS = {"required": ("image", "subject", "x", "y"), "optional": ("onset", "duration")}

_ENV = "SALIENCE_SHARED_DATA"


# --------------------------------------------------------------------------------------------------------
# where the data live
# --------------------------------------------------------------------------------------------------------

def shared_data_dir() -> Path:
    """The shared data folder: ``$SALIENCE_SHARED_DATA``, else ``<repository root>/../shared/data``."""
    env = os.environ.get(_ENV)
    if env:
        return Path(env).expanduser()
    repo = Path(__file__).resolve().parents[2]  # src/salience/datasets.py -> repository root
    return (repo / ".." / "shared" / "data").resolve()


def osie_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The OSIE folder: ``data_dir`` itself when it holds ``fixations.mat``, else ``data_dir/osie``.

    Without ``data_dir``, ``shared_data_dir() / "osie"``.
    """
    base = Path(data_dir).expanduser() if data_dir is not None else shared_data_dir()
    if (base / "fixations.mat").is_file():
        return base
    return base / "osie"


# --------------------------------------------------------------------------------------------------------
# the common representation
# --------------------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class ImageFixations:
    """The fixations recorded on one image.

    Attributes
    ----------
    name: the image's identifier (its file stem), unique within a data set.
    image_path: the stimulus file (``None`` for synthetic data).
    size: ``(width, height)`` in pixels.
    x, y: float64 ``(N,)``, 0-based pixel coordinates (see the module docstring).
    subject: ``(N,)`` subject identifiers (strings); ``"?"`` when unknown (fixation-map folders).
    onset, duration: float64 ``(N,)`` in milliseconds, or ``None`` when the data set has none.
    density_path: a ground-truth continuous fixation map (map folders only), used instead of blurring.
    n_clipped, n_dropped: fixations of the source that lay outside the image and were clipped onto its
        border (at most one pixel out) or left out (``outside="drop"``); see :mod:`salience.metrics.points`.
    pixels_per_degree: this image's display resolution when the data set gives one per image (CSV).
    """

    name: str
    image_path: Path | None
    size: tuple[int, int]
    x: np.ndarray
    y: np.ndarray
    subject: np.ndarray
    onset: np.ndarray | None = None
    duration: np.ndarray | None = None
    density_path: Path | None = None
    n_clipped: int = 0
    n_dropped: int = 0
    pixels_per_degree: float | None = None

    @property
    def width(self) -> int:
        return int(self.size[0])

    @property
    def height(self) -> int:
        return int(self.size[1])

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)``, the shape of this image's maps."""
        return (self.height, self.width)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def points(self, subject: str | None = None, *, exclude: str | None = None) -> np.ndarray:
        """float64 ``(N, 2)`` array of ``(x, y)``; only ``subject``'s, or all but ``exclude``'s."""
        keep = np.ones(len(self), dtype=bool)
        if subject is not None:
            keep &= self.subject == subject
        if exclude is not None:
            keep &= self.subject != exclude
        return np.stack([self.x[keep], self.y[keep]], axis=1)

    def subjects(self) -> list[str]:
        """The distinct subjects, in order of first appearance (excluding the unknown subject ``"?"``)."""
        seen: dict[str, None] = {}
        for s in self.subject.tolist():
            if s != "?":
                seen.setdefault(s, None)
        return list(seen)

    def binary_map(self, points: np.ndarray | None = None) -> np.ndarray:
        """bool ``(H, W)`` map with True on every fixated pixel (``floor(x + 0.5)``, clipped to the image)."""
        pts = self.points() if points is None else np.asarray(points, dtype=np.float64).reshape(-1, 2)
        return points_to_binary(pts, self.shape)

    def density_map(
        self,
        sigma: float | None = None,
        *,
        sigma_deg: float | None = None,
        pixels_per_degree: float | None = None,
        points: np.ndarray | None = None,
    ) -> np.ndarray:
        """Continuous fixation map: the fixated pixels blurred by a Gaussian (float64 ``(H, W)``, >= 0).

        ``sigma`` is the standard deviation in pixels; or give ``sigma_deg`` (degrees of visual angle) and
        ``pixels_per_degree`` (the display's resolution at the viewing distance), and ``sigma`` becomes
        ``sigma_deg * pixels_per_degree``.  Neither: the MIT benchmark's blur (see the module docstring).
        Each fixated pixel counts once (the MIT binary map).  A map-folder data set with a ground-truth
        continuous map returns that map when no blur is asked for and ``points`` is not given.
        """
        sigma_px = blur_sigma(sigma, sigma_deg=sigma_deg, pixels_per_degree=pixels_per_degree)
        if points is None and sigma_px is None and self.density_path is not None:
            return load_saliency_map(self.density_path, shape=self.shape).astype(np.float64)
        pts = self.points() if points is None else np.asarray(points, dtype=np.float64).reshape(-1, 2)
        from .metrics import fixation_density_map

        binary = points_to_binary(pts, self.shape).astype(np.float64)
        if sigma_px is None:
            out = fixation_density_map(binary, convention="mit")
        else:
            out = fixation_density_map(binary, sigma=sigma_px, convention="gaussian")
        return np.asarray(out, dtype=np.float64)


def blur_sigma(
    sigma: float | None = None, *, sigma_deg: float | None = None, pixels_per_degree: float | None = None
) -> float | None:
    """The blur in pixels from ``sigma`` (pixels) or ``sigma_deg * pixels_per_degree``; ``None`` = default."""
    if sigma is not None and sigma_deg is not None:
        raise DataError("give the fixation blur either in pixels (sigma) or in degrees (sigma_deg), not both")
    if sigma_deg is not None:
        if pixels_per_degree is None:
            raise DataError(
                f"sigma_deg={sigma_deg} needs pixels_per_degree (the display's pixels per degree of visual "
                "angle at the viewing distance) to be converted to pixels; pass it, or give sigma in pixels"
            )
        for label, v in (("sigma_deg", sigma_deg), ("pixels_per_degree", pixels_per_degree)):
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise DataError(f"{label} must be a positive number, got {v!r}")
        return float(sigma_deg) * float(pixels_per_degree)
    if sigma is not None and not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma > 0):
        raise DataError(f"the fixation blur sigma must be a positive number of pixels, got {sigma!r}")
    return None if sigma is None else float(sigma)


def points_to_binary(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """bool map of ``shape`` with the pixels ``(floor(y + 0.5), floor(x + 0.5))`` set.

    The border rule of :mod:`salience.metrics.points` (the metrics' own): points up to one pixel beyond
    the image go to the border pixel, points further out raise :class:`~salience.errors.InputError`.
    """
    from .metrics.points import clip_to_image

    H, W = shape
    out = np.zeros((H, W), dtype=bool)
    if points.size:
        pts, _ = clip_to_image(points, (H, W))
        cols = np.floor(pts[:, 0] + 0.5).astype(np.int64)
        rows = np.floor(pts[:, 1] + 0.5).astype(np.int64)
        out[rows, cols] = True
    return out


@dataclass(frozen=True, eq=False)
class FixationDataset:
    """A fixation data set: images with their fixations, in a fixed (sorted-by-name) order.

    Index it by position or by image name; iterate over :class:`ImageFixations`.

    Attributes
    ----------
    name: a short label (``"osie"``, the CSV's stem, ...).
    items: the images.
    root: the folder it was read from.
    pixels_per_degree: the display resolution in pixels per degree of visual angle, when known (an
        image's own :attr:`ImageFixations.pixels_per_degree` takes precedence).
    unreadable: source name -> reason, for images left out because their file could not be read.
    """

    name: str
    items: tuple[ImageFixations, ...]
    root: Path | None = None
    pixels_per_degree: float | None = None
    unreadable: dict[str, str] = field(default_factory=dict, compare=False)
    _by_name: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        index = {it.name: i for i, it in enumerate(self.items)}
        if len(index) != len(self.items):
            raise DataError(f"data set {self.name!r} has two images with the same name (file stem)")
        self._by_name.clear()
        self._by_name.update(index)

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[ImageFixations]:
        return iter(self.items)

    def __getitem__(self, key: int | str) -> ImageFixations:
        if isinstance(key, str):
            if key not in self._by_name:
                raise DataError(f"data set {self.name!r} has no image named {key!r}")
            return self.items[self._by_name[key]]
        return self.items[key]

    @property
    def names(self) -> list[str]:
        return [it.name for it in self.items]

    @property
    def n_fixations(self) -> int:
        return sum(len(it) for it in self.items)

    @property
    def n_clipped(self) -> int:
        """Fixations clipped onto an image border when the data were read (see :func:`load_csv`)."""
        return sum(it.n_clipped for it in self.items)

    @property
    def n_dropped(self) -> int:
        """Fixations left out because they lay outside their image (``outside="drop"``)."""
        return sum(it.n_dropped for it in self.items)

    def ppd(self, item: ImageFixations) -> float | None:
        """Pixels per degree of one image: its own value, else the data set's, else ``None``."""
        return item.pixels_per_degree if item.pixels_per_degree is not None else self.pixels_per_degree

    @property
    def has_subjects(self) -> bool:
        """True when fixations carry subject identities (needed by the inter-observer baseline)."""
        return any(it.subjects() for it in self.items)

    def subset(self, limit: int | None = None, names: Sequence[str] | None = None) -> "FixationDataset":
        """The first ``limit`` images, or the named ones (in data-set order)."""
        items = self.items
        if names is not None:
            wanted = set(names)
            missing = wanted - set(self._by_name)
            if missing:
                raise DataError(f"data set {self.name!r} has no image(s) {sorted(missing)[:5]}")
            items = tuple(it for it in items if it.name in wanted)
        if limit is not None:
            if limit < 1:
                raise DataError(f"limit must be at least 1, got {limit}")
            items = items[:limit]
        return replace(self, items=items, _by_name={})

    def load_image(self, key: int | str) -> np.ndarray:
        """The stimulus of one image as float32 ``(H, W, 3)`` in ``[0, 1]`` (see :func:`salience.load_image`)."""
        from .io import load_image

        item = self[key]
        if item.image_path is None:
            raise DataError(f"image {item.name!r} of data set {self.name!r} has no stimulus file")
        return load_image(item.image_path)


def _image_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` from the file's header, after its EXIF rotation.

    Only the header is read, so a decompression bomb's size is read too (without the pixel-count check;
    :func:`salience.load_image` refuses it later, when the evaluation loads it, and that image is skipped).
    """
    import warnings

    from PIL import Image

    saved = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                w, h = im.size
                orientation = im.getexif().get(0x0112, 1) if hasattr(im, "getexif") else 1
    except Exception as exc:  # Pillow raises many kinds on a hostile header
        raise ImageReadError(f"cannot read the size of image '{path}': {exc}") from None
    finally:
        Image.MAX_IMAGE_PIXELS = saved
    if orientation in (5, 6, 7, 8):  # load_image applies the EXIF rotation: so must the size
        w, h = h, w
    return int(w), int(h)


def _empty() -> np.ndarray:
    return np.zeros(0, dtype=np.float64)


# --------------------------------------------------------------------------------------------------------
# OSIE
# --------------------------------------------------------------------------------------------------------

def load_osie(root: str | os.PathLike | None = None) -> FixationDataset:
    """Load OSIE (Xu et al., "Predicting human gaze beyond pixels", J. Vision 14(1):28, 2014).

    700 images of 800 x 600 pixels, 15 subjects, 3 s free viewing, 98,321 fixations.  ``root`` is the
    folder with ``stimuli/*.jpg`` and ``fixations.mat`` (or a folder holding ``osie/``; default
    :func:`osie_dir`).  The file's 1-based MATLAB coordinates become 0-based (``x - 1``); subjects are
    named ``"1"`` ... ``"15"`` by their position in the file; durations are kept (ms); OSIE has no onsets.

    Raises :class:`~salience.errors.DataError` when the folder or the file is missing or malformed.
    """
    folder = osie_dir(root)
    mat_path = folder / "fixations.mat"
    stim = folder / "stimuli"
    if not mat_path.is_file() or not stim.is_dir():
        raise DataError(
            f"no OSIE data in '{folder}': expected fixations.mat and a stimuli/ folder there; pass the OSIE "
            f"folder (--data-dir / root) or set {_ENV} to the folder that holds osie/"
        )
    import scipy.io

    from .metrics.points import clip_to_image

    try:
        records = scipy.io.loadmat(str(mat_path), squeeze_me=True, struct_as_record=False)["fixations"]
    except Exception as exc:  # scipy raises many kinds on a corrupt file
        raise DataError(f"cannot read '{mat_path}' as the OSIE fixations file: {exc}") from None
    items = []
    for k, rec in enumerate(np.atleast_1d(records)):
        try:
            img_name = str(rec.img)
            subjects = np.atleast_1d(rec.subjects)
        except AttributeError:
            raise DataError(f"'{mat_path}': entry {k + 1} lacks the fields img / subjects") from None
        path = stim / img_name
        if not path.is_file():
            raise DataError(f"'{mat_path}' entry {k + 1} names image {img_name!r}, which is not in '{stim}'")
        w, h = _image_size(path)
        xs, ys, subj, dur = [], [], [], []
        for s_idx, s in enumerate(subjects):
            x = np.atleast_1d(np.asarray(s.fix_x, dtype=np.float64)) - 1.0
            y = np.atleast_1d(np.asarray(s.fix_y, dtype=np.float64)) - 1.0
            d = np.atleast_1d(np.asarray(getattr(s, "fix_duration", np.full(x.shape, np.nan)), dtype=np.float64))
            if not (x.shape == y.shape == d.shape):
                raise DataError(f"'{mat_path}': image {img_name}, subject {s_idx + 1}: fix_x, fix_y and "
                                "fix_duration have different lengths")
            xs.append(x)
            ys.append(y)
            dur.append(d)
            subj.append(np.full(x.shape, str(s_idx + 1), dtype=object))
        x = np.concatenate(xs) if xs else _empty()
        y = np.concatenate(ys) if ys else _empty()
        try:  # the one border rule: up to one pixel out is clipped (and counted), further out refused
            pts, clipped = clip_to_image(np.stack([x, y], axis=1), (h, w), name=f"image {img_name}")
        except InputError as exc:
            raise DataError(f"'{mat_path}': {exc}") from None
        items.append(ImageFixations(
            name=Path(img_name).stem, image_path=path, size=(w, h), x=pts[:, 0].copy(), y=pts[:, 1].copy(),
            subject=np.concatenate(subj).astype(str) if subj else np.zeros(0, dtype=str),
            onset=None, duration=np.concatenate(dur) if dur else _empty(), n_clipped=int(clipped.sum()),
        ))
    items.sort(key=lambda it: it.name)
    return FixationDataset("osie", tuple(items), root=folder)


# --------------------------------------------------------------------------------------------------------
# the generic CSV layout
# --------------------------------------------------------------------------------------------------------

#: what ``load_csv(outside=...)`` does with a point beyond its image (see :mod:`salience.metrics.points`)
OUTSIDE_RULES = ("clip", "error", "drop")
#: time units of the onset / duration columns, and their factor to milliseconds
TIME_UNITS = {"ms": 1.0, "s": 1000.0}
_UNIT_WORDS = {"ms": "ms", "msec": "ms", "millisecond": "ms", "milliseconds": "ms",
               "s": "s", "sec": "s", "secs": "s", "second": "s", "seconds": "s"}
_PPD_COLUMNS = ("pixels_per_degree", "ppd")


def _find_csv(folder: Path) -> Path:
    preferred = folder / "fixations.csv"
    if preferred.is_file():
        return preferred
    found = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".csv" and p.is_file())
    if len(found) == 1:
        return found[0]
    if not found:
        raise DataError(f"no CSV file in '{folder}': put the fixations in '{folder}/fixations.csv' "
                        "(columns image, subject, x, y[, onset, duration])")
    raise DataError(f"'{folder}' holds several CSV files ({', '.join(p.name for p in found)}); name the "
                    "fixations file fixations.csv or pass the CSV's path")


class _ImageIndex:
    """The images of a folder, found by exact file name, by a unique stem, or by a path inside the folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.by_name: dict[str, Path] = {}
        self.by_stem: dict[str, list[Path]] = {}
        if folder.is_dir():
            for p in sorted(folder.iterdir()):
                if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS:
                    self.by_name[p.name] = p
                    self.by_stem.setdefault(p.stem, []).append(p)

    def find(self, image: str, where: str) -> Path:
        if image in self.by_name:
            return self.by_name[image]
        paths = self.by_stem.get(image, [])
        if len(paths) == 1:
            return paths[0]
        if len(paths) > 1:
            raise DataError(f"{where}: image {image!r} is ambiguous: {', '.join(p.name for p in paths)} are all in "
                            f"'{self.folder}'; write the file name with its extension")
        if "/" in image or os.sep in image:
            p = self.folder / image
            if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and p.resolve().parent == self.folder.resolve():
                return p
        raise DataError(f"{where}: unknown image {image!r}; it is not in the image folder '{self.folder}' "
                        "(give the file name, e.g. cat.jpg, or its stem when no other image shares it)")


def _read_text(csv_path: Path, encoding: str | None) -> str:
    """The CSV's text: ``encoding`` when given, else UTF-8 (with or without BOM) or UTF-16 with a BOM."""
    try:
        data = csv_path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot open '{csv_path}': {exc.strerror or exc}") from None
    if encoding is None:
        encoding = "utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
    try:
        return data.decode(encoding)
    except LookupError:
        raise DataError(f"unknown text encoding {encoding!r} for '{csv_path}' (e.g. utf-8, latin-1, utf-16)") from None
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        hint = ("it is probably Latin-1 / Windows-1252" if encoding.startswith("utf-8") else
                "check the file's encoding")
        raise DataError(
            f"'{csv_path}' line {line}: byte 0x{data[exc.start]:02x} is not valid {encoding.upper()}; {hint}: "
            "save it as UTF-8, or pass its encoding (encoding='latin-1', --csv-encoding latin-1)"
        ) from None


@dataclass
class _CsvHeader:
    """Where each column of the generic layout is, and the unit of the time columns."""

    cols: dict[str, int]
    optional: list[str]
    ppd: int | None
    time_factor: float
    n_fields: int


def _time_column(name: str) -> tuple[str, str | None] | None:
    """``("onset", "s")`` for headers such as ``onset``, ``onset_s``, ``onset (ms)``, ``duration[sec]``."""
    import re

    m = re.fullmatch(r"(onset|duration)(?:\s*[_\s(\[]\s*([a-z]+)\s*[)\]]?)?", name)
    if m is None:
        return None
    unit = m.group(2)
    if unit is not None and unit not in _UNIT_WORDS:
        return None
    return m.group(1), (_UNIT_WORDS[unit] if unit else None)


def _parse_header(header: list[str], where: str, time_unit: str | None) -> _CsvHeader:
    names = [h.strip().lower() for h in header]
    cols: dict[str, int] = {}
    units: dict[str, str] = {}
    for i, n in enumerate(names):
        t = _time_column(n)
        key = t[0] if t else n
        if key in cols:
            raise DataError(f"{where} line 1: column {key!r} appears twice")
        cols[key] = i
        if t and t[1]:
            units[key] = t[1]
    missing = [c for c in CSV_COLUMNS["required"] if c not in cols]
    if missing:
        raise DataError(
            f"{where} line 1: missing column(s) {', '.join(missing)}; the header must have image, "
            f"subject, x, y (optional onset, duration), got {', '.join(h.strip() for h in header) or 'nothing'}"
        )
    if len(set(units.values())) > 1:
        raise DataError(f"{where} line 1: onset and duration are in different units ({units}); use one unit")
    unit = next(iter(units.values()), None)
    if time_unit is not None:
        if time_unit not in TIME_UNITS:
            raise DataError(f"time_unit must be one of {', '.join(TIME_UNITS)}, got {time_unit!r}")
        if unit is not None and unit != time_unit:
            raise DataError(f"{where} line 1: the header says the times are in {unit}, but time_unit={time_unit!r} "
                            "was asked for; drop one")
        unit = time_unit
    ppd = next((cols[c] for c in _PPD_COLUMNS if c in cols), None)
    optional = [c for c in CSV_COLUMNS["optional"] if c in cols]
    return _CsvHeader(cols, optional, ppd, TIME_UNITS[unit or "ms"], len(header))


def _number(row: list[str], i: int, column: str, where: str) -> float:
    text = row[i].strip()
    try:
        v = float(text)
    except ValueError:
        v = math.nan
    if not math.isfinite(v):
        raise DataError(f"{where}: column {column} is {text!r}, expected a finite number (drop rows with lost tracking)")
    return v


@dataclass
class _ImageRows:
    """What the CSV holds for one image while it is being read."""

    path: Path
    size: tuple[int, int]
    x: list[float] = field(default_factory=list)
    y: list[float] = field(default_factory=list)
    subject: list[str] = field(default_factory=list)
    onset: list[float] = field(default_factory=list)
    duration: list[float] = field(default_factory=list)
    ppd: float | None = None
    n_clipped: int = 0
    n_dropped: int = 0


def _place_point(x: float, y: float, rec: _ImageRows, outside: str, where: str) -> tuple[float, float] | None:
    """The border rule for one CSV point: the point, the clipped point, ``None`` (dropped), or an error."""
    from .metrics.points import BORDER_TOLERANCE, outside_distance

    w, h = rec.size
    d = float(outside_distance(x, y, w, h))
    if d == 0.0:
        return x, y
    if outside == "drop":
        rec.n_dropped += 1
        return None
    if outside == "clip" and d <= BORDER_TOLERANCE:
        rec.n_clipped += 1
        return min(max(x, 0.0), w - 1.0), min(max(y, 0.0), h - 1.0)
    limit = "" if outside == "error" else f" by more than {BORDER_TOLERANCE:g} pixel"
    raise DataError(
        f"{where}: point (x={x:g}, y={y:g}) is outside image {rec.path.name} ({w} x {h}){limit}; x and y are "
        f"0-based pixel coordinates, 0 <= x <= {w - 1}, 0 <= y <= {h - 1} (subtract 1 from 1-based MATLAB "
        "coordinates); points up to one pixel outside are clipped onto the border with outside='clip', and "
        "outside='drop' (--outside drop) leaves every outside point out"
    )


def _read_row(row: list[str], hd: _CsvHeader, where: str, index: _ImageIndex,
              per_image: dict[str, _ImageRows], outside: str) -> None:
    """Validate one CSV row and add its fixation to its image's record."""
    if len(row) < hd.n_fields:
        raise DataError(f"{where}: {len(row)} field(s), the header has {hd.n_fields}")
    img_path = index.find(row[hd.cols["image"]].strip(), where)
    name = img_path.stem
    rec = per_image.get(name)
    if rec is None:
        rec = per_image[name] = _ImageRows(img_path, _image_size(img_path))
    elif rec.path != img_path:
        raise DataError(f"{where}: {img_path.name} and {rec.path.name} both have fixations, but images are named "
                        f"by file stem ({name!r}: saliency maps are matched by it); rename one of them")
    vals = {c: _number(row, hd.cols[c], c, where) for c in ("x", "y", *hd.optional)}
    if vals.get("duration", 0.0) < 0:
        raise DataError(f"{where}: negative duration {vals['duration']:g}")
    if hd.ppd is not None:
        ppd = _number(row, hd.ppd, "pixels_per_degree", where)
        if ppd <= 0 or (rec.ppd is not None and ppd != rec.ppd):
            raise DataError(f"{where}: pixels_per_degree {ppd:g} must be > 0 and the same on every row of image "
                            f"{img_path.name} (earlier rows: {rec.ppd})")
        rec.ppd = ppd
    placed = _place_point(vals["x"], vals["y"], rec, outside, where)
    if placed is None:
        return
    rec.x.append(placed[0])
    rec.y.append(placed[1])
    rec.subject.append(row[hd.cols["subject"]].strip() or "?")
    for c in hd.optional:
        getattr(rec, c).append(vals[c] * hd.time_factor)


def _item_from_rows(name: str, rec: _ImageRows, optional: Sequence[str]) -> ImageFixations:
    return ImageFixations(
        name=name, image_path=rec.path, size=rec.size,
        x=np.asarray(rec.x, dtype=np.float64), y=np.asarray(rec.y, dtype=np.float64),
        subject=np.asarray(rec.subject, dtype=str),
        onset=np.asarray(rec.onset, dtype=np.float64) if "onset" in optional else None,
        duration=np.asarray(rec.duration, dtype=np.float64) if "duration" in optional else None,
        n_clipped=rec.n_clipped, n_dropped=rec.n_dropped, pixels_per_degree=rec.ppd,
    )


def load_csv(
    path: str | os.PathLike,
    *,
    images: str | os.PathLike | None = None,
    pixels_per_degree: float | None = None,
    outside: str = "clip",
    time_unit: str | None = None,
    encoding: str | None = None,
) -> FixationDataset:
    """Load the generic layout: a folder of images plus one CSV of fixations.

    ``path`` is the CSV file, or a folder holding it (``fixations.csv``, or its only ``.csv``).  The images
    are in ``images`` when given, otherwise in an ``images/`` subfolder of the CSV's folder when there is
    one, otherwise next to the CSV.

    The CSV has a header row with the columns ``image``, ``subject``, ``x``, ``y`` and optionally
    ``onset`` and ``duration``, and ``pixels_per_degree`` (or ``ppd``; one value per image, for blurs
    given in degrees); other columns are ignored.  ``image`` is the image's exact file name (``cat.jpg``),
    or its stem (``cat``) when no other image in the folder has that stem; two files with one stem
    (``cat.jpg``, ``cat.png``) cannot both be used, since images are named by stem.  ``subject`` is any
    label; ``x``, ``y`` are **0-based pixel coordinates with pixel centres at integers** (column, row;
    ``0 <= x <= W - 1`` for fixations on pixel centres, ``-0.5 <= x < W - 0.5`` at most).  Data in
    1-based (MATLAB) coordinates must have 1 subtracted first.  Images without a row are not part of the
    data set.

    ``outside``: what to do with a point beyond its image: ``"clip"`` (default) moves a point at most one
    pixel outside onto the border pixel (counted in :attr:`ImageFixations.n_clipped`) and refuses one
    further out; ``"error"`` refuses every outside point; ``"drop"`` leaves every outside point out
    (counted in :attr:`ImageFixations.n_dropped`).  ``time_unit``: ``"ms"`` or ``"s"``, the unit of onset
    and duration; a header such as ``duration_s`` or ``onset (ms)`` says it too (the two must agree);
    neither: milliseconds.  Times are stored in milliseconds.  ``encoding``: the text encoding; default
    UTF-8 (with or without a BOM) or UTF-16 with a BOM.

    Raises :class:`~salience.errors.DataError`, naming the CSV line, for: a missing column, an unknown or
    ambiguous image, a non-numeric or missing value, a point outside its image (see ``outside``), text in
    another encoding, and an empty file.  An image whose size cannot be read is left out and listed in
    :attr:`FixationDataset.unreadable` (the evaluation reports it as skipped).
    """
    if outside not in OUTSIDE_RULES:
        raise DataError(f"outside must be one of {', '.join(OUTSIDE_RULES)}, got {outside!r}")
    csv_path, img_dir = _csv_paths(path, images)
    index = _ImageIndex(img_dir)
    text = _read_text(csv_path, encoding)
    reader = csv.reader(_io.StringIO(text, newline=""))
    where = f"'{csv_path}'"
    try:
        header = next(reader)
    except StopIteration:
        raise DataError(f"{where} is empty; expected a header row: image,subject,x,y[,onset,duration]") from None
    except csv.Error as exc:
        raise DataError(f"{where} line 1: not valid CSV ({exc})") from None
    hd = _parse_header(header, where, time_unit)
    per_image: dict[str, _ImageRows] = {}
    unreadable: dict[str, str] = {}
    n_rows = 0
    try:
        for row in reader:
            if not row or all(not c.strip() for c in row):
                continue
            n_rows += 1
            at = f"{where} line {reader.line_num}"
            try:
                _read_row(row, hd, at, index, per_image, outside)
            except ImageReadError as exc:
                unreadable.setdefault(Path(row[hd.cols["image"]].strip()).stem, str(exc))
    except csv.Error as exc:
        raise DataError(f"{where} line {reader.line_num}: not valid CSV ({exc})") from None
    if n_rows == 0:
        raise DataError(f"{where} has a header but no fixation rows")
    items = tuple(_item_from_rows(name, per_image[name], hd.optional) for name in sorted(per_image))
    return FixationDataset(csv_path.stem, items, root=csv_path.parent, pixels_per_degree=pixels_per_degree,
                           unreadable=unreadable)


def _csv_paths(path: str | os.PathLike, images: str | os.PathLike | None) -> tuple[Path, Path]:
    """The CSV file and the image folder of :func:`load_csv`."""
    p = Path(path).expanduser()
    if p.is_dir():
        csv_path = _find_csv(p)
    elif p.is_file():
        csv_path = p
    elif p.exists():
        raise DataError(f"'{p}' is not a regular file; pass a CSV file of fixations or the folder holding it")
    else:
        raise DataError(f"'{p}' does not exist; pass a CSV file of fixations or the folder holding it")
    if images is not None:
        img_dir = Path(images).expanduser()
        if not img_dir.is_dir():
            raise DataError(f"image folder '{img_dir}' does not exist")
    else:
        img_dir = csv_path.parent / "images" if (csv_path.parent / "images").is_dir() else csv_path.parent
    return csv_path, img_dir


# --------------------------------------------------------------------------------------------------------
# folders of fixation maps (MIT1003 style)
# --------------------------------------------------------------------------------------------------------

#: suffixes stripped from map file stems to find their image (MIT1003: ``i05june05_static_street_boston_p1010764_fixPts.jpg``)
POINTS_SUFFIXES = ("_fixPts", "_fixpts", "_fixations", "_fix")
DENSITY_SUFFIXES = ("_fixMap", "_fixmap", "_density", "_map")


def _first_dir(root: Path, names: Sequence[str]) -> Path | None:
    for n in names:
        if (root / n).is_dir():
            return root / n
    return None


def _map_files(folder: Path | None, suffixes: Sequence[str], images: dict[str, Path],
               require_suffix: bool) -> dict[str, Path]:
    """Map files of a folder, keyed by the image stem they belong to."""
    found: dict[str, Path] = {}
    if folder is None:
        return found
    for p in sorted(folder.iterdir()):
        if not (p.is_file() and p.suffix.lower() in MAP_EXTENSIONS):
            continue
        stem = p.stem
        key = None
        for suf in suffixes:
            if stem.endswith(suf) and stem[: -len(suf)] in images:
                key = stem[: -len(suf)]
                break
        if key is None and not require_suffix and stem in images:
            key = stem
        if key is None:
            continue
        if key in found:
            raise DataError(f"two maps in '{folder}' belong to image {key!r}: {found[key].name} and {p.name}")
        found[key] = p
    return found


def load_map_folder(
    root: str | os.PathLike,
    *,
    images: str | os.PathLike | None = None,
    fixations: str | os.PathLike | None = None,
    maps: str | os.PathLike | None = None,
    pixels_per_degree: float | None = None,
) -> FixationDataset:
    """Load a folder of ground-truth fixation maps (MIT1003 style).

    Layout (each part may be given explicitly; otherwise looked up under ``root``):

    - ``images``: the stimuli, in ``images/``, ``stimuli/`` or ``ALLSTIMULI/``;
    - ``fixations``: binary fixation maps, one per image (PNG / NPY / JPEG, any non-zero pixel above half
      of the map's maximum is a fixation, so JPEG noise is ignored), in ``fixations/``, or in
      ``ALLFIXATIONMAPS/`` with the MIT1003 suffix ``_fixPts``;
    - ``maps``: continuous fixation maps, in ``maps/``, or in ``ALLFIXATIONMAPS/`` with the suffix
      ``_fixMap``; used as the ground truth of CC, KL, SIM and EMD instead of blurring the points.

    Maps are matched to images by file stem, after removing a suffix of :data:`POINTS_SUFFIXES` /
    :data:`DENSITY_SUFFIXES`.  Every image needs a binary fixation map (the point metrics need points);
    continuous maps are optional.  Fixations from binary maps have no subject (``"?"``), so the
    inter-observer baseline is not available for such data.
    """
    base = Path(root).expanduser()
    if not base.is_dir():
        raise DataError(f"'{base}' is not a folder; expected a folder with images/ and fixations/ (or MIT1003's "
                        "ALLSTIMULI/ and ALLFIXATIONMAPS/)")
    img_dir = Path(images).expanduser() if images is not None else _first_dir(base, ("images", "stimuli", "ALLSTIMULI"))
    if img_dir is None or not img_dir.is_dir():
        raise DataError(f"no image folder in '{base}': expected images/, stimuli/ or ALLSTIMULI/")
    index = {p.stem: p for p in sorted(img_dir.iterdir()) if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS}
    if not index:
        raise DataError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in '{img_dir}'")
    def folder(given: str | Path | None, plain: str) -> tuple[Path | None, bool]:
        """The folder passed, else ``base/plain``, else MIT1003's shared ALLFIXATIONMAPS/ (whose files need
        its name suffixes: the flag); (None, False) if none exists."""
        if given is not None:
            return Path(given).expanduser(), False
        if (base / plain).is_dir():
            return base / plain, False
        mit = base / "ALLFIXATIONMAPS"
        return (mit, True) if mit.is_dir() else (None, False)

    fix_dir, fix_req = folder(fixations, "fixations")
    if fix_dir is None:
        raise DataError(f"no fixation maps in '{base}': expected fixations/ (binary maps) or ALLFIXATIONMAPS/")
    den_dir, den_req = folder(maps, "maps")
    for d in (fix_dir, den_dir):
        if d is not None and not d.is_dir():
            raise DataError(f"map folder '{d}' does not exist")
    points = _map_files(fix_dir, POINTS_SUFFIXES, index, fix_req)
    density = _map_files(den_dir, DENSITY_SUFFIXES, index, den_req)
    missing = [s for s in index if s not in points]
    if missing:
        raise DataError(
            f"{len(missing)} image(s) in '{img_dir}' have no binary fixation map in '{fix_dir}' "
            f"(first: {', '.join(missing[:5])}); maps are matched by file stem"
        )
    items = []
    for stem in sorted(index):
        w, h = _image_size(index[stem])
        fmap = load_saliency_map(points[stem], shape=(h, w), resize=False)
        top = float(fmap.max())
        rows, cols = np.nonzero(fmap > top / 2.0) if top > 0 else (np.zeros(0, int), np.zeros(0, int))
        if rows.size == 0:
            raise DataError(f"fixation map '{points[stem]}' has no fixated pixel (it is all zero)")
        items.append(ImageFixations(
            name=stem, image_path=index[stem], size=(w, h),
            x=cols.astype(np.float64), y=rows.astype(np.float64),
            subject=np.full(cols.shape, "?", dtype=str), density_path=density.get(stem),
        ))
    return FixationDataset(base.name, tuple(items), root=base, pixels_per_degree=pixels_per_degree)


# --------------------------------------------------------------------------------------------------------
# saliency maps made elsewhere
# --------------------------------------------------------------------------------------------------------

def load_saliency_map(path: str | os.PathLike, *, shape: tuple[int, int] | None = None,
                      resize: bool = True) -> np.ndarray:
    """Read a map file (PNG/JPEG/TIFF/BMP as grey levels, or NPY) as float64 ``(H, W)``.

    8-bit images become ``value / 255`` (as MATLAB's ``im2double``), 16-bit ``value / 65535``; colour
    images are averaged over their channels.  NPY arrays must be 2-D (or ``(H, W, 1)``), real and finite.
    With ``shape`` and ``resize`` a map of another size is resized to it (bicubic, OpenCV); with
    ``resize=False`` a size mismatch is a :class:`~salience.errors.DataError`.
    """
    p = Path(path)
    if p.suffix.lower() == ".npy":
        try:
            arr = np.load(p, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read map '{p}' as a .npy array: {exc}") from None
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[:, :, 0]
        if arr.ndim != 2 or arr.size == 0 or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
            raise DataError(f"map '{p}' must be a non-empty 2-D real array, got shape {arr.shape}, dtype {arr.dtype}")
        arr = arr.astype(np.float64)
        if not np.all(np.isfinite(arr)):
            raise DataError(f"map '{p}' contains NaN or infinite values")
    else:
        from PIL import Image

        try:
            with Image.open(p) as im:
                im.load()
                if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                    arr = np.asarray(im).astype(np.float64) / 65535.0
                elif im.mode == "F":
                    arr = np.asarray(im, dtype=np.float64)
                else:
                    arr = np.asarray(im.convert("L") if im.mode not in ("L", "RGB") else im, dtype=np.float64)
                    if arr.ndim == 3:
                        arr = arr.mean(axis=2)
                    arr = arr / 255.0
        except (OSError, ValueError, SyntaxError) as exc:
            raise DataError(f"cannot read map '{p}' as an image: {exc}") from None
        if not np.all(np.isfinite(arr)):
            raise DataError(f"map '{p}' contains NaN or infinite values")
    if shape is not None and arr.shape != tuple(shape):
        if not resize:
            raise DataError(f"map '{p}' is {arr.shape[1]} x {arr.shape[0]}, its image is {shape[1]} x {shape[0]}")
        import cv2

        arr = cv2.resize(arr, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC).astype(np.float64)
    return arr


def find_saliency_maps(folder: str | os.PathLike, names: Sequence[str]) -> tuple[dict[str, Path], list[str]]:
    """Match the map files of ``folder`` to image ``names``.

    A map belongs to an image when its file stem is the image's name (``001.npy``) or the image's name
    followed by ``_<method>`` with a method of the registry (``001_itti.npy``: how ``salience map --npy``
    and ``salience explain --npy`` name their maps; their ``_overlay`` / ``_scanpath`` / ``_panel`` PNGs
    are not maps and are ignored).  A map with both a ``.npy`` and an image file takes the ``.npy``
    (lossless).  Two methods' maps of one image in one folder are ambiguous: a
    :class:`~salience.errors.DataError` asks for one folder per method.

    Returns ``(found, missing)``: ``found[name]`` is the map file, ``missing`` the names without one.
    """
    from .registry import method_names

    d = Path(folder).expanduser()
    if not d.is_dir():
        raise DataError(f"saliency-map folder '{d}' does not exist")
    by_stem: dict[str, Path] = {}
    for p in sorted(d.iterdir()):
        if p.is_file() and p.suffix.lower() in MAP_EXTENSIONS:
            if p.stem not in by_stem or p.suffix.lower() == ".npy":
                by_stem[p.stem] = p
    suffixes = [f"_{m}" for m in method_names()]
    found: dict[str, Path] = {}
    for n in names:
        if n in by_stem:
            found[n] = by_stem[n]
            continue
        mine = [by_stem[n + suf] for suf in suffixes if n + suf in by_stem]
        if len(mine) > 1:
            raise DataError(f"saliency-map folder '{d}' holds maps of several methods for image {n!r} "
                            f"({', '.join(p.name for p in mine)}); put each method's maps in a folder of its own")
        if mine:
            found[n] = mine[0]
    missing = [n for n in names if n not in found]
    return found, missing


# --------------------------------------------------------------------------------------------------------
# one entry point for the CLI
# --------------------------------------------------------------------------------------------------------

def load_dataset(spec: str, data_dir: str | os.PathLike | None = None, **kwargs: Any) -> FixationDataset:
    """Load a data set from a CLI-style spec: ``osie``, ``csv:PATH`` or ``maps:PATH``.

    For ``osie``, ``data_dir`` is the OSIE folder or the folder holding ``osie/`` (default
    :func:`shared_data_dir`).  Relative ``csv:`` / ``maps:`` paths are taken relative to ``data_dir`` when
    given and the path does not exist as is.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise DataError("the data set must be 'osie', 'csv:PATH' or 'maps:PATH'")
    kind, _, rest = spec.strip().partition(":")
    kind = kind.lower()

    def _resolve(p: str) -> Path:
        path = Path(p).expanduser()
        if not path.exists() and data_dir is not None and not path.is_absolute():
            path = Path(data_dir).expanduser() / path
        return path

    if kind == "osie" and not rest:
        return load_osie(data_dir)
    if kind == "csv" and rest:
        return load_csv(_resolve(rest), **kwargs)
    if kind == "maps" and rest:
        return load_map_folder(_resolve(rest), **kwargs)
    raise DataError(f"unknown data set {spec!r}; expected 'osie', 'csv:PATH' (a CSV of fixations and its images) "
                    "or 'maps:PATH' (a folder of images and fixation maps)")
