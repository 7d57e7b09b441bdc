"""The real-anatomy demo study: the demo patient's disease placed in a real sinus CT crop.

``python -m sinusapp.synth.demo_real [--nasalseg ../shared/data/nasalseg] [--out
assets/demo_real]`` regenerates it deterministically from NasalSeg patient ``P034`` (a test
patient: no bundled model was trained or tuned on it). Same files as the phantom demo
(:mod:`sinusapp.synth.demo`): ``ct/`` (JPEG-LS lossless CT series, the crop's own geometry and
HU), ``lesion_seg.dcm`` (the placed disease as DICOM SEG, the blue reference contour),
``sinus_labels.nii.gz`` (NasalSeg's maxillary and nasal-cavity labels), ``clinical.json``,
plus ``ATTRIBUTION.txt``: the background is NasalSeg (Zhang et al., Scientific Data 2024,
doi:10.5281/zenodo.13893419, CC BY 4.0), redistributed with attribution; the disease, the
patient identity and the clinical values are synthetic.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sinusapp._version import __version__
from sinusapp.synth.dicomio import (
    CaseDicomInfo,
    CtSeriesOptions,
    uid,
    write_study,
)

__all__ = ["DEMO_REAL_CASE_ID", "DEMO_REAL_PATIENT", "NASALSEG_CITATION", "write_real_demo"]

log = logging.getLogger(__name__)

DEMO_REAL_CASE_ID = "DEMO0002"
DEMO_REAL_PATIENT = "P034"
DEMO_REAL_SEED = 20231201

NASALSEG_CITATION = (
    "Zhang Y, Wang J, Pan T, et al. NasalSeg: A Dataset for Automatic Segmentation of Nasal "
    "Cavity and Paranasal Sinuses from 3D CT Images. Scientific Data (2024). Data: Zenodo, "
    "doi:10.5281/zenodo.13893419, licence CC BY 4.0."
)

_ATTRIBUTION = f"""Real-anatomy demo study of SinusApp (case {DEMO_REAL_CASE_ID})

The CT background is NasalSeg patient {DEMO_REAL_PATIENT}, a real paranasal-sinus CT crop:
  {NASALSEG_CITATION}
It is redistributed under CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/).
Changes made: re-encoded as a DICOM CT series (JPEG-LS lossless) with made-up identifiers;
synthetic chronic-rhinosinusitis disease (mucosal thickening, polyps, a retention cyst, nasal
polyps) blended into the maxillary sinuses and nasal cavity by `sinusapp.synth.demo_real`
(SinusApp {{version}}); the lesion mask of that placed disease is lesion_seg.dcm. The patient's
name, IDs and clinical values are synthetic. This is not a real patient's disease.
"""


def write_real_demo(*, nasalseg_root: Path, out_dir: Path) -> dict[str, Any]:
    """Write the real-anatomy demo study to ``out_dir`` (replacing it); returns clinical.json."""
    from sinusapp.synth.cohort import sample_cohort
    from sinusapp.synth.demo import DEMO_CLINICAL, demo_disease
    from sinusapp.synth.realanat import load_background, render_real_case

    bg = load_background(root=nasalseg_root, patient=DEMO_REAL_PATIENT)
    base = sample_cohort(n_cases=1, seed=DEMO_REAL_SEED, center="A")[0]
    # the phantom demo's maxillary disease and nasal polyps; the crop has no ethmoid labels,
    # and the generator turns ethmoid disease into diffuse swelling of the whole nasal
    # label, which would hide the polyps: keep the ethmoid values below that threshold
    disease = demo_disease()
    regions = {
        k: dataclasses.replace(v, opacification=min(v.opacification, 0.25))
        if k.startswith("ethmoid")
        else v
        for k, v in disease.regions.items()
    }
    spec = dataclasses.replace(
        base,
        case_id=DEMO_REAL_CASE_ID,
        disease=dataclasses.replace(disease, regions=regions),
        nasal_polyps=1,
    )
    rc = render_real_case(case=spec, background=bg, healthy=False, augment=False)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    info = CaseDicomInfo(
        case_id=DEMO_REAL_CASE_ID,
        seed=DEMO_REAL_SEED,
        sex=str(DEMO_CLINICAL["sex"]),
        age_years=int(DEMO_CLINICAL["age"]),
    )
    write_study(
        hu=rc.hu,
        affine=rc.affine,
        lesion=rc.lesion,
        labels=rc.labels,
        out_dir=out_dir,
        case=info,
        options=CtSeriesOptions(
            series_number=2,
            series_description="SINUS BONE AXIAL (NasalSeg P034 + synthetic CRS)",
            compress="jpegls",
            model="NasalSeg background + synthetic disease",
        ),
    )
    clinical = {
        **DEMO_CLINICAL,
        "case_id": DEMO_REAL_CASE_ID,
        "note": (
            "Synthetic disease and clinical values on a real CT crop (NasalSeg "
            f"{DEMO_REAL_PATIENT}, CC BY 4.0; see ATTRIBUTION.txt); not a real patient's disease."
        ),
        "background": f"NasalSeg {DEMO_REAL_PATIENT}",
        "series_uid": uid(DEMO_REAL_SEED, DEMO_REAL_CASE_ID, "series", 2),
        "sinus_centre_lps_mm": rc.meta["sinus_centre_lps_mm"],
        "lesion_volume_ml": round(float(rc.meta["lesion_volume_ml"]), 2),
        "sinus_labels": {"1": "maxillary_L", "2": "maxillary_R", "9": "nasal_cavity"},
        "generator": f"sinusapp {__version__} sinusapp.synth.demo_real",
    }
    (out_dir / "clinical.json").write_text(
        json.dumps(clinical, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    (out_dir / "ATTRIBUTION.txt").write_text(
        _ATTRIBUTION.format(version=__version__), encoding="utf-8"
    )
    return clinical


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry: regenerate the real-anatomy demo study."""
    from sinusapp.resources import assets_dir

    parser = argparse.ArgumentParser(prog="python -m sinusapp.synth.demo_real", description=__doc__)
    parser.add_argument(
        "--nasalseg",
        type=Path,
        default=Path("../shared/data/nasalseg"),
        help="the NasalSeg folder (Pxxx/ct, Pxxx/labels.nrrd)",
    )
    parser.add_argument("--out", type=Path, default=None, help="default: assets/demo_real")
    args = parser.parse_args(argv)
    out = args.out if args.out is not None else assets_dir() / "demo_real"
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    clinical = write_real_demo(nasalseg_root=args.nasalseg, out_dir=out)
    log.info("real-anatomy demo written to %s (lesion %.1f mL)", out, clinical["lesion_volume_ml"])
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
