"""Shared helpers of the model tests (a uniquely named module: every test folder has its own
conftest.py, so tests must not import from "conftest")."""

from __future__ import annotations

import functools

import numpy as np

from sinusapp.model.config import NetworkConfig, PreprocessConfig
from sinusapp.model.testing import make_sinus_phantom

TINY_NET = NetworkConfig(base_width=4, levels=3, cls_hidden=(16,))
TINY_PRE = PreprocessConfig(spacing_mm=4.0, block_shape=(32, 32, 32))
PHANTOM_GRID = {"shape": (64, 80, 80), "spacing_mm": (2.5, 2.2, 2.2)}


def tiny_cases(n: int, *, seed: int = 0, n_test: int = 0) -> list:
    """``n`` phantom TrainingCases (alternating outcome; the last ``n_test`` in 'test')."""
    from sinusapp.model.train import TrainingCase

    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        severity = (float(rng.uniform(0.2, 1.0)), float(rng.uniform(0.2, 1.0)))
        cases.append(
            TrainingCase(
                case_id=f"case{i:03d}",
                cohort="test" if i >= n - n_test else "train",
                recurrence=i % 2,
                load=functools.partial(
                    make_sinus_phantom,
                    **PHANTOM_GRID,
                    severity=severity,
                    polyp=bool(i % 2),
                    seed=seed + i,
                ),
                extra={"true_probability": 0.3 + 0.4 * (i % 2) + 0.01 * i},
            )
        )
    return cases


def save_tiny_bundle(folder, *, state_dict: dict, network: NetworkConfig, name: str = "tiny"):
    """A test bundle of ``network`` with ``state_dict`` at :data:`TINY_PRE` (loadable by
    the Predictor); returns the :class:`~sinusapp.model.bundle.Bundle`."""
    from sinusapp.model.bundle import save_bundle

    return save_bundle(
        folder,
        state_dict=state_dict,
        network=network,
        preprocess=TINY_PRE,
        name=name,
        version="0.0.1",
        training={"data_description": "test"},
        metrics={},
        model_card="tiny {sha256}\n",
    )
