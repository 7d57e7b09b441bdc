"""``benchmarks/make_head_negatives.py --pack-heads`` / ``--from-pack``: the whole-head
negatives for the GPU machine, which ``../shared`` does not reach. The cases written from the
pack must give the training the same blocks as the cases on the DICOM head."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _benchscripts import load_benchmark

ROOT = Path(__file__).resolve().parents[2]
HEAD = "harvard02_cadaver_head_sinus_coverage"
SERIES = ROOT.parent / "shared" / "data" / "realct" / HEAD

pytestmark = pytest.mark.skipif(not SERIES.is_dir(), reason=f"real head not found at {SERIES}")


def test_negatives_from_the_pack_give_the_blocks_of_the_dicom_head(tmp_path: Path) -> None:
    from sinusapp.model import preprocess as pp
    from sinusapp.model.config import PreprocessConfig
    from sinusapp.model.dataset_adapter import seg_only_cases_from_folder

    mod = load_benchmark("make_head_negatives")
    pack, direct, packed = tmp_path / "pack", tmp_path / "direct", tmp_path / "packed"
    assert mod.main(["--pack-heads", str(pack), "--heads", HEAD]) == 0
    assert (pack / f"{HEAD}.json").is_file()
    assert mod.main(["--from-pack", str(pack), "--out", str(packed)]) == 0
    assert mod.main(["--out", str(direct), "--heads", HEAD]) == 0
    a = {c.case_id: c for c in seg_only_cases_from_folder(direct)}
    b = {c.case_id: c for c in seg_only_cases_from_folder(packed)}
    assert sorted(a) == sorted(b) and len(a) == len(mod.OFFSETS_MM)
    cfg = PreprocessConfig(spacing_mm=1.25, block_shape=(64, 80, 96))
    va, _, _, ua = a[sorted(a)[0]].load()
    vb, _, _, ub = b[sorted(b)[0]].load()
    assert ua is not None and ub is not None
    assert abs(ua.sum() * va.voxel_volume_ml - ub.sum() * vb.voxel_volume_ml) < 0.05 * (
        ua.sum() * va.voxel_volume_ml
    )  # the unlabelled box: the same volume at 1.25 mm
    for cid in (sorted(a)[0], sorted(a)[-1]):  # the locator's centre and the farthest offset
        centre = json.loads((packed / cid / "case.json").read_text())["sinus_centre_lps_mm"]
        assert centre == json.loads((direct / cid / "case.json").read_text())["sinus_centre_lps_mm"]
        aff = pp.make_block_affine(np.asarray(centre, float), cfg)
        x = pp.resample_to_block(va, block_affine=aff, config=cfg)
        y = pp.resample_to_block(vb, block_affine=aff, config=cfg)
        tissue = x > -900
        assert not (tissue & (y <= -999)).any()  # the pack's crop holds the whole block
        assert np.corrcoef(x[tissue], y[tissue])[0, 1] > 0.98
