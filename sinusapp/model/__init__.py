"""The multi-task 3D U-Net of He et al. (2023): preprocessing, training, bundles, inference.

Public API::

    from sinusapp.model import Predictor, FakePredictor, Cancelled
    result = Predictor(device="auto").predict(volume, progress=cb, should_cancel=flag)
    result.mask, result.dlr_score, result.lesion_volume_ml, result.per_sinus, result.timings_s

Importing this package does not import torch: :class:`Predictor` imports it when created,
training imports it when it starts (the app's window must appear fast).
"""

from __future__ import annotations

from sinusapp.model.bundle import Bundle, load_bundle
from sinusapp.model.config import NetworkConfig, PreprocessConfig
from sinusapp.model.fake import FakePredictor
from sinusapp.model.predictor import (
    BUNDLED_MODEL_NAME,
    Cancelled,
    PredictionResult,
    Predictor,
    PredictorLike,
    bundled_model_dir,
)

__all__ = [
    "BUNDLED_MODEL_NAME",
    "Bundle",
    "Cancelled",
    "FakePredictor",
    "NetworkConfig",
    "PredictionResult",
    "Predictor",
    "PredictorLike",
    "PreprocessConfig",
    "bundled_model_dir",
    "load_bundle",
]
