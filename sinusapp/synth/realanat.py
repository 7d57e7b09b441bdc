"""Real-anatomy training cohort: NasalSeg CT crops with known CRS disease placed in their cavities.

Each case takes a real paranasal-sinus CT crop from NasalSeg (Zhang et al., Sci Data 2024,
doi:10.5281/zenodo.13893419, CC BY 4.0) as background, varies it (left-right mirroring, elastic
deformation, resampling to another pixel spacing / slice thickness) and places the disease of a
:class:`~sinusapp.synth.cohort.CaseSpec` inside the labelled cavities (maxillary L/R, nasal
cavity): mucosal thickening along the walls, polyps, retention cysts, air-fluid levels, partial
and complete opacification. The lesion never leaves the cavity label, so per-sinus
opacification ``lesion ∧ label / label`` is exact. Lesion HU and noise follow the scan's own;
edges carry partial volume (fractional occupancy blended with the original HU, mask =
occupancy >= 0.5). A kernel (blur / unsharp) and extra noise are applied last, to lesion and
background alike. The same seed gives the same arrays.

The NasalSeg patients are split train / val / test once (:func:`load_split`); a case is in
``cohort=test`` only when its background is a test patient.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from sinusapp.synth.cohort import CaseSpec

__all__ = [
    "Background",
    "RealCase",
    "augment_background",
    "background_patients",
    "excluded_patients",
    "grow_to_walls",
    "kernel_and_noise",
    "load_background",
    "load_split",
    "mirror_background",
    "place_disease",
    "plan_entry",
    "render_real_case",
]

log = logging.getLogger(__name__)

#: NasalSeg label value → SinusApp label (SINUS_LABELS: 1 maxillary L, 2 maxillary R, 9 nasal).
_NASALSEG_TO_SINUSAPP = {1: 2, 2: 1, 3: 9, 4: 9, 5: 15}
MAX_L, MAX_R, NASAL = 1, 2, 9
#: SINUS_LABELS pairs that swap in a left-right mirror (maxillary, anterior / posterior
#: ethmoid; whole-head backgrounds carry the ethmoids too)
_LEFT_RIGHT_PAIRS = ((1, 2), (3, 4), (5, 6))
#: label values from here up are a renderer's own, carried through the augmentation: a
#: whole-head background's unlabelled region (:mod:`sinusapp.synth.realhead`) is this value,
#: and ``HIDDEN_BASE + v`` is a cavity ``v`` known there to the sinus labelling only;
#: ``CAVITY_BASE + v`` is a cavity ``v`` known to both (its air: no lesion); mirroring swaps
#: their left-right values too
HIDDEN_BASE = 200
CAVITY_BASE = 230
#: nasopharynx, kept while rendering (so no cavity grows into it) and written as 0
_NASOPHARYNX_TMP = 15
_HU_MIN, _HU_MAX = -1024, 3071


def load_split() -> dict[str, str]:
    """Patient id → ``train`` / ``val`` / ``test`` for the usable NasalSeg cases (package data).

    The split of all 90 cases is fixed; patients listed under ``excluded``
    (:func:`excluded_patients`: incomplete or misaligned labels, or a validation / test id
    whose CT is a training id's scan) are left out.
    """
    doc = _split_doc()
    excluded = set(doc.get("excluded", {}))
    out: dict[str, str] = {}
    for split in ("train", "val", "test"):
        for pid in doc[split]:
            if pid in out:
                raise ValueError(f"nasalseg_split.json: patient {pid} is in two splits")
            out[pid] = split
    return {p: s for p, s in out.items() if p not in excluded}


def excluded_patients() -> dict[str, str]:
    """NasalSeg patients left out of every split, with the reason (incomplete or misaligned
    labels, or the same scan as another id's: :func:`duplicate_images`)."""
    return dict(_split_doc().get("excluded", {}))


def recorded_duplicates() -> list[list[str]]:
    """Groups of NasalSeg ids whose CT is the same image (``duplicates`` of the split file)."""
    return [list(g) for g in _split_doc().get("duplicates", [])]


def pixel_digest(series: Path) -> str:
    """SHA-256 of a DICOM series' pixel data, slice files in name order (header ignored).

    Two NasalSeg ids with the same digest hold the same scan: the re-upload repeats some
    scans under new ids with another origin (P078 / P079 differ by 5 mm in y and 15 mm in z),
    so geometry and UIDs cannot tell them apart. Reads the stored (compressed) bytes without
    decoding: 90 crops in about 1.5 s.
    """
    import hashlib

    import pydicom

    h = hashlib.sha256()
    files = sorted(Path(series).glob("*.dcm"))
    if not files:
        raise FileNotFoundError(f"{series}: no .dcm files; expected a NasalSeg 'ct' series folder")
    for f in files:
        h.update(pydicom.dcmread(f, specific_tags=["PixelData"]).PixelData)
    return h.hexdigest()


def duplicate_images(root: Path) -> list[list[str]]:
    """Groups (sorted, of two or more) of the patients under ``root`` whose CT pixel data are
    identical (:func:`pixel_digest`); the split must never put one group in two splits."""
    by_digest: dict[str, list[str]] = {}
    for folder in sorted(p for p in Path(root).iterdir() if (p / "ct").is_dir()):
        by_digest.setdefault(pixel_digest(folder / "ct"), []).append(folder.name)
    return sorted(sorted(g) for g in by_digest.values() if len(g) > 1)


def _split_doc() -> dict[str, Any]:
    text = resources.files("sinusapp.synth").joinpath("nasalseg_split.json").read_text("utf-8")
    return json.loads(text)


@dataclass(frozen=True, slots=True)
class Background:
    """A real CT crop: float32 HU ``[slice, row, column]``, SinusApp labels, index → LPS affine.

    ``labels`` still carries the nasopharynx as ``15`` (written as 0 by the renderer).
    """

    patient: str
    hu: np.ndarray
    labels: np.ndarray
    affine: np.ndarray


def background_patients(root: Path) -> set[str]:
    """The patients ``root`` holds as backgrounds: ``<patient>/labels.nrrd`` folders (the
    NasalSeg folder) or ``<patient>.npz.xz`` pack entries
    (:mod:`sinusapp.synth.realanat_pack`); empty when ``root`` is no folder."""
    from sinusapp.synth.realanat_pack import PACK_SUFFIX

    root = Path(root)
    if not root.is_dir():
        return set()
    names = {p.name for p in root.iterdir() if (p / "labels.nrrd").is_file()}
    return names | {p.name[: -len(PACK_SUFFIX)] for p in root.glob(f"*{PACK_SUFFIX}")}


def load_background(*, root: Path, patient: str) -> Background:
    """Load ``root/patient`` (CT DICOM + labels.nrrd) with SinusApp labels on the CT grid.

    The NasalSeg sides (1 = right maxillary, 2 = left) are checked against the geometry: the
    left maxillary label must lie at larger LPS x (patient left) than the right one. A pack
    (:mod:`sinusapp.synth.realanat_pack`: ``root/<patient>.npz.xz``, checked when it was
    written) is read instead when ``root`` holds one.

    Raises
    ------
    ValueError
        The volume is not axial with rows/columns along +y/+x, or the sides do not match.
    """
    from sinusapp.synth.realanat_pack import PACK_SUFFIX, read_pack_entry

    packed = Path(root) / f"{patient}{PACK_SUFFIX}"
    if packed.is_file():
        return read_pack_entry(packed, patient=patient)
    from sinusapp.dicom import load_volume
    from sinusapp.imaging.masks import load_reference_mask

    folder = Path(root) / patient
    vol = load_volume(folder / "ct")
    raw = load_reference_mask(folder / "labels.nrrd", volume=vol)
    a = vol.affine
    if not (a[0, 2] > 0 and a[1, 1] > 0 and a[2, 0] > 0):
        raise ValueError(
            f"{folder}: expected an axial series with columns along +x, rows along +y and "
            f"slices along +z, got affine {a[:3, :3].round(3).tolist()}; NasalSeg crops are"
        )
    x_right = np.argwhere(raw == 1)[:, 2].mean()
    x_left = np.argwhere(raw == 2)[:, 2].mean()
    if not x_left > x_right:
        raise ValueError(
            f"{folder}: NasalSeg label 2 (left maxillary) lies right of label 1 "
            f"(column {x_left:.0f} vs {x_right:.0f}); the side convention does not hold here"
        )
    lut = np.zeros(256, np.uint8)
    for src, dst in _NASALSEG_TO_SINUSAPP.items():
        lut[src] = dst
    return Background(
        patient=patient, hu=vol.array.astype(np.float32), labels=lut[raw], affine=a.copy()
    )


def _interp_matrix(n: int, c: int) -> np.ndarray:
    """(n, c) weights interpolating ``c`` control values linearly onto ``n`` points."""
    pos = np.linspace(0.0, c - 1.0, n)
    lo = np.minimum(np.floor(pos).astype(int), c - 2)
    w = (pos - lo).astype(np.float32)
    m = np.zeros((n, c), np.float32)
    m[np.arange(n), lo] = 1.0 - w
    m[np.arange(n), lo + 1] = w
    return m


def _smooth_field(
    shape: tuple[int, ...], *, rng: np.random.Generator, spacing: np.ndarray, scale_mm: float
) -> np.ndarray:
    """Smooth random field (unit SD, correlation length ``scale_mm``) on ``shape``.

    Gaussian control values every ``scale_mm``, interpolated (separably, as matrix products:
    much faster than ``ndimage.zoom``) onto the grid.
    """
    coarse = [
        max(2, int(np.ceil(n * s / scale_mm)) + 1) for n, s in zip(shape, spacing, strict=True)
    ]
    f = rng.normal(0.0, 1.0, coarse).astype(np.float32)
    mk, mj, mi = (_interp_matrix(n, c) for n, c in zip(shape, coarse, strict=True))
    out = np.einsum("kc,cij->kij", mk, f)
    out = np.einsum("jc,kci->kji", mj, out)
    out = np.ascontiguousarray(out @ mi.T)
    return out / max(float(out.std()), 1e-3)


def mirror_background(bg: Background) -> Background:
    """Left-right mirror: flip along the patient x axis (columns), swap the L/R labels.

    The affine is kept, so the image is a valid scan of a mirrored patient (the new left
    maxillary sinus is the old right one, flipped, and lies at larger LPS x as it must).
    """
    if not bg.affine[0, 2] > 0:
        raise ValueError("mirror_background needs columns along +x (an axial LPS series)")
    flipped = bg.labels[:, :, ::-1]
    swap = np.arange(256, dtype=np.uint8)
    for a, b in _LEFT_RIGHT_PAIRS:
        swap[a], swap[b] = b, a
        for base in (HIDDEN_BASE, CAVITY_BASE):
            swap[base + a], swap[base + b] = base + b, base + a
    lab = swap[flipped]
    return Background(
        patient=bg.patient,
        hu=np.ascontiguousarray(bg.hu[:, :, ::-1]),
        labels=lab,
        affine=bg.affine.copy(),
    )


def augment_background(
    bg: Background,
    *,
    rng: np.random.Generator,
    pixel_range_mm: tuple[float, float] = (0.4, 0.8),
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """Mirror, deform elastically and resample ``bg``; returns ``(hu, labels, affine, params)``.

    Mirroring flips the array along the patient x axis and swaps the L/R labels, keeping the
    affine (so the geometry stays valid). The output grid covers the same extent at the new
    spacing (pixels drawn from ``pixel_range_mm``: a whole-head crop is several times a
    NasalSeg crop, so its callers draw coarser pixels); HU are interpolated linearly, labels
    by nearest neighbour through the same map.
    """
    mirror = bool(rng.uniform() < 0.5)
    if mirror:
        bg = mirror_background(bg)
    hu, lab = bg.hu, bg.labels
    a = bg.affine
    sp_in = np.linalg.norm(a[:3, :3], axis=0)
    pixel = float(rng.uniform(*pixel_range_mm))
    slice_mm = float(rng.choice([0.625, 0.75, 1.0, 1.25, 1.5]))
    sp_out = np.array([slice_mm, pixel, pixel])
    extent = (np.array(hu.shape) - 1) * sp_in
    shape = tuple(int(v) for v in np.floor(extent / sp_out) + 1)
    amp = float(rng.uniform(0.0, 3.0))
    scale = float(rng.uniform(20.0, 35.0))
    coords = np.indices(shape, dtype=np.float32)
    for ax in range(3):
        disp_mm = amp * _smooth_field(shape, rng=rng, spacing=sp_out, scale_mm=scale)
        coords[ax] = (coords[ax] * sp_out[ax] + disp_mm) / sp_in[ax]
    out_hu = ndimage.map_coordinates(hu, coords, order=1, mode="nearest").astype(np.float32)
    out_lab = ndimage.map_coordinates(lab, coords, order=0, mode="nearest").astype(np.uint8)
    aff = a.copy()
    aff[:3, :3] = a[:3, :3] / sp_in * sp_out
    params = {
        "mirrored": mirror,
        "pixel_spacing_mm": round(pixel, 4),
        "slice_spacing_mm": slice_mm,
        "elastic_amplitude_mm": round(amp, 3),
        "elastic_scale_mm": round(scale, 2),
    }
    return out_hu, out_lab, aff, params


def grow_to_walls(labels: np.ndarray, hu: np.ndarray, *, iterations: int = 1) -> np.ndarray:
    """Grow the cavity labels over the unlabelled air / partial-volume rim up to the bone.

    The NasalSeg labels stop a voxel or so short of the bony wall; mucosa placed inside them
    would leave a dark line of air between lesion and bone. Unlabelled voxels below -200 HU
    next to a maxillary sinus join it, so the label covers the whole cavity (one voxel adds
    about 6-12 % to a maxillary label). The nasal cavity is kept as NasalSeg drew it (one
    voxel there would add 20-26 %); :func:`place_disease` fills the wall rim instead.
    """
    out = labels.copy()
    where = np.argwhere(np.isin(labels, (MAX_L, MAX_R)))
    if not len(where):
        return out
    lo = np.maximum(where.min(0) - iterations - 1, 0)
    hi = np.minimum(where.max(0) + iterations + 2, labels.shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    sub, hub = out[box], hu[box]
    for _ in range(iterations):
        free = (sub == 0) & (hub < -200.0)
        for value in (MAX_L, MAX_R):
            grow = ndimage.binary_dilation(sub == value) & free
            sub[grow] = value
            free &= ~grow
    return out


#: Thinnest placed mucosal thickening (mm) at any point of a wall.
_MIN_MUCOSA_MM = 1.5


def _noise_sd(hu: np.ndarray) -> float:
    """Image-noise SD in soft tissue (-100..150 HU): median local SD in 5³ windows.

    Measured on the grid the lesion is placed on, so it includes the smoothing of resampling.
    """
    h = hu.astype(np.float32)
    m = ndimage.uniform_filter(h, size=5)
    var = ndimage.uniform_filter(h * h, size=5) - m * m
    soft = ((h > -100) & (h < 150)).astype(np.float32)
    sel = ndimage.uniform_filter(soft, size=7) > 0.999  # 7³ neighbourhood all soft tissue
    v = var[sel] if sel.sum() > 500 else var.ravel()
    return float(np.clip(np.sqrt(max(float(np.median(v)), 0.0)), 3.0, 80.0))


@dataclass(slots=True)
class _Region:
    """A cavity's bounding box with inside distance (mm) and LPS-y / z coordinates."""

    sl: tuple[slice, slice, slice]
    inside: np.ndarray
    dist: np.ndarray
    idx: np.ndarray  # index grid (3, ...) of the box, float


def _region(labels: np.ndarray, value: int, spacing: np.ndarray) -> _Region | None:
    where = np.argwhere(labels == value)
    if len(where) < 50:
        return None
    lo = np.maximum(where.min(0) - 2, 0)
    hi = np.minimum(where.max(0) + 3, labels.shape)
    sl = tuple(slice(int(lo_), int(hi_)) for lo_, hi_ in zip(lo, hi, strict=True))
    inside = labels[sl] == value
    dist = ndimage.distance_transform_edt(inside, sampling=spacing).astype(np.float32)
    idx = np.indices(inside.shape, dtype=np.float32)
    for ax in range(3):
        idx[ax] += lo[ax]
    return _Region(sl=sl, inside=inside, dist=dist, idx=idx)  # type: ignore[arg-type]


def _ramp(x: np.ndarray, h: float) -> np.ndarray:
    """Fractional occupancy of a signed distance ``x`` (mm, > 0 inside) over a voxel ``h``."""
    return np.clip(0.5 + x / h, 0.0, 1.0)


def _thickness_for(
    reg: _Region, *, target: float, field: np.ndarray, tmax: float = 10.0
) -> tuple[float, float]:
    """Mean thickness (mm, 2..tmax) whose mucosa ``dist <= t·field`` fills ``target``.

    Thickening under 2 mm (1.5 mm at any point) is not placed: normal mucosa is about that
    thick and lies outside the air labels already, so thinner "lesion" teaches the network to
    mark healthy lining (bundle 2.0.0's false rim).
    """
    d = reg.dist[reg.inside]
    f = field[reg.inside]
    lo, hi = 0.3, tmax
    for _ in range(22):
        mid = 0.5 * (lo + hi)
        if float(np.mean(d <= np.clip(mid * f, _MIN_MUCOSA_MM, tmax))) < target:
            lo = mid
        else:
            hi = mid
    t = max(2.0, 0.5 * (lo + hi))
    return t, float(np.mean(d <= np.clip(t * f, _MIN_MUCOSA_MM, tmax)))


def _fluid(reg: _Region, *, fraction: float, spacing: np.ndarray, affine: np.ndarray) -> tuple:
    """Occupancy of a dependent fluid layer filling ``fraction`` of the cavity's free part.

    Supine patient: gravity is +y in LPS (posterior), so the fluid lies at the largest LPS y
    below a plane y = level, perpendicular to gravity.
    """
    y = affine[1, 0] * reg.idx[0] + affine[1, 1] * reg.idx[1] + affine[1, 2] * reg.idx[2]
    y = y + affine[1, 3]
    ys = y[reg.inside]
    level = float(np.quantile(ys, 1.0 - fraction))
    return _ramp(y - level, float(spacing[1])), level


def _blob(
    reg: _Region,
    *,
    centre: np.ndarray,
    radius: float,
    spacing: np.ndarray,
    wobble: np.ndarray,
    squash_z: float = 1.0,
) -> np.ndarray:
    """Occupancy of an irregular ellipsoidal blob (centre in box index units)."""
    d = np.zeros(reg.inside.shape, np.float32)
    box0 = np.array([s.start for s in reg.sl], np.float32)
    for ax in range(3):
        k = (reg.idx[ax] - box0[ax] - centre[ax]) * spacing[ax]
        if ax == 0:
            k = k / squash_z
        d += k * k
    r = radius * (1.0 + 0.18 * wobble)
    return _ramp(r - np.sqrt(d), float(spacing.min()))


def _wall_point(
    reg: _Region, *, rng: np.random.Generator, where: np.ndarray | None = None
) -> np.ndarray:
    """A random voxel (box index) on the cavity wall (inside, within 1.5 mm of the boundary)."""
    cand = reg.inside & (reg.dist <= 1.5)
    if where is not None and (cand & where).any():
        cand = cand & where
    pts = np.argwhere(cand)
    return pts[int(rng.integers(len(pts)))].astype(np.float32)


def _sinus_occupancy(
    reg: _Region,
    *,
    pattern: str,
    target: float,
    n_polyps: int,
    spacing: np.ndarray,
    affine: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(soft-tissue occupancy, fluid occupancy, params) of one maxillary sinus."""
    shape = reg.inside.shape
    field = np.clip(
        1.0 + 0.45 * _smooth_field(shape, rng=rng, spacing=spacing, scale_mm=12.0), 0.3, 2.2
    )
    wobble = _smooth_field(shape, rng=rng, spacing=spacing, scale_mm=5.0)
    soft = np.zeros(shape, np.float32)
    fluid = np.zeros(shape, np.float32)
    info: dict[str, Any] = {"pattern": pattern, "target_opacification": round(target, 4)}
    if pattern == "none" or target <= 0:
        return soft, fluid, info
    if pattern == "complete" or target >= 0.999:
        soft[:] = 1.0
        return soft, fluid, info
    h = float(spacing.min())
    mucosa_share = {"mucosal": 1.0, "polypoid": 0.6, "cyst": 0.25, "air_fluid": 0.35}.get(
        pattern, 1.0
    )
    t, got = _thickness_for(reg, target=target * mucosa_share, field=field)
    soft = np.maximum(soft, _ramp(np.clip(t * field, _MIN_MUCOSA_MM, 10.0) - reg.dist, h))
    info["mucosa_mean_thickness_mm"] = round(t, 2)
    rest = max(target - got, 0.0)
    n_in = float(reg.inside.sum())
    voxel_ml = float(np.prod(spacing)) / 1000.0
    if pattern in ("polypoid", "cyst") and rest > 0:
        n_blob = max(1, n_polyps) if pattern == "polypoid" else 1
        vol_each = rest * n_in * float(np.prod(spacing)) / n_blob
        z_low = None
        if pattern == "cyst":  # dome on the floor: lowest third of the sinus (small LPS z)
            zs = reg.idx[0]
            zin = zs[reg.inside]
            z_low = zs <= np.quantile(zin, 0.3)
        blobs = []
        for _ in range(n_blob):
            r = float(np.clip((3 * vol_each / (2 * np.pi)) ** (1 / 3), 3.0, 18.0))
            p = _wall_point(reg, rng=rng, where=z_low)
            blobs.append({"radius_mm": round(r, 2), "wall_voxel": p.astype(int).tolist()})
            squash = 0.8 if pattern == "cyst" else 1.0
            soft = np.maximum(
                soft,
                _blob(reg, centre=p, radius=r, spacing=spacing, wobble=wobble, squash_z=squash),
            )
        info["cysts" if pattern == "cyst" else "polyps"] = blobs
    if pattern == "air_fluid" and rest > 0:
        free = float(np.mean(soft[reg.inside] < 0.5))
        frac = float(np.clip(target - (1 - free), 0.03, 0.95))
        fluid, level = _fluid(reg, fraction=frac, spacing=spacing, affine=affine)
        info["fluid_level_lps_y_mm"] = round(level, 2)
    info["voxel_ml"] = voxel_ml
    return soft, fluid, info


def _nasal_occupancy(
    reg: _Region,
    *,
    n_polyps: int,
    mucosa_mm: float,
    spacing: np.ndarray,
    affine: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Nasal-cavity disease: mucosal swelling and polyps from the middle meatus / lateral wall."""
    shape = reg.inside.shape
    soft = np.zeros(shape, np.float32)
    info: dict[str, Any] = {"polyps": [], "mucosa_mm": round(mucosa_mm, 2)}
    h = float(spacing.min())
    if mucosa_mm > 0:
        field = np.clip(
            1.0 + 0.45 * _smooth_field(shape, rng=rng, spacing=spacing, scale_mm=10.0), 0.3, 2.2
        )
        soft = np.maximum(
            soft, _ramp(np.clip(mucosa_mm * field, _MIN_MUCOSA_MM, 5.0) - reg.dist, h)
        )
    if n_polyps:
        wobble = _smooth_field(shape, rng=rng, spacing=spacing, scale_mm=4.0)
        cols = reg.idx[2]
        x_mid = float(np.median(cols[reg.inside]))
        lat = np.abs(cols - x_mid) * spacing[2]
        zs = reg.idx[0]
        zin = zs[reg.inside]
        meatus = (
            (lat >= np.quantile(lat[reg.inside], 0.6))
            & (zs >= np.quantile(zin, 0.35))
            & (zs <= np.quantile(zin, 0.8))
        )
        for _ in range(n_polyps):
            r = float(rng.uniform(2.5, 6.0))
            p = _wall_point(reg, rng=rng, where=meatus)
            info["polyps"].append({"radius_mm": round(r, 2), "wall_voxel": p.astype(int).tolist()})
            soft = np.maximum(soft, _blob(reg, centre=p, radius=r, spacing=spacing, wobble=wobble))
    return soft, info


@dataclass(frozen=True, slots=True)
class RealCase:
    """A rendered real-anatomy case: int16 HU, uint8 lesion mask and labels, LPS affine, meta."""

    hu: np.ndarray
    lesion: np.ndarray
    labels: np.ndarray
    affine: np.ndarray
    meta: dict[str, Any]


def plan_entry(region: str, disease: Any, *, healthy: bool = False) -> dict[str, Any]:
    """:func:`place_disease`'s plan for one sinus from the CaseSpec's disease of ``region``
    (pattern ``none`` when it has no opacification or the case is ``healthy``)."""
    on = disease.opacification > 0 and not healthy
    return {
        "region": region,
        "pattern": disease.pattern if on else "none",
        "opacification": float(disease.opacification),
        "polyps": int(disease.polyps),
        "hyperdense_foci": bool(disease.hyperdense_foci),
    }


def _region_plan(case: CaseSpec, rng: np.random.Generator) -> dict[int, dict[str, Any]]:
    """Map the CaseSpec's disease onto the labelled cavities (maxillary L/R, nasal cavity).

    Ethmoids are not labelled in NasalSeg; ethmoid-predominant disease (and nasal polyps)
    drives the nasal-cavity burden instead.
    """
    plan: dict[int, dict[str, Any]] = {
        value: plan_entry(name, case.disease.get(name))
        for value, name in ((MAX_L, "maxillary_L"), (MAX_R, "maxillary_R"))
    }
    eth = np.mean(
        [case.disease.get(f"ethmoid_{p}_{s}").opacification for p in ("ant", "post") for s in "LR"]
    )
    nasal = case.disease.get("nasal_cavity")
    n_polyps = int(nasal.polyps) if case.nasal_polyps else 0
    # the nasal label is narrow air passages: a little swelling goes a long way; under
    # 1.5 mm it would be indistinguishable from the normal lining, so none is placed
    mucosa = float(np.clip(1.5 + 2.5 * eth + rng.normal(0, 0.3), 1.5, 4.0)) if eth > 0.3 else 0.0
    plan[NASAL] = {
        "region": "nasal_cavity",
        "pattern": "polypoid" if n_polyps else ("mucosal" if mucosa > 0 else "none"),
        "polyps": n_polyps,
        "mucosa_mm": mucosa,
        "ethmoid_mean_opacification": round(float(eth), 4),
    }
    return plan


def place_disease(
    *,
    hu: np.ndarray,
    labels: np.ndarray,
    affine: np.ndarray,
    plan: dict[int, dict[str, Any]],
    lesion_hu: float,
    rng: np.random.Generator,
    noise_corr_vox: float | tuple[float, ...] = 0.6,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Blend the planned disease into ``hu`` inside the cavity labels.

    Returns ``(hu, lesion_mask, per-region info)``; the mask is occupancy >= 0.5 and lies
    inside the labels by construction. The lesion noise is white noise smoothed over
    ``noise_corr_vox`` voxels (the resampling's correlation), scaled to the scan's own SD.
    """
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    noise = _noise_sd(hu)
    out = hu.copy()
    lesion = np.zeros(hu.shape, bool)
    occ_all = np.zeros(hu.shape, np.float32)
    info: dict[str, Any] = {"scan_noise_hu": round(noise, 2)}
    for value, p in plan.items():
        if p["pattern"] == "none":
            info[p["region"]] = {**p, "achieved_opacification": 0.0}
            continue
        reg = _region(labels, value, spacing)
        if reg is None:
            continue
        if value == NASAL:
            soft, rinfo = _nasal_occupancy(
                reg,
                n_polyps=p["polyps"],
                mucosa_mm=p["mucosa_mm"],
                spacing=spacing,
                affine=affine,
                rng=rng,
            )
            fluid = np.zeros_like(soft)
        else:
            soft, fluid, rinfo = _sinus_occupancy(
                reg,
                pattern=p["pattern"],
                target=p["opacification"],
                n_polyps=p["polyps"],
                spacing=spacing,
                affine=affine,
                rng=rng,
            )
        soft *= reg.inside
        fluid *= reg.inside
        occ = np.maximum(soft, fluid)
        # lesion value: soft tissue ~ lesion_hu (10-60), fluid 0-30 HU, smooth texture + noise
        fluid_hu = float(rng.uniform(0.0, 30.0))
        tex = _smooth_field(reg.inside.shape, rng=rng, spacing=spacing, scale_mm=6.0)
        val = np.where(fluid > soft, fluid_hu, lesion_hu) + 4.0 * tex
        if p.get("hyperdense_foci"):
            spots = _smooth_field(reg.inside.shape, rng=rng, spacing=spacing, scale_mm=3.0) > 2.3
            val = np.where(spots & (occ > 0.9), val + rng.uniform(60.0, 140.0), val)
        white = ndimage.gaussian_filter(
            rng.normal(0, 1, reg.inside.shape).astype(np.float32), noise_corr_vox
        )
        val = val + noise * white / max(float(white.std()), 1e-3)
        box = out[reg.sl]
        out[reg.sl] = (1.0 - occ) * box + occ * val
        m = occ >= 0.5
        lesion[reg.sl] |= m
        occ_all[reg.sl] = np.maximum(occ_all[reg.sl], occ)
        achieved = float(m[reg.inside].mean())
        info[p["region"]] = {**p, **rinfo, "achieved_opacification": round(achieved, 4)}
        info[p["region"]].pop("voxel_ml", None)
    if lesion.any():
        # wall voxels just outside the label (partial air / bone) take the lesion into their
        # air part, else a dark line would separate lesion and bone; the mask stays inside
        near = ndimage.maximum_filter(occ_all, size=3)
        rim = (labels == 0) & (near > 0) & (out < lesion_hu)
        out[rim] += 0.5 * near[rim] * (lesion_hu - out[rim])
    return out, lesion.astype(np.uint8), info


def kernel_and_noise(
    hu: np.ndarray, *, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, Any]]:
    """Random reconstruction kernel (blur or unsharp) and extra noise, on the whole image."""
    mode = str(rng.choice(["none", "blur", "sharp"]))
    params: dict[str, Any] = {"kernel": mode}
    if mode == "blur":
        s = float(rng.uniform(0.3, 0.8))
        hu = ndimage.gaussian_filter(hu, (0.3 * s, s, s))
        params["blur_sigma_vox"] = round(s, 3)
    elif mode == "sharp":
        amount = float(rng.uniform(0.2, 0.7))
        hu = hu + amount * (hu - ndimage.gaussian_filter(hu, (0.3, 1.0, 1.0)))
        params["unsharp_amount"] = round(amount, 3)
    extra = float(rng.uniform(0.0, 15.0))
    if extra > 0:
        hu = hu + rng.normal(0.0, extra, hu.shape).astype(np.float32)
    params["extra_noise_hu"] = round(extra, 2)
    return hu, params


def render_real_case(
    *, case: CaseSpec, background: Background, healthy: bool, augment: bool = True
) -> RealCase:
    """Render ``case`` on ``background`` (deterministic in ``case.seed``).

    ``augment=False`` keeps the crop as scanned (no mirroring, deformation, resampling,
    kernel or added noise): the bundled real-anatomy demo study.
    """
    rng = np.random.default_rng(np.random.SeedSequence([case.seed, 0x5EA1]))
    if augment:
        hu, labels, affine, aug = augment_background(background, rng=rng)
    else:
        hu, labels = background.hu.astype(np.float32), background.labels.copy()
        affine, aug = background.affine.copy(), {"augmented": False}
    n_before = int(np.isin(labels, (MAX_L, MAX_R)).sum())
    written = np.where(labels == _NASOPHARYNX_TMP, 0, labels).astype(labels.dtype)
    labels = grow_to_walls(labels, hu)
    n_grown = int(np.isin(labels, (MAX_L, MAX_R)).sum()) - n_before
    labels[labels == _NASOPHARYNX_TMP] = 0
    plan = _region_plan(case, rng)
    if healthy:
        for p in plan.values():
            p["pattern"] = "none"
    lesion_hu = float(np.clip(case.disease.lesion_hu + rng.normal(0, 5), 10.0, 60.0))
    ratio = np.linalg.norm(background.affine[:3, :3], axis=0) / np.linalg.norm(
        affine[:3, :3], axis=0
    )
    hu, lesion, info = place_disease(
        hu=hu,
        labels=labels,
        affine=affine,
        plan=plan,
        lesion_hu=lesion_hu,
        rng=rng,
        noise_corr_vox=tuple(float(np.clip(0.45 * r, 0.4, 1.5)) for r in ratio),
    )
    hu, kern = kernel_and_noise(hu, rng=rng) if augment else (hu, {})
    hu16 = np.clip(np.rint(hu), _HU_MIN, _HU_MAX).astype(np.int16)
    where = np.argwhere(written > 0)
    lo, hi = where.min(0), where.max(0)
    centre = affine[:3, :3] @ ((lo + hi) / 2.0) + affine[:3, 3]
    vox_ml = float(abs(np.linalg.det(affine[:3, :3]))) / 1000.0
    meta = {
        "background": background.patient,
        "augmentation": {**aug, **kern},
        "healthy_case": healthy,
        "maxillary_label_growth_fraction": round(n_grown / max(n_before, 1), 4),
        "lesion_hu": round(lesion_hu, 2),
        "disease": info,
        "lesion_volume_ml": round(float(lesion.sum()) * vox_ml, 3),
        "sinus_centre_lps_mm": [round(float(v), 2) for v in centre],
        "shape": list(hu16.shape),
    }
    # The written labels are NasalSeg's (the reference the sinus head is scored against); the
    # disease was placed on the labels grown to the bone, so the lesion may take the one-voxel
    # rim between a label and its wall.
    return RealCase(hu=hu16, lesion=lesion, labels=written, affine=affine, meta=meta)
