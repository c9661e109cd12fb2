"""Spectral peers of Itti-Koch: spectral residual, image signature and frequency-tuned saliency.

Every function takes an image as :func:`salience.load_image` returns it (float32 ``(H, W, 3)`` RGB in
``[0, 1]``; other arrays are validated and converted) plus keyword parameters, and returns a float32
``(H, W)`` map at the input's size, finite, min-max normalised to ``[0, 1]``.  A map without any structure
(a uniform image) is all zeros.  The input array is never modified.

Spectral residual and image signature work, as their papers do, on a small copy of the image (64 pixels
wide by default, aspect ratio kept; images narrower than that are used at their own size) and resize the
map back to the input's size with bilinear interpolation.  Frequency-tuned works at full resolution.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import cv2
import numpy as np
from scipy import fft as _fft

from ..check import check_int, check_real
from ..errors import InputError
from ..io import method_input

__all__ = ["spectral_residual", "image_signature", "frequency_tuned"]


# ---- shared helpers -------------------------------------------------------------------------------------

def _working_size(height: int, width: int, target_width: int) -> tuple[int, int]:
    """(h, w) of the working copy: ``target_width`` wide with the aspect ratio kept; never enlarged."""
    w = min(target_width, width)
    h = max(1, int(round(height * w / width)))
    return h, w


def _downsample(arr: np.ndarray, h: int, w: int) -> np.ndarray:
    """Area-average (anti-aliased) reduction to (h, w).

    A single-channel image is first halved with OpenCV's fast 2 x 2 area path while that keeps the
    result exact (even sizes; an even integer factor, or no integer factor at all) and at least twice the
    target: an area average of 2 x 2 area averages is the area average, and this is about a third faster
    than one large-factor area resize.
    """
    while arr.ndim == 2:
        ah, aw = arr.shape
        if ah % 2 or aw % 2 or ah < 4 * h or aw < 4 * w:
            break
        if ah % h == 0 and aw % w == 0 and ((ah // h) % 2 or (aw // w) % 2):
            break  # an odd integer factor: one exact area resize is left
        arr = cv2.resize(arr, (aw // 2, ah // 2), interpolation=cv2.INTER_AREA)
    if arr.shape[0] == h and arr.shape[1] == w:
        return arr
    return cv2.resize(arr, (w, h), interpolation=cv2.INTER_AREA)


@functools.lru_cache(maxsize=64)
def _blur_kernel(sigma: float) -> np.ndarray:
    """float32 ``(k, 1)`` Gaussian of standard deviation ``sigma``, truncated at 3 sigma (``k`` odd)."""
    ksize = 2 * int(math.ceil(3.0 * sigma)) + 1
    kernel = cv2.getGaussianKernel(ksize, sigma, cv2.CV_32F)
    kernel.setflags(write=False)
    return kernel


def _gaussian_blur(arr: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur (kernel truncated at 3 sigma) of a small 2-D map, with zeros beyond the border.

    Zero padding is what the authors' MATLAB code gets from ``imfilter`` (and it keeps a blob near the
    border from peaking on the border, as a mirrored border would make it).  A separable OpenCV filter:
    every output value is summed in the same order whatever the number of threads.  (Written before as
    two matrix products with the blur operators, ``By @ arr @ Bx.T``; OpenBLAS splits those products
    differently with one thread than with several, which moved maps by 1-3 float32 ulps between machines
    and thread settings; see docs/performance.md for the speed of both.)
    """
    limit = 4.0 * max(arr.shape[:2])
    if float(sigma) > limit:  # the kernel (6 sigma long) would outgrow memory long before it changed the map
        raise InputError(
            f"blur sigma={float(sigma):g} px is far wider than the {arr.shape[1]} x {arr.shape[0]} working map "
            f"(at most {limit:g} px here); such a blur leaves a constant map: use a smaller sigma"
        )
    k = _blur_kernel(float(sigma))
    out = cv2.sepFilter2D(np.ascontiguousarray(arr, dtype=np.float32), cv2.CV_32F, k, k,
                          borderType=cv2.BORDER_CONSTANT)
    return out


def _magnitude(z: np.ndarray) -> np.ndarray:
    """``|z|`` of a complex ``(h, w, 2)`` float32 array, each value rounded the same way wherever it sits.

    ``cv2.magnitude`` gives a value another last bit depending on the address of the row it is in (its
    vector loop and its scalar head round differently), so the same image gave maps 1 ulp apart from one
    call to the next when threads moved the heap (a resumed ``salience evaluate --jobs 2`` differed from
    a single-threaded run).  numpy's square root, products and sum are correctly rounded element by
    element, whatever the vector width or alignment.
    """
    re, im = z[:, :, 0], z[:, :, 1]
    return np.sqrt(re * re + im * im)


def _normalise_and_resize(sal: np.ndarray, height: int, width: int) -> np.ndarray:
    """Min-max to [0, 1] (zeros when flat), then bilinear resize to (height, width); float32."""
    sal = np.asarray(sal, dtype=np.float32)
    lo, hi = cv2.minMaxLoc(sal)[:2]
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi - lo <= 1e-12 * max(1.0, abs(hi)):
        return np.zeros((height, width), np.float32)
    sal = sal - np.float32(lo)
    sal /= sal.max()  # in float32, so that the maximum is exactly 1
    if sal.shape != (height, width):
        # Bilinear output is a two-tap convex combination per axis with float weights (1 - f, f) whose
        # rounded sum is at most 1, so values in [0, 1] stay in [0, 1] (tests check it over many sizes);
        # no clipping pass over the full-size map is needed.
        sal = cv2.resize(sal, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(sal, dtype=np.float32)


# ---- spectral residual ----------------------------------------------------------------------------------

def spectral_residual(image: Any, *, width: int = 64, sigma: float = 8.0, avg_size: int = 3) -> np.ndarray:
    """Spectral-residual saliency (Hou & Zhang 2007).

    The image is converted to grayscale and reduced to ``width`` pixels wide (the paper uses 64).  With
    ``F`` its Fourier transform, ``L = log|F|`` the log-amplitude spectrum and ``P`` the phase, the
    *spectral residual* is ``R = L - h * L`` with ``h`` an ``avg_size`` x ``avg_size`` mean filter (3 x 3 in
    the paper; the spectrum is periodic, so the filter wraps around).  The map is
    ``g * |F^-1[exp(R + iP)]|^2`` with ``g`` a Gaussian of standard deviation ``sigma`` pixels at the
    64-pixel working scale (zeros beyond the border, as the authors' MATLAB ``imfilter``), min-max
    normalised and resized (bilinear) to the input's size.  Amplitudes below 1 % of the mean non-DC
    amplitude are raised to it before the log (exact spectral zeros of synthetic images would otherwise
    streak the map; natural photos are unaffected).

    Default ``sigma=8.0`` is the paper's value (Sec. 2.2, "sigma = 8"); the authors' released MATLAB
    code and OpenCV use a smaller blur (about 2.5-3 pixels), which gives sharper, less centred maps.  When
    the image is narrower than ``width``, it is used at its own width and ``sigma`` shrinks in proportion.

    Parameters
    ----------
    image:
        float32 ``(H, W, 3)`` RGB in ``[0, 1]`` (other arrays are validated and converted).
    width:
        Width in pixels of the working copy (aspect ratio kept); 64 in the paper.
    sigma:
        Standard deviation of the final Gaussian blur, in pixels of a 64-pixel-wide working copy; 0 turns
        the blur off.
    avg_size:
        Side of the mean filter applied to the log-amplitude spectrum (3 in the paper).

    Returns
    -------
    numpy.ndarray
        float32 ``(H, W)``, values in ``[0, 1]`` (all zeros for a uniform image).

    References
    ----------
    X. Hou, L. Zhang. Saliency detection: a spectral residual approach. CVPR 2007.

    Examples
    --------
    >>> import numpy as np
    >>> from salience.bottomup.spectral import spectral_residual
    >>> img = np.full((48, 64, 3), 0.5, np.float32); img[20:26, 40:46] = 1.0
    >>> m = spectral_residual(img)
    >>> m.shape, m.dtype, float(m.max())
    ((48, 64), dtype('float32'), 1.0)
    >>> bool(m[23, 43] > m[5, 5])
    True
    """
    width = check_int("width", width)
    sigma = check_real("sigma", sigma, minimum=0, convert=True)
    avg_size = check_int("avg_size", avg_size)
    img = method_input(image)
    H, W = img.shape[:2]
    h, w = _working_size(H, W, width)
    gray = _downsample(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), h, w)
    if float(gray.max() - gray.min()) <= 1e-6:  # no structure at all: nothing stands out
        return np.zeros((H, W), np.float32)
    spectrum = cv2.dft(gray, flags=cv2.DFT_COMPLEX_OUTPUT)
    amplitude = _magnitude(spectrum)
    # Amplitudes below 1 % of the mean non-DC amplitude are raised to it before the log.  Synthetic
    # images (a box whose side divides the working size) have exactly-zero rows of the spectrum; their
    # log is -inf or huge and negative, which the local average spreads to the neighbouring frequencies
    # and turns into streaks through the whole map.  Natural photos never come near the floor (their
    # maps are unchanged; see the tests).
    n = amplitude.size
    floor = 0.01 * (cv2.sumElems(amplitude)[0] - float(amplitude[0, 0])) / max(1, n - 1)
    log_amp = cv2.log(cv2.max(amplitude, max(floor, 1e-30)))
    # exp(R + iP) with R = L - A (A: the local mean of L) equals F * exp(-A): exp(L) e^{iP} is F itself.
    # Multiplying F by the real factor exp(-A) saves the polar round trip (atan2, sin, cos).
    factor = cv2.exp(-_wrapped_mean(log_amp, avg_size))
    spectrum = cv2.multiply(spectrum, cv2.merge((factor, factor)))
    back = cv2.idft(spectrum, flags=cv2.DFT_COMPLEX_OUTPUT | cv2.DFT_SCALE)
    sal = _magnitude(back)
    sal *= sal
    s = sigma * w / width
    if s > 0:
        sal = _gaussian_blur(sal, s)
    return _normalise_and_resize(sal, H, W)


def _circular_window_sum(x: np.ndarray, a: int, b: int, axis: int) -> np.ndarray:
    """``out[i] = sum(x[(i - d) mod n] for d in -a..b)`` along ``axis``, in O(n) for any window: the window
    covers every index ``q = (a + b + 1) // n`` times, plus a run of ``r = (a + b + 1) % n`` more (the
    offsets ``-a .. -a + r - 1``), a window sum on the doubled axis (a loop over the offsets would never end
    for a hostile ``avg_size``)."""
    n = x.shape[axis]
    q, r = divmod(a + b + 1, n)
    out = np.repeat(x.sum(axis=axis, keepdims=True) * float(q), n, axis=axis)
    if r:
        c = np.cumsum(np.concatenate([x, x], axis=axis), axis=axis)
        c = np.concatenate([np.zeros_like(np.take(c, [0], axis=axis)), c], axis=axis)
        i = np.arange(n)
        hi = (i + a % n) % n + n + 1  # window j = i + a - r + 1 .. i + a (mod n), shifted into the doubled axis
        out += np.take(c, hi, axis=axis) - np.take(c, hi - r, axis=axis)
    return out


def _wrapped_mean(arr: np.ndarray, size: int) -> np.ndarray:
    """``size`` x ``size`` mean filter with periodic borders (a spectrum wraps around)."""
    if size == 1:
        return arr
    a, b = size // 2, (size - 1) // 2
    h, w = arr.shape
    if h < size or w < size:  # the window wraps around the spectrum more than once
        out = _circular_window_sum(_circular_window_sum(arr.astype(np.float64), a, b, 0), a, b, 1)
        return (out / (float(size) * float(size))).astype(arr.dtype)
    padded = cv2.copyMakeBorder(arr, a, b, a, b, cv2.BORDER_WRAP)
    return cv2.blur(padded, (size, size), anchor=(a, a), borderType=cv2.BORDER_REPLICATE)[a:a + h, a:a + w]


# ---- image signature ------------------------------------------------------------------------------------

def _lab(rgb: np.ndarray) -> np.ndarray:
    """CIE L*a*b* (D65, sRGB companding) of float32 RGB in [0, 1]: L in [0, 100], a, b about [-128, 127]."""
    return cv2.cvtColor(np.ascontiguousarray(rgb, dtype=np.float32), cv2.COLOR_RGB2Lab)


def image_signature(image: Any, *, width: int = 64, sigma: float = 0.045, colorspace: str = "lab") -> np.ndarray:
    """Image-signature saliency (Hou, Harel & Koch 2012).

    The image is reduced to ``width`` pixels wide (64 in the paper) and converted to CIE Lab (or kept in
    RGB).  For each channel ``x`` the *image signature* is ``sign(DCT(x))`` and its reconstruction is
    ``x_hat = IDCT(sign(DCT(x)))`` (orthonormal 2-D DCT-II).  The map is
    ``g * sum_c (x_hat_c o x_hat_c)`` (o: element-wise product), with ``g`` a Gaussian whose standard
    deviation is ``sigma`` times the working width (0.045, the authors' default, about 2.9 pixels at 64
    pixels; zeros beyond the border, as the authors' code), min-max normalised and resized (bilinear) to
    the input's size.  DCT coefficients below 1e-5 of the channel's range (1e-3 for L*) are float rounding
    noise of the colour conversion and count as zero, so a uniform image gives zeros.

    Parameters
    ----------
    image:
        float32 ``(H, W, 3)`` RGB in ``[0, 1]`` (other arrays are validated and converted).
    width:
        Width in pixels of the working copy (aspect ratio kept).
    sigma:
        Blur standard deviation as a fraction of the working width; 0 turns the blur off.
    colorspace:
        ``"lab"`` (default, the paper's best) or ``"rgb"``.

    Returns
    -------
    numpy.ndarray
        float32 ``(H, W)``, values in ``[0, 1]`` (all zeros for a uniform image).

    References
    ----------
    X. Hou, J. Harel, C. Koch. Image signature: highlighting sparse salient regions. IEEE TPAMI
    34(1):194-201, 2012.

    Examples
    --------
    >>> import numpy as np
    >>> from salience.bottomup.spectral import image_signature
    >>> img = np.full((48, 64, 3), 0.5, np.float32); img[20:26, 40:46] = (1.0, 0.0, 0.0)
    >>> m = image_signature(img)
    >>> m.shape, m.dtype
    ((48, 64), dtype('float32'))
    >>> bool(m[23, 43] > m[5, 5])
    True
    """
    width = check_int("width", width)
    sigma = check_real("sigma", sigma, minimum=0, convert=True)
    space = str(colorspace).lower()
    if space not in ("lab", "rgb"):
        raise InputError(f"colorspace must be 'lab' or 'rgb', got {colorspace!r}")
    img = method_input(image)
    H, W = img.shape[:2]
    h, w = _working_size(H, W, width)
    small = _downsample(img, h, w)
    chans = _lab(small) if space == "lab" else small
    chans = chans.astype(np.float64)
    sal = np.zeros((h, w), np.float64)
    # Coefficients below 1e-5 of the channel's full range (100 for L*, 1 for RGB) are rounding noise of
    # the colour conversion, not content: their sign would be random, so they count as zero.
    tol = 1e-5 * (100.0 if space == "lab" else 1.0)
    structured = False
    for c in range(chans.shape[2]):
        coeff = _fft.dctn(chans[:, :, c], type=2, norm="ortho")
        sign = np.where(np.abs(coeff) > tol, np.sign(coeff), 0.0)
        if not np.any(sign.ravel()[1:]):  # DC only: a flat channel adds a constant, nothing salient
            continue
        structured = True
        rec = _fft.idctn(sign, type=2, norm="ortho")
        sal += rec * rec
    if not structured:  # a uniform image (the zero-padded blur would otherwise darken the borders)
        return np.zeros((H, W), np.float32)
    sal = sal.astype(np.float32)
    s = sigma * w
    if s > 0:
        sal = _gaussian_blur(sal, s)
    return _normalise_and_resize(sal, H, W)


# ---- frequency-tuned ------------------------------------------------------------------------------------

#: The paper's 5 x 5 separable binomial approximation of a Gaussian, [1 4 6 4 1] / 16.
_BINOMIAL5 = (np.array([1.0, 4.0, 6.0, 4.0, 1.0], np.float32) / np.float32(16.0)).reshape(-1, 1)
_ONES3 = np.ones((1, 3), np.float32)


def frequency_tuned(image: Any, *, blur: bool = True) -> np.ndarray:
    """Frequency-tuned saliency (Achanta, Hemami, Estrada & Susstrunk 2009).

    ``S(x, y) = || I_mu - I_whc(x, y) ||``: the Euclidean distance in CIE Lab between the image's mean
    colour ``I_mu`` and each pixel of ``I_whc``, the image blurred with the paper's 5 x 5 binomial
    (Gaussian-like) kernel ``[1 4 6 4 1] / 16`` to remove fine texture and noise.  Computed at full
    resolution; min-max normalised to ``[0, 1]``.

    Parameters
    ----------
    image:
        float32 ``(H, W, 3)`` RGB in ``[0, 1]`` (other arrays are validated and converted).
    blur:
        Apply the 5 x 5 blur (True, the paper); False uses the raw pixels.

    Returns
    -------
    numpy.ndarray
        float32 ``(H, W)``, values in ``[0, 1]`` (all zeros for a uniform image).

    References
    ----------
    R. Achanta, S. Hemami, F. Estrada, S. Susstrunk. Frequency-tuned salient region detection. CVPR 2009.

    Examples
    --------
    >>> import numpy as np
    >>> from salience.bottomup.spectral import frequency_tuned
    >>> img = np.full((40, 40, 3), 0.5, np.float32); img[10:20, 10:20] = (0.0, 0.0, 1.0)
    >>> m = frequency_tuned(img)
    >>> m.shape, float(m[15, 15]), bool(m[35, 35] < 0.1)
    ((40, 40), 1.0, True)
    """
    img = method_input(image)
    H, W = img.shape[:2]
    lab = _lab(img)
    mean = cv2.mean(lab)[:3]  # accumulated in double precision
    if blur:
        lab = cv2.sepFilter2D(lab, -1, _BINOMIAL5, _BINOMIAL5, borderType=cv2.BORDER_REFLECT)
    diff = cv2.subtract(lab, (*mean, 0.0))
    sal = cv2.sqrt(cv2.transform(cv2.multiply(diff, diff), _ONES3))  # Euclidean norm over L, a, b
    return _normalise_and_resize(sal, H, W)
