"""Write the real-anatomy cohort (:mod:`sinusapp.synth.realanat`) in the training-dataset format.

Layout under ``DIR`` (docs/dataset_format.md)::

    DIR/clinical.csv                   CSV_COLUMNS + background, background_split
    DIR/<case_id>/ct/*.dcm             CT series (stored HU + 1024)
    DIR/<case_id>/lesion.nrrd          lesion mask (LPS NRRD, axes column, row, slice)
    DIR/<case_id>/sinus_labels.nii.gz  1 maxillary L, 2 maxillary R, 9 nasal cavity
    DIR/<case_id>/case.json            background, split, augmentation, disease, lesion volume
    DIR/cohort.json                    seed, split counts, oracle AUCs per cohort
"""

from __future__ import annotations

import csv
import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sinusapp._version import __version__
from sinusapp.synth.cohort import CaseSpec, oracle_aucs, sample_cohort
from sinusapp.synth.dicomio import (
    CaseDicomInfo,
    CtSeriesOptions,
    uid,
    write_ct_series,
    write_label_nifti,
)
from sinusapp.synth.realanat import (
    Background,
    background_patients,
    load_background,
    load_split,
    render_real_case,
)
from sinusapp.synth.write import CSV_COLUMNS

__all__ = [
    "REAL_CSV_COLUMNS",
    "RealJob",
    "plan_real_cohort",
    "write_lesion_nrrd",
    "write_real_case",
    "write_real_cohort",
]

log = logging.getLogger(__name__)

REAL_CSV_COLUMNS: tuple[str, ...] = (*CSV_COLUMNS, "background", "background_split")
#: fraction of cases rendered without any disease (healthy real sinuses)
HEALTHY_FRACTION = 0.10
_SPLIT_WEIGHTS = {"train": 60, "val": 15, "test": 15}


@dataclass(frozen=True, slots=True)
class RealJob:
    """One case to render: its spec, background patient and split, healthy flag."""

    case: CaseSpec
    background: str
    background_split: str
    healthy: bool


def plan_real_cohort(*, root: Path, n_cases: int, seed: int) -> list[RealJob]:
    """Sample the clinical cohort and give each case a background patient (deterministic).

    Cases are spread over the splits in proportion to their patient counts (60/15/15); within
    a split the backgrounds are used in a shuffled round-robin, so each is used about equally.
    About ``HEALTHY_FRACTION`` of the cases carry no disease.
    """
    split = load_split()
    missing = sorted(set(split) - background_patients(root))
    if missing:
        raise FileNotFoundError(
            f"{root}: {len(missing)} NasalSeg patient(s) of the split are missing "
            f"({', '.join(missing[:5])}...); give the nasalseg folder that holds P002/ ... P130/ "
            "(or a pack of all of them: benchmarks/pack_nasalseg.py)"
        )
    specs = sample_cohort(n_cases=n_cases, seed=seed, center="A")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x8EA1]))
    total = sum(_SPLIT_WEIGHTS.values())
    counts = {k: round(n_cases * w / total) for k, w in _SPLIT_WEIGHTS.items()}
    counts["train"] = n_cases - counts["val"] - counts["test"]
    if n_cases >= 3:
        for k in ("val", "test"):
            if counts[k] == 0:
                counts[k] = 1
                counts["train"] -= 1
    labels = np.array([k for k, n in counts.items() for _ in range(n)])
    rng.shuffle(labels)
    pools = {
        k: list(rng.permutation(sorted(p for p, s in split.items() if s == k))) for k in counts
    }
    used = dict.fromkeys(counts, 0)
    healthy = rng.uniform(size=n_cases) < HEALTHY_FRACTION
    jobs = []
    for spec, s, h in zip(specs, labels, healthy, strict=True):
        bg = pools[s][used[s] % len(pools[s])]
        used[s] += 1
        spec.cohort = "test" if s == "test" else "train"
        jobs.append(
            RealJob(case=spec, background=str(bg), background_split=str(s), healthy=bool(h))
        )
    return jobs


def write_lesion_nrrd(*, mask: np.ndarray, affine: np.ndarray, path: Path) -> None:
    """Lesion mask as NRRD (LPS; data axes column, row, slice like 3D Slicer)."""
    import nrrd

    header = {
        "space": "left-posterior-superior",
        "space directions": np.stack([affine[:3, 2], affine[:3, 1], affine[:3, 0]]),
        "space origin": affine[:3, 3],
        "encoding": "gzip",
        "kinds": ["domain", "domain", "domain"],
    }
    nrrd.write(str(path), np.ascontiguousarray(mask.transpose(2, 1, 0).astype(np.uint8)), header)
    # pynrrd stamps the current time in a comment; drop it so the same seed gives the same bytes
    raw = path.read_bytes()
    head, sep, body = raw.partition(b"\n\n")
    lines = [ln for ln in head.split(b"\n") if not ln.startswith(b"# on ")]
    path.write_bytes(b"\n".join(lines) + sep + body)


@functools.lru_cache(maxsize=2)
def _cached_background(root: str, patient: str) -> Background:
    """The last backgrounds loaded in this process (jobs are dispatched grouped by patient)."""
    return load_background(root=Path(root), patient=patient)


def write_real_case(job: RealJob, *, root: Path, out_dir: Path, compress: str) -> dict[str, Any]:
    """Render and write one case; returns its clinical.csv row."""
    case = job.case
    bg = _cached_background(str(root), job.background)
    rc = render_real_case(case=case, background=bg, healthy=job.healthy)
    folder = out_dir / case.case_id
    info = CaseDicomInfo(
        case_id=case.case_id,
        seed=case.seed,
        sex=case.clinical["sex"],
        age_years=case.clinical["age"],
    )
    aug = rc.meta["augmentation"]
    write_ct_series(
        hu=rc.hu,
        affine=rc.affine,
        out_dir=folder / "ct",
        case=info,
        options=CtSeriesOptions(
            series_number=2,
            series_description=f"SINUS BONE {aug['slice_spacing_mm']:g}mm AXIAL (NasalSeg bg)",
            compress=compress,
            model="NasalSeg background + synthetic disease",
        ),
    )
    write_lesion_nrrd(mask=rc.lesion, affine=rc.affine, path=folder / "lesion.nrrd")
    write_label_nifti(labels=rc.labels, affine=rc.affine, out_path=folder / "sinus_labels.nii.gz")
    meta = {
        **rc.meta,
        "case_id": case.case_id,
        "background_split": job.background_split,
        "cohort": case.cohort,
        "sinus_labels": {"1": "maxillary_L", "2": "maxillary_R", "9": "nasal_cavity"},
        "intended_disease": {
            k: {
                "opacification": v.opacification,
                "pattern": v.pattern,
                "polyps": v.polyps,
                "hyperdense_foci": v.hyperdense_foci,
            }
            for k, v in case.disease.regions.items()
        },
        "software_version": __version__,
        "source": "NasalSeg (Zhang et al., Sci Data 2024, doi:10.5281/zenodo.13893419, CC BY 4.0)",
    }
    (folder / "case.json").write_text(json.dumps(meta, indent=1, sort_keys=True), encoding="utf-8")
    row = case.row()
    row["series_uid"] = uid(case.seed, case.case_id, "series", 2)
    row["background"] = job.background
    row["background_split"] = job.background_split
    return row


def write_real_cohort(
    *,
    root: Path,
    out_dir: Path,
    n_cases: int,
    seed: int,
    workers: int = 1,
    compress: str = "none",
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Write ``n_cases`` real-anatomy cases, clinical.csv and cohort.json; returns the summary.

    ``workers`` > 1 renders in parallel processes; every case has its own seed, so the files
    are those of a serial run.
    """
    jobs = plan_real_cohort(root=root, n_cases=n_cases, seed=seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    # grouped by background so a worker reuses the background it just loaded; the csv keeps
    # the case order
    order = sorted(range(len(jobs)), key=lambda n: (jobs[n].background, n))
    jobs_sorted = [jobs[n] for n in order]
    if workers > 1 and len(jobs) > 1:
        from concurrent.futures import ProcessPoolExecutor
        from functools import partial

        job = partial(write_real_case, root=root, out_dir=out_dir, compress=compress)
        with ProcessPoolExecutor(max_workers=workers) as pool:
            chunk = max(1, min(4, len(jobs) // (4 * workers)))
            for n, row in enumerate(pool.map(job, jobs_sorted, chunksize=chunk)):
                rows.append(row)
                if progress is not None:
                    progress(n + 1, len(jobs))
    else:
        for n, j in enumerate(jobs_sorted):
            rows.append(write_real_case(j, root=root, out_dir=out_dir, compress=compress))
            if progress is not None:
                progress(n + 1, len(jobs))
    by_case = {r["case_id"]: r for r in rows}
    rows = [by_case[j.case.case_id] for j in jobs]
    with (out_dir / "clinical.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(REAL_CSV_COLUMNS), lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in REAL_CSV_COLUMNS})
    summary: dict[str, Any] = {
        "seed": seed,
        "n_cases": len(jobs),
        "generator": "real_anatomy",
        "nasalseg_root": str(root),
        "software_version": __version__,
        "compress": compress,
        "n_healthy": int(sum(j.healthy for j in jobs)),
        "background_split_counts": {
            s: sum(j.background_split == s for j in jobs) for s in ("train", "val", "test")
        },
    }
    for cohort in ("train", "test"):
        sub = [j.case for j in jobs if j.case.cohort == cohort]
        if len(sub) >= 2 and 0 < sum(c.recurrence for c in sub) < len(sub):
            summary[f"cohort_{cohort}"] = {
                "n_cases": len(sub),
                "n_recurrence": int(sum(c.recurrence for c in sub)),
                **{k: round(v, 4) for k, v in oracle_aucs(sub).items()},
            }
    (out_dir / "cohort.json").write_text(
        json.dumps(summary, indent=1, sort_keys=True), encoding="utf-8"
    )
    return summary
