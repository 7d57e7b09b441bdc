"""Write whole-head negative cases for ``sinusapp train --seg-only`` (issue 11).

The real-anatomy cohort's backgrounds are NasalSeg crops: the network never saw a brain, a
temporal muscle or an orbit, and on whole heads it marked them (the 2.2.0 candidate put
14 mL of "maxillary lesion" into the GE head's temporal lobe). A negative case is one real
head with the block centred at the locator's centre plus an offset (so the random training
patches reach brain, muscle and orbit), and its hand-marked sinonasal box (from
``tests/model/real_head_boxes.json``, widened by a margin) marked *unlabelled*: nobody
labelled the sinuses of these heads, so neither loss counts them; everywhere else the head
holds no lesion and no maxillary sinus / nasal cavity.

Usage::

    python benchmarks/make_head_negatives.py --out /tmp/negatives \
        --heads vhf_visible_human_female_head harvard02_cadaver_head_sinus_coverage

``ct/`` of each case is a symbolic link to the head's series in ``../shared/data`` (never a
copy). Keep one head out (the GE brain series by default) to measure what the negatives do
on a head the model never trained on.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sinusapp.model.dataset_adapter import load_ct_series  # noqa: E402
from sinusapp.model.preprocess import locate_sinus_region  # noqa: E402
from sinusapp.synth.dicomio import write_label_nifti  # noqa: E402
from sinusapp.synth.realhead import (  # noqa: E402
    ANTERIOR_MARGIN_MM,
    BOX_MARGIN_MM,
    box_mask,
    widened_box,
)

log = logging.getLogger("make_head_negatives")

SHARED = REPO.parent / "shared" / "data"
BOXES = REPO / "tests" / "model" / "real_head_boxes.json"
#: Block-centre offsets from the locator's centre (LPS mm: +x left, +y posterior, +z up):
#: the centre itself, sideways (temporal muscle, lateral orbit), up (brain, orbit roof) and
#: back (middle cranial fossa, temporal lobe, nasopharynx).
OFFSETS_MM: tuple[tuple[float, float, float], ...] = (
    (0.0, 0.0, 0.0),
    (22.0, 0.0, 10.0),
    (-22.0, 0.0, 10.0),
    (0.0, 0.0, 32.0),
    (0.0, 30.0, 12.0),
    (22.0, 24.0, 20.0),
    (-22.0, 24.0, 20.0),
    (0.0, -12.0, 36.0),
    (12.0, -8.0, -6.0),
    (-12.0, 8.0, -6.0),
    (30.0, 10.0, 24.0),
    (-30.0, 10.0, 24.0),
    (10.0, 36.0, 28.0),
    (-10.0, 36.0, 28.0),
    (0.0, 14.0, 44.0),
    (0.0, 40.0, -4.0),
)


#: ``descrip`` of the written unlabelled maps
UNLABELLED_DESCRIPTION = "SinusApp segmentation-only case: 1 = reference unknown"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument(
        "--heads",
        nargs="+",
        default=["vhf_visible_human_female_head", "harvard02_cadaver_head_sinus_coverage"],
        help="names in tests/model/real_head_boxes.json",
    )
    ap.add_argument(
        "--margin-mm",
        type=float,
        default=BOX_MARGIN_MM,
        help=f"box widening on every side (default {BOX_MARGIN_MM:g})",
    )
    ap.add_argument(
        "--anterior-mm",
        type=float,
        default=ANTERIOR_MARGIN_MM,
        help=f"extra widening towards the nostrils (the nasal vestibule; default "
        f"{ANTERIOR_MARGIN_MM:g})",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    heads = {h["name"]: h for h in json.loads(BOXES.read_text(encoding="utf-8"))["heads"]}
    args.out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in args.heads:
        head = heads[name]
        if head["box_lps_mm"] is None:
            raise SystemExit(f"{name}: no hand-marked box (expect {head['expect']!r})")
        series = SHARED / head["series"]
        volume = load_ct_series(series)
        b = head["box_lps_mm"]
        box = widened_box(
            np.array([b["x"], b["y"], b["z"]], float),
            margin_mm=args.margin_mm,
            anterior_mm=args.anterior_mm,
        )
        unknown = box_mask(volume, box_lps_mm=box)
        centre = locate_sinus_region(volume).center_lps
        log.info(
            "%s: %s voxels, box %.0f%% of them, locator centre %s",
            name,
            volume.shape,
            100 * unknown.mean(),
            np.round(centre, 1),
        )
        for n, off in enumerate(OFFSETS_MM):
            folder = args.out / f"NEG_{name.split('_')[0]}_{n:02d}"
            folder.mkdir(exist_ok=True)
            link = folder / "ct"
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(series.resolve(), target_is_directory=True)
            write_label_nifti(
                labels=unknown,
                affine=volume.affine,
                out_path=folder / "unlabelled.nii.gz",
                description=UNLABELLED_DESCRIPTION,
            )
            c = centre + np.asarray(off)
            (folder / "case.json").write_text(
                json.dumps(
                    {
                        "negative_of": name,
                        "sinus_centre_lps_mm": [round(float(v), 2) for v in c],
                        "offset_from_locator_mm": list(off),
                        "unlabelled": "hand-marked sinonasal box "
                        f"+{args.margin_mm:g} mm (+{args.anterior_mm:g} mm anterior)",
                    },
                    indent=1,
                ),
                encoding="utf-8",
            )
            written.append(folder.name)
    log.info("wrote %d negative cases to %s", len(written), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
