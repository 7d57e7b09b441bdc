"""Render and write synthetic cases in the training-dataset format (DESIGN §3).

Layout written under ``DIR``::

    DIR/clinical.csv                     one row per case (CLINICAL_COLUMNS + series_uid)
    DIR/<case_id>/ct/*.dcm               the CT series (plus localizer / soft kernel options)
    DIR/<case_id>/lesion_seg.dcm         lesion mask, BINARY DICOM SEG referencing the CT
    DIR/<case_id>/sinus_labels.nii.gz    sinus label map (NIfTI, RAS affine)
    DIR/<case_id>/phantom.json           generator metadata (sinus centre in LPS, pose, scanner)
    DIR/cohort.json                      seed, options and oracle AUCs of the cohort
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sinusapp._version import __version__
from sinusapp.synth.cohort import CLINICAL_COLUMNS, CaseSpec, oracle_aucs, scanner_for
from sinusapp.synth.dicomio import (
    CaseDicomInfo,
    CtSeriesOptions,
    uid,
    write_ct_series,
    write_localizer,
    write_study,
)
from sinusapp.synth.phantom import (
    SINUS_LABELS,
    Grid,
    Phantom,
    ScannerSettings,
    acquire_image,
    make_grid,
    render_phantom,
)

__all__ = ["WriteOptions", "render_case", "write_case", "write_clinical_csv", "write_cohort"]

log = logging.getLogger(__name__)

#: clinical.csv columns: the cohort's columns plus the primary CT series UID.
CSV_COLUMNS: tuple[str, ...] = (*CLINICAL_COLUMNS, "series_uid")


@dataclass(frozen=True, slots=True)
class WriteOptions:
    """Options for writing cases (the hard cases of real life are opt-in)."""

    low_res: bool = False
    tilt_deg: float = 0.0
    missing_slice: bool = False
    shuffle_names: bool = False
    extra_series: bool = False
    compress: str = "none"
    #: replaces the centre's scanner (e.g. a coarse grid in tests); None: the case's own
    scanner: ScannerSettings | None = None

    def __post_init__(self) -> None:
        if not (-30.0 <= self.tilt_deg <= 30.0):
            raise ValueError(f"tilt_deg must be within ±30°, got {self.tilt_deg}")


def _tilted_grid(grid: Grid, tilt_deg: float) -> Grid:
    """Same slices (table positions along z), image plane tilted about x like a gantry tilt."""
    a = np.array(grid.affine, float)
    ps = float(np.linalg.norm(a[:3, 1]))
    t = math.radians(tilt_deg)
    centre_row = (grid.shape[1] - 1) / 2.0
    centre = a[:3, 3] + a[:3, 1] * centre_row
    a[:3, 1] = np.array([0.0, math.cos(t), math.sin(t)]) * ps
    a[:3, 3] = np.round(centre - a[:3, 1] * centre_row, 2)
    return Grid(shape=grid.shape, affine=a)


def render_case(
    case: CaseSpec,
    *,
    low_res: bool = False,
    tilt_deg: float = 0.0,
    keep_ideal: bool = False,
    scanner: ScannerSettings | None = None,
) -> tuple[Phantom, ScannerSettings]:
    """Render a case in memory (what a training loop calls to generate data on the fly).

    ``scanner`` overrides the case's own scanner (its centre's, or the low-res one).
    """
    if scanner is None:
        scanner = scanner_for(case, low_res=low_res)
    grid = make_grid(scanner=scanner, pose=case.pose)
    if tilt_deg:
        grid = _tilted_grid(grid, tilt_deg)
    ph = render_phantom(
        anatomy=case.anatomy,
        disease=case.disease,
        pose=case.pose,
        scanner=scanner,
        seed=case.seed,
        grid=grid,
        keep_ideal=keep_ideal,
    )
    return ph, scanner


def write_case(case: CaseSpec, *, out_dir: Path, options: WriteOptions) -> dict[str, Any]:
    """Render and write one case under ``out_dir / case.case_id``; returns its csv row."""
    folder = out_dir / case.case_id
    ph, scanner = render_case(
        case,
        low_res=options.low_res,
        tilt_deg=options.tilt_deg,
        keep_ideal=options.extra_series,
        scanner=options.scanner,
    )
    info = CaseDicomInfo(
        case_id=case.case_id,
        seed=case.seed,
        sex=case.clinical["sex"],
        age_years=case.clinical["age"],
    )
    drop: tuple[int, ...] = ()
    if options.missing_slice:
        n = ph.hu.shape[0]
        drop = (int(np.random.default_rng(case.seed).integers(n // 3, 2 * n // 3)),)
    series_opts = CtSeriesOptions(
        series_number=2,
        series_description=f"SINUS BONE {scanner.slice_thickness_mm:g}mm AXIAL",
        kernel=scanner.kernel,
        compress=options.compress,
        shuffle_names=options.shuffle_names,
        drop_slices=drop,
        tilt_deg=options.tilt_deg,
        kvp=scanner.kvp,
        model=scanner.model,
    )
    ct_dir = folder / "ct"
    write_study(
        hu=ph.hu,
        affine=ph.affine,
        lesion=ph.lesion,
        labels=ph.labels,
        out_dir=folder,
        case=info,
        options=series_opts,
        slice_indices=[k for k in range(ph.hu.shape[0]) if k not in drop],
    )
    if options.extra_series and ph.ideal is not None:
        write_localizer(hu=ph.hu, affine=ph.affine, out_dir=ct_dir, case=info, series_number=1)
        soft = ScannerSettings(
            pixel_spacing_mm=scanner.pixel_spacing_mm,
            slice_spacing_mm=scanner.slice_spacing_mm,
            slice_thickness_mm=scanner.slice_thickness_mm,
            matrix=scanner.matrix,
            noise_hu=max(scanner.noise_hu * 0.35, 4.0),
            kernel_sigma_mm=0.9,
            edge_enhance=0.0,
            kernel="SOFT",
        )
        soft_hu = acquire_image(
            ph.ideal,
            spacing_mm=tuple(np.linalg.norm(ph.affine[:3, :3], axis=0)),
            scanner=soft,
            rng=np.random.default_rng(case.seed + 1),
        )  # type: ignore[arg-type]
        write_ct_series(
            hu=soft_hu,
            affine=ph.affine,
            out_dir=ct_dir,
            case=info,
            options=CtSeriesOptions(
                series_number=3,
                series_description=f"SINUS SOFT {scanner.slice_thickness_mm:g}mm AXIAL",
                kernel="SOFT",
                compress=options.compress,
                shuffle_names=options.shuffle_names,
                model=scanner.model,
                drop_slices=drop,
                tilt_deg=options.tilt_deg,
            ),
        )
    meta = {
        **ph.meta,
        "case_id": case.case_id,
        "center": case.center,
        "scanner": {k: getattr(scanner, k) for k in ScannerSettings.__slots__},  # type: ignore[attr-defined]
        "sinus_labels": {str(k): v for k, v in SINUS_LABELS.items()},
        "disease": {
            k: {
                "opacification": v.opacification,
                "pattern": v.pattern,
                "polyps": v.polyps,
                "hyperdense_foci": v.hyperdense_foci,
            }
            for k, v in case.disease.regions.items()
        },
        "lesion_hu": case.disease.lesion_hu,
        "dropped_slices": list(drop),
        "tilt_deg": options.tilt_deg,
        "software_version": __version__,
    }
    (folder / "phantom.json").write_text(
        json.dumps(meta, indent=1, sort_keys=True), encoding="utf-8"
    )
    row = case.row()
    row["series_uid"] = uid(case.seed, case.case_id, "series", 2)
    return row


def write_clinical_csv(rows: Sequence[dict[str, Any]], path: Path) -> None:
    """Write clinical.csv (``CSV_COLUMNS``, ``\\n`` line ends, stable number formatting)."""
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in CSV_COLUMNS})


def write_cohort(
    cases: Sequence[CaseSpec],
    *,
    out_dir: Path,
    options: WriteOptions,
    seed: int,
    progress: Callable[[int, int], None] | None = None,
    workers: int = 1,
) -> dict[str, Any]:
    """Write all cases, clinical.csv and cohort.json; returns the cohort summary.

    ``workers`` > 1 renders cases in parallel processes; every case has its own seed, so the
    files are identical to a serial run.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    if workers > 1 and len(cases) > 1:
        from concurrent.futures import ProcessPoolExecutor
        from functools import partial

        job = partial(write_case, out_dir=out_dir, options=options)
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for n, row in enumerate(pool.map(job, cases)):
                rows.append(row)
                if progress is not None:
                    progress(n + 1, len(cases))
    else:
        for n, case in enumerate(cases):
            rows.append(write_case(case, out_dir=out_dir, options=options))
            if progress is not None:
                progress(n + 1, len(cases))
    write_clinical_csv(rows, out_dir / "clinical.csv")
    summary: dict[str, Any] = {"seed": seed, "n_cases": len(cases), "software_version": __version__}
    summary["options"] = {k: getattr(options, k) for k in WriteOptions.__slots__ if k != "scanner"}  # type: ignore[attr-defined]
    for center in sorted({c.center for c in cases}):
        sub = [c for c in cases if c.center == center]
        summary[f"center_{center}"] = {
            "n_cases": len(sub),
            "n_recurrence": int(sum(c.recurrence for c in sub)),
            **{k: round(v, 4) for k, v in oracle_aucs(sub).items()},
        }
    (out_dir / "cohort.json").write_text(
        json.dumps(summary, indent=1, sort_keys=True), encoding="utf-8"
    )
    return summary
