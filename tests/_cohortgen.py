"""A synthetic nomogram training cohort with a known signal (no bundled model needed)."""

from __future__ import annotations

import numpy as np


def synthetic_cohort(n: int = 300, seed: int = 0) -> dict[str, np.ndarray]:
    """Patients whose recurrence depends on all four default factors via a shared latent."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=n)
    asthma = rng.random(n) < 1 / (1 + np.exp(-(latent - 1.5)))
    ar = rng.random(n) < 1 / (1 + np.exp(-(latent - 1.0)))
    eos = np.clip(250 + 120 * latent + rng.normal(0, 150, n), 10, 3000).round()
    dlr = 1 / (1 + np.exp(-(0.8 * latent + rng.normal(0, 1, n))))
    lp = -1 + 1.5 * asthma + 0.8 * ar + 0.002 * (eos - 250) + 2 * (dlr - 0.5) + 0.5 * latent
    y = rng.random(n) < 1 / (1 + np.exp(-lp))
    return {
        "recurrence": y,
        "dlr_score": dlr,
        "asthma": asthma,
        "allergic_rhinitis": ar,
        "eosinophils_per_ul": eos,
    }
