"""What the GUI says about the model in use, derived from the model bundle's manifest.

The bundled model is trained on synthetic data and the window says so; a hospital that points
``SINUSAPP_MODELS`` at its own bundle (trained on its own data) gets a statement naming that
model instead. No Qt here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "LOCAL_STATEMENT",
    "SYNTHETIC_SHORT",
    "SYNTHETIC_STATEMENT",
    "ModelStatement",
    "model_statement",
]

log = logging.getLogger(__name__)

SYNTHETIC_STATEMENT = (
    "The bundled model is trained on synthetic data: computer-generated disease, clinical "
    "factors and outcomes, placed on real sinus CT anatomy (NasalSeg crops and two whole "
    "heads; it marks little of the disease in the ethmoid, frontal and sphenoid sinuses of a "
    "head it was not trained on, so their opacification is shown as not assessed). It is not "
    "a medical device and is not for clinical use: its risk estimates must not guide the "
    "care of any patient."
)
SYNTHETIC_SHORT = (
    "Research software. The bundled model is trained on synthetic disease (on real CT "
    "anatomy) — not for clinical use."
)
#: ``{name}`` and ``{version}`` are the bundle manifest's.
LOCAL_STATEMENT = (
    "Model: {name} {version} (trained on local data by your institution); "
    "validate before clinical use."
)


@dataclass(frozen=True, slots=True)
class ModelStatement:
    """The model in use, as the About box and the results panel describe it.

    Attributes
    ----------
    name, version:
        From the bundle's manifest (empty when the bundle could not be read).
    trained_on_synthetic:
        The manifest's ``trained_on_synthetic`` (True when unknown: the cautious choice).
    card:
        The bundle's ``MODEL_CARD.md`` text, or a line saying why it is missing.
    error:
        Why the bundle could not be read ("" when it could).
    """

    name: str = ""
    version: str = ""
    trained_on_synthetic: bool = True
    card: str = ""
    error: str = ""

    @property
    def long_text(self) -> str:
        """The statement for the About box."""
        if self.trained_on_synthetic:
            return SYNTHETIC_STATEMENT
        return LOCAL_STATEMENT.format(name=self.name, version=self.version)

    @property
    def short_text(self) -> str:
        """The one-line statement under the results."""
        if self.trained_on_synthetic:
            return SYNTHETIC_SHORT
        return LOCAL_STATEMENT.format(name=self.name, version=self.version)


def model_statement(bundle_dir: str | Path | None = None) -> ModelStatement:
    """Read the manifest of the bundle in use (default: the one under
    :func:`sinusapp.resources.models_dir`, which honours ``SINUSAPP_MODELS``).

    Never raises: a missing or invalid bundle gives the synthetic (cautious) statement with
    ``error`` set; the analysis reports the bundle's problem itself when it loads the model.
    """
    from sinusapp.errors import SinusAppError
    from sinusapp.model import bundled_model_dir, load_bundle

    try:
        folder = Path(bundle_dir) if bundle_dir is not None else bundled_model_dir()
        # manifest only: the weights are hashed when the model is loaded for an analysis
        bundle = load_bundle(folder, verify_weights=False)
    except (SinusAppError, OSError, ValueError) as exc:
        log.warning("cannot read the model bundle's manifest: %s", exc)
        return ModelStatement(card=f"(model card not found: {exc})", error=str(exc))
    manifest = bundle.manifest
    card_path = bundle.path / "MODEL_CARD.md"
    try:
        card = card_path.read_text(encoding="utf-8")
    except OSError as exc:
        card = f"(model card not found: {exc})"
    return ModelStatement(
        name=bundle.name,
        version=bundle.version,
        trained_on_synthetic=bool(manifest.get("trained_on_synthetic", True)),
        card=card,
    )
