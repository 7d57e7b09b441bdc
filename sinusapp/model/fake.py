"""A deterministic stand-in for :class:`~sinusapp.model.Predictor` (no torch, no bundle).

For tests of the pipeline, the GUI and the report: same ``predict`` interface and result type,
fast, deterministic, and it puts a plausible lesion (two blobs in the maxillary sinuses and
one in the nasal cavity) in the located sinus region.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from sinusapp.imaging.volume import Volume
from sinusapp.model.predictor import PredictionResult, ProgressCallback, _checker

__all__ = ["FakePredictor"]

#: Blob centres relative to the region centre (LPS mm) and radii (mm).
_BLOBS = (((-28.0, 5.0, -15.0), 11.0), ((28.0, 5.0, -15.0), 8.0), ((-4.0, -5.0, -12.0), 5.0))


class FakePredictor:
    """Deterministic fake predictor.

    Parameters
    ----------
    dlr_score:
        The DLR-score every prediction returns.
    locate:
        True: run the real sinus-region locator (so a chest CT is refused with
        :class:`~sinusapp.errors.NotSinusCTError`, as with the real model); False: put the
        blobs around the volume's centre (for tiny test volumes without anatomy).
    delay_s:
        Sleep this long per stage (to test progress bars and cancelling).
    """

    def __init__(
        self, *, dlr_score: float = 0.42, locate: bool = True, delay_s: float = 0.0
    ) -> None:
        if not 0.0 <= dlr_score <= 1.0:
            raise ValueError(f"dlr_score must be in [0, 1], got {dlr_score}")
        if delay_s < 0:
            raise ValueError(f"delay_s must be ≥ 0, got {delay_s}")
        self.dlr_score = float(dlr_score)
        self.locate = locate
        self.delay_s = float(delay_s)
        self.device = "fake"

    @property
    def model_info(self) -> dict[str, str]:
        """Provenance, marked as fake."""
        return {"name": "fake", "version": "0", "sha256": "0" * 64}

    @property
    def manifest(self) -> dict[str, object]:
        """A minimal manifest (same flat keys as :attr:`Predictor.manifest`)."""
        return {**self.model_info, "weights_sha256": "0" * 64, "trained_on_synthetic": True}

    def predict(
        self,
        volume: Volume,
        *,
        progress: ProgressCallback | None = None,
        should_cancel: Callable[[], bool] | None = None,
        region: Any = None,
    ) -> PredictionResult:
        """Same contract as :meth:`sinusapp.model.Predictor.predict`."""
        step = _checker(progress, should_cancel)
        timings: dict[str, float] = {}
        t = time.perf_counter()
        step(0.0, "locate")
        if self.locate and region is not None:
            center = region.center_lps
        elif self.locate:
            from sinusapp.model.preprocess import locate_sinus_region

            center = locate_sinus_region(volume).center_lps
        else:
            center = volume.index_to_lps((np.asarray(volume.shape, float) - 1) / 2)
        time.sleep(self.delay_s)
        timings["locate"] = time.perf_counter() - t
        for fraction, stage in ((0.3, "resample"), (0.6, "network")):
            t = time.perf_counter()
            step(fraction, stage)
            time.sleep(self.delay_s)
            timings[stage] = time.perf_counter() - t
        t = time.perf_counter()
        step(0.85, "map back")
        mask = np.zeros(volume.shape, np.uint8)
        inv = np.linalg.inv(volume.affine)
        sp = np.asarray(volume.spacing_mm)
        for offset, radius in _BLOBS:
            c = np.asarray(center) + np.asarray(offset)
            ci = inv[:3, :3] @ c + inv[:3, 3]
            r_idx = np.ceil(radius / sp).astype(int) + 1
            lo = np.clip(np.floor(ci).astype(int) - r_idx, 0, np.asarray(volume.shape))
            hi = np.clip(np.ceil(ci).astype(int) + r_idx + 1, 0, np.asarray(volume.shape))
            if np.any(hi <= lo):
                continue
            grid = np.stack(
                np.meshgrid(*(np.arange(a, b) for a, b in zip(lo, hi, strict=True)), indexing="ij"),
                axis=-1,
            )
            d = np.linalg.norm(volume.index_to_lps(grid) - c, axis=-1)
            mask[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] |= (d <= radius).astype(np.uint8)
        time.sleep(self.delay_s)
        timings["map back"] = time.perf_counter() - t
        if progress is not None:
            progress(1.0, "done")
        return PredictionResult(
            mask=mask,
            dlr_score=self.dlr_score,
            lesion_volume_ml=float(np.count_nonzero(mask) * volume.voxel_volume_ml),
            per_sinus=None,
            timings_s=timings,
            device="fake",
            model=self.model_info,
            region_center_lps=np.asarray(center, float),
        )
