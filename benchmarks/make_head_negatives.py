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

For the GPU machine (``../shared`` does not travel): ``--pack-heads DIR`` writes each head as
a pack entry (:mod:`sinusapp.synth.realanat_pack`: the head cropped to what the blocks at all
offsets reach, at ``--pack-spacing`` mm, its unlabelled box as the labels) + ``<head>.json``
(locator centre, offsets); ``--from-pack DIR --out DIR`` writes the same cases from it, each
head's CT once as a DICOM series in ``<out>_ct/<head>`` that the cases' ``ct/`` link to::

    python benchmarks/make_head_negatives.py --pack-heads .pack/negatives_125 \
        --heads vhf_visible_human_female_head harvard02_cadaver_head_sinus_coverage
    python benchmarks/make_head_negatives.py --from-pack .pack/negatives_125 --out DIR
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

from sinusapp.imaging.volume import Volume, sub_grid_affine  # noqa: E402
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


#: Half the extent of the largest training block (LPS mm: 1.25 mm × 96 left-right, × 80
#: front-back, × 64 up-down) plus 5 mm: what a packed head keeps around each offset centre.
BLOCK_HALF_MM = np.array([65.0, 55.0, 45.0])

#: ``descrip`` of the written unlabelled maps
UNLABELLED_DESCRIPTION = (
    "SinusApp segmentation-only case: 1 = reference unknown (to the sinus labelling too, "
    "unless cells holds a cavity there)"
)


def _cases_of_head(
    name: str,
    *,
    centre: np.ndarray,
    out: Path,
    ct: Path,
    unknown: np.ndarray,
    affine: np.ndarray,
    unlabelled: str,
) -> list[str]:
    """The head's negative cases, one per offset: ``ct/`` linked to ``ct``, the unlabelled
    map and ``case.json`` (the block centre); returns their names."""
    written = []
    for n, off in enumerate(OFFSETS_MM):
        folder = out / f"NEG_{name.split('_')[0]}_{n:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        link = folder / "ct"
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(ct.resolve(), target_is_directory=True)
        write_label_nifti(
            labels=unknown,
            affine=affine,
            out_path=folder / "unlabelled.nii.gz",
            description=UNLABELLED_DESCRIPTION,
        )
        info = {
            "negative_of": name,
            "sinus_centre_lps_mm": [round(float(v), 2) for v in centre + np.asarray(off)],
            "offset_from_locator_mm": list(off),
            "unlabelled": unlabelled,
        }
        (folder / "case.json").write_text(json.dumps(info, indent=1), encoding="utf-8")
        written.append(folder.name)
    return written


def _crop_for_offsets(volume: Volume, *, centre: np.ndarray) -> tuple[slice, slice, slice]:
    """The index box of ``volume`` that holds every block the offsets centre (LPS corners of
    centre + offsets ± :data:`BLOCK_HALF_MM`, mapped through the affine)."""
    offs = np.asarray(OFFSETS_MM, float)
    return volume.index_box(
        centre + offs.min(axis=0) - BLOCK_HALF_MM, centre + offs.max(axis=0) + BLOCK_HALF_MM
    )


def pack_heads(
    *,
    heads: dict,
    names: list[str],
    out: Path,
    spacing_mm: float,
    margin_mm: float,
    anterior_mm: float,
) -> None:
    """Each head as a pack entry (cropped to the offsets' blocks; labels: its unlabelled box)
    + ``<head>.json``: what ``--from-pack`` needs without ``../shared``."""
    from sinusapp.synth.realanat import Background
    from sinusapp.synth.realanat_pack import PACK_SUFFIX, write_pack_entry

    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        volume, unknown, centre, unlabelled = _head(heads[name], margin_mm, anterior_mm)
        box = _crop_for_offsets(volume, centre=centre)
        affine = sub_grid_affine(volume.affine, start=[b.start for b in box])
        bg = Background(
            patient=name,
            hu=volume.array[box].astype(np.float32),
            labels=unknown[box].astype(np.uint8),
            affine=affine,
        )
        size = write_pack_entry(bg, path=out / f"{name}{PACK_SUFFIX}", spacing_mm=spacing_mm)
        info = {
            "head": name,
            "series": heads[name]["series"],
            "locator_centre_lps_mm": [round(float(v), 3) for v in centre],
            "offsets_mm": [list(o) for o in OFFSETS_MM],
            "unlabelled": unlabelled,
            "pack_spacing_mm": spacing_mm,
        }
        (out / f"{name}.json").write_text(json.dumps(info, indent=1), encoding="utf-8")
        log.info("%s: packed %s voxels of %s, %.2f MB", name, bg.hu.shape, volume.shape, size / 1e6)


def cases_from_pack(*, pack: Path, out: Path, names: list[str] | None) -> list[str]:
    """The negative cases of the heads in ``pack``; each head's CT is written once, as a
    DICOM series in ``<out>_ct/<head>``, and the cases' ``ct/`` link to it."""
    from sinusapp.synth.dicomio import CaseDicomInfo, CtSeriesOptions, write_ct_series
    from sinusapp.synth.realanat_pack import PACK_SUFFIX, read_pack_entry

    metas = {p.name[: -len(".json")]: p for p in sorted(pack.glob("*.json"))}
    wanted = names or sorted(metas)
    missing = [n for n in wanted if n not in metas]
    if missing:
        raise SystemExit(
            f"--from-pack {pack}: heads {missing} are not in the pack (there: "
            f"{sorted(metas) or 'none'}); pack them with --pack-heads"
        )
    written = []
    for name in wanted:
        info = json.loads(metas[name].read_text(encoding="utf-8"))
        bg = read_pack_entry(pack / f"{name}{PACK_SUFFIX}", patient=name)
        ct = out.parent / f"{out.name}_ct" / name
        write_ct_series(
            hu=np.rint(bg.hu).astype(np.int16),
            affine=bg.affine,
            out_dir=ct,
            case=CaseDicomInfo(case_id=f"NEG_{name.split('_')[0]}", seed=0, sex="O", age_years=0),
            options=CtSeriesOptions(
                series_number=2,
                series_description="real head (packed), no placed disease",
                model="real head background",
            ),
        )
        written += _cases_of_head(
            name,
            centre=np.asarray(info["locator_centre_lps_mm"], float),
            out=out,
            ct=ct,
            unknown=bg.labels,
            affine=bg.affine,
            unlabelled=info["unlabelled"],
        )
    return written


def _head(
    head: dict, margin_mm: float, anterior_mm: float
) -> tuple[Volume, np.ndarray, np.ndarray, str]:
    """The head's CT, its unlabelled box mask, the locator's centre and the box's wording."""
    if head["box_lps_mm"] is None:
        raise SystemExit(f"{head['name']}: no hand-marked box (expect {head['expect']!r})")
    volume = load_ct_series(SHARED / head["series"])
    b = head["box_lps_mm"]
    box = widened_box(
        np.array([b["x"], b["y"], b["z"]], float), margin_mm=margin_mm, anterior_mm=anterior_mm
    )
    unknown = box_mask(volume, box_lps_mm=box)
    centre = locate_sinus_region(volume).center_lps
    log.info(
        "%s: %s voxels, box %.0f%% of them, locator centre %s",
        head["name"],
        volume.shape,
        100 * unknown.mean(),
        np.round(centre, 1),
    )
    return (
        volume,
        unknown,
        centre,
        (f"hand-marked sinonasal box +{margin_mm:g} mm (+{anterior_mm:g} mm anterior)"),
    )


def add_pack_arguments(
    ap: argparse.ArgumentParser,
    *,
    pack_help: str,
    from_pack_help: str,
    default_spacing_mm: float = 1.25,
) -> None:
    """``--pack-heads DIR``, ``--pack-spacing`` and ``--from-pack DIR``: the head scripts'
    way to the GPU machine, where ``../shared`` does not travel."""
    ap.add_argument("--pack-heads", type=Path, default=None, metavar="DIR", help=pack_help)
    ap.add_argument(
        "--pack-spacing",
        type=float,
        default=default_spacing_mm,
        help=f"mm (default {default_spacing_mm:g})",
    )
    ap.add_argument("--from-pack", type=Path, default=None, metavar="DIR", help=from_pack_help)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=None, help="the cases' folder")
    ap.add_argument(
        "--heads",
        nargs="+",
        default=None,
        help="names in tests/model/real_head_boxes.json (default: VHF and harvard02; with "
        "--from-pack: every head in the pack)",
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
    add_pack_arguments(
        ap,
        pack_help="write the heads as pack entries here (for the GPU machine)",
        from_pack_help="write the cases (--out) from this pack, without ../shared",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    if args.from_pack is not None:
        if args.out is None:
            ap.error("--from-pack needs --out")
        written = cases_from_pack(pack=args.from_pack, out=args.out, names=args.heads)
        log.info("wrote %d negative cases to %s", len(written), args.out)
        return 0
    heads = {h["name"]: h for h in json.loads(BOXES.read_text(encoding="utf-8"))["heads"]}
    names = args.heads or ["vhf_visible_human_female_head", "harvard02_cadaver_head_sinus_coverage"]
    if args.pack_heads is not None:
        pack_heads(
            heads=heads,
            names=names,
            out=args.pack_heads,
            spacing_mm=args.pack_spacing,
            margin_mm=args.margin_mm,
            anterior_mm=args.anterior_mm,
        )
        return 0
    if args.out is None:
        ap.error("--out is needed (or --pack-heads / --from-pack)")
    args.out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names:
        volume, unknown, centre, unlabelled = _head(heads[name], args.margin_mm, args.anterior_mm)
        written += _cases_of_head(
            name,
            centre=centre,
            out=args.out,
            ct=SHARED / heads[name]["series"],
            unknown=unknown,
            affine=volume.affine,
            unlabelled=unlabelled,
        )
    log.info("wrote %d negative cases to %s", len(written), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
