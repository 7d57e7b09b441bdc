"""Fixtures of the model tests: tiny phantoms, and one tiny model trained once per session.

Only 2 CPU cores are shared by the whole team: torch runs on 1 thread and the networks are
tiny (base width 4, 3 levels, 32³ input at 4 mm).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from model_helpers import TINY_NET, TINY_PRE, tiny_cases


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> None:
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle holding a tiny model that has learned to segment the phantoms' lesions."""
    from sinusapp.model.bundle import save_bundle
    from sinusapp.model.train import TrainConfig, prepare_cases, train_model

    work = tmp_path_factory.mktemp("tiny_work")
    prepared = prepare_cases(tiny_cases(6), cache_dir=work, config=TINY_PRE)
    tcfg = TrainConfig(epochs=60, folds=0, batch_size=2, lr=1e-2, augment=False)
    model, _, history = train_model(prepared, network=TINY_NET, tcfg=tcfg, device="cpu", run_seed=1)
    out = tmp_path_factory.mktemp("tiny") / "bundle"
    save_bundle(
        out,
        state_dict=model.state_dict(),
        network=TINY_NET,
        preprocess=TINY_PRE,
        name="tiny-test-model",
        version="0.0.1",
        training={"data_description": "6 test phantoms", "history": history},
        metrics={},
        model_card="tiny test model {sha256}\n",
    )
    return out
