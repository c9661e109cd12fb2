"""Medical and scientific images: DICOM (pydicom's bundled files and files written here), 16-bit and float
grayscale PNG / TIFF, and ``salience medical``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from salience.cli import main
from salience.errors import ImageReadError, InputError
from salience.tasks.medical import (
    apply_window,
    load_dicom,
    load_grayscale,
    load_scan,
    percentile_window,
)

pydicom = pytest.importorskip("pydicom", reason="DICOM support is the medical extra: pip install 'salience[medical]'")
from pydicom.data import get_testdata_file


def _bundled(name):
    """A test file that ships inside the pydicom wheel (never downloaded)."""
    try:
        path = get_testdata_file(name, download=False)
    except TypeError:  # pydicom < 3 has no download argument and only returns bundled files here
        path = get_testdata_file(name)
    if path is None:
        pytest.skip(f"{name} is not bundled with this pydicom")
    return path


def _write_dicom(path, pixels, *, slope=None, intercept=None, photometric="MONOCHROME2", window=None,
                 spacing=(0.5, 0.7)):
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import (
        ExplicitVRLittleEndian,
        SecondaryCaptureImageStorage,
        generate_uid,
    )

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "OT"
    arr = np.asarray(pixels, dtype=np.uint16)
    if arr.ndim == 3:
        ds.NumberOfFrames = arr.shape[0]
    ds.Rows, ds.Columns = arr.shape[-2:]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelSpacing = list(spacing)
    if slope is not None:
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    ds.PixelData = arr.tobytes()
    try:
        ds.save_as(path, enforce_file_format=True)
    except TypeError:  # pydicom < 3
        ds.is_little_endian, ds.is_implicit_VR = True, False
        ds.save_as(path, write_like_original=False)
    return path


def test_window_is_dicoms_linear_function():
    """apply_window is DICOM's linear VOI function (c - 0.5, w - 1), and percentile windows map the percentiles to 0 and
    1."""
    c, w = 40.0, 400.0
    v = np.array([c - 0.5 - (w - 1) / 2 - 1, c - 0.5, c - 0.5 + (w - 1) / 2 + 1])
    np.testing.assert_allclose(apply_window(v, c, w), [0.0, 0.5, 1.0])
    assert apply_window(np.array([10.0, 11.0]), 11, 1).tolist() == [0.0, 1.0]
    with pytest.raises(InputError, match="width"):
        apply_window(v, 0, 0)
    p = percentile_window(np.arange(101.0), 10, 90)
    assert p[10] == 0.0 and p[90] == 1.0 and p[50] == pytest.approx(0.5)


def test_bundled_ct_rescale_and_spacing():
    """A CT file's values are rescaled to Hounsfield units with its pixel spacing; a window gives the windowed grey
    image."""
    scan = load_dicom(_bundled("CT_small.dcm"))
    ds = pydicom.dcmread(_bundled("CT_small.dcm"))
    hu = ds.pixel_array.astype(float) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_allclose(scan.values[0], hu)
    assert scan.metadata["pixel_spacing_mm"] == [float(v) for v in ds.PixelSpacing]
    assert scan.metadata["modality"] == "CT" and scan.metadata["window"]["source"] == "min-max"
    soft = load_dicom(_bundled("CT_small.dcm"), window=(40, 400))
    np.testing.assert_allclose(soft.images[0], apply_window(hu, 40, 400), atol=1e-6)
    assert soft.rgb().shape == (128, 128, 3) and np.array_equal(soft.rgb()[..., 0], soft.rgb()[..., 2])


def test_bundled_mr_uses_the_files_window():
    """An MR file's own window centre and width are used when no window is given."""
    scan = load_dicom(_bundled("MR_small.dcm"))
    assert scan.metadata["window"] == {"source": "file", "centre": 600.0, "width": 1600.0}
    np.testing.assert_allclose(scan.images[0], apply_window(scan.values[0], 600, 1600), atol=1e-6)


def test_bundled_multiframe_gives_one_image_per_frame():
    """A multi-frame DICOM gives one image per frame at its rows x columns."""
    scan = load_dicom(_bundled("rtdose.dcm"))
    ds = pydicom.dcmread(_bundled("rtdose.dcm"))
    assert len(scan) == int(ds.NumberOfFrames) and scan.images.shape[1:] == (int(ds.Rows), int(ds.Columns))


def _decodes(path) -> bool:
    try:
        _ = pydicom.dcmread(path).pixel_array
    except Exception:  # noqa: BLE001 - any failure means no usable decoder
        return False
    return True


@pytest.mark.parametrize("name, match", [
    ("rtplan.dcm", "without pixel data"),
    ("MR_truncated.dcm", "truncated or corrupt"),
    ("JPEGLSNearLossless_08.dcm", "pip install"),
])
def test_bundled_bad_files_are_clear_errors(name, match):
    """DICOMs without pixels, truncated ones and ones needing a missing decoder are ImageReadErrors saying which."""
    path = _bundled(name)
    if name.startswith("JPEGLS") and _decodes(path):
        pytest.skip("a JPEG-LS decoder is installed here, so there is no missing decoder to report")
    with pytest.raises(ImageReadError, match=match):
        load_scan(path)


def test_written_files_rescale_monochrome1_and_frames(tmp_path):
    """Rescale slope/intercept, MONOCHROME1 inversion, frames and window sources are applied as DICOM defines them."""
    rng = np.random.default_rng(0)
    px = rng.integers(0, 4000, (20, 30))
    a = load_dicom(_write_dicom(tmp_path / "a.dcm", px, slope=0.5, intercept=-100))
    np.testing.assert_allclose(a.values[0], px * 0.5 - 100)
    assert a.metadata["pixel_spacing_mm"] == [0.5, 0.7]
    mono1 = load_dicom(_write_dicom(tmp_path / "b.dcm", px, photometric="MONOCHROME1"))
    mono2 = load_dicom(_write_dicom(tmp_path / "c.dcm", px))
    np.testing.assert_allclose(mono1.images[0], 1.0 - mono2.images[0], atol=1e-6)
    assert mono1.metadata["inverted"] is True
    frames = load_dicom(_write_dicom(tmp_path / "d.dcm", rng.integers(0, 100, (3, 8, 9))))
    assert frames.images.shape == (3, 8, 9)
    win = load_dicom(_write_dicom(tmp_path / "e.dcm", px, window=(1000, 500)))
    assert win.metadata["window"]["source"] == "file"
    assert load_dicom(tmp_path / "e.dcm", percentiles=(5, 95)).metadata["window"]["source"] == "percentiles"


def test_written_truncated_and_non_dicom_files(tmp_path):
    """Truncated and non-DICOM files are ImageReadErrors."""
    good = _write_dicom(tmp_path / "a.dcm", np.arange(600).reshape(20, 30))
    data = good.read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[: len(data) - 300])
    with pytest.raises(ImageReadError):
        load_scan(cut)
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"not a dicom file at all" * 10)
    with pytest.raises(ImageReadError, match="DICOM"):
        load_scan(junk)


def test_16_bit_and_float_grayscale(tmp_path):
    """16-bit PNGs and float TIFFs keep their values and can be windowed; colour images are refused as scans."""
    ramp = (np.arange(64 * 80).reshape(64, 80) * 12).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "r16.png")
    s = load_grayscale(tmp_path / "r16.png")
    np.testing.assert_allclose(s.values[0], ramp)
    assert s.images.min() == 0 and s.images.max() == 1
    s = load_scan(tmp_path / "r16.png", window=(30000, 20000))
    np.testing.assert_allclose(s.images[0], apply_window(ramp.astype(float), 30000, 20000), atol=1e-6)
    f = np.linspace(-3, 5, 64 * 80, dtype=np.float32).reshape(64, 80)
    Image.fromarray(f, mode="F").save(tmp_path / "f.tif")
    s = load_scan(tmp_path / "f.tif", percentiles=(0, 100))
    np.testing.assert_allclose(s.images[0], (f - f.min()) / (f.max() - f.min()), atol=1e-6)
    Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(ImageReadError, match="colour"):
        load_scan(tmp_path / "rgb.png")


def test_cli_medical_writes_maps_and_metadata_and_nothing_for_a_bad_file(tmp_path, capsys):
    """`salience medical` writes per-frame maps, overlays and metadata, nothing for a bad file, and refuses a zero-width
    window."""
    good = _write_dicom(tmp_path / "scan.dcm", np.random.default_rng(1).integers(0, 3000, (2, 40, 50)))
    bad = _bundled("rtplan.dcm")
    out = tmp_path / "out"
    assert main(["medical", str(good), str(bad), "--window", "1500,3000", "--overlay", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "without pixel data" in err
    meta = json.loads((out / "scan_spectral-residual.json").read_text())
    assert meta["frames"] == 2 and meta["pixel_spacing_mm"] == [0.5, 0.7] and meta["window"]["centre"] == 1500
    for f in ("scan_f001_image.png", "scan_f002_spectral-residual.png", "scan_f002_spectral-residual_overlay.png"):
        assert (out / f).exists()
    assert not any("rtplan" in p.name for p in out.iterdir())
    assert main(["medical", str(good), "--window", "1,0", "--out", str(out)]) == 2
