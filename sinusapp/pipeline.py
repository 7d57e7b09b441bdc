"""One analysis run: Volume + clinical inputs → prediction → quantification → nomogram.

Each stage is a plain function call with typed inputs and outputs; the predictor and the
nomogram are injected, so tests pass fakes and the GUI, the CLI and the report all get the
same :class:`AnalysisResult`::

    folder → dicom.load_volume → Volume
      → predictor.predict (crop → resample → network → mask on the CT grid, DLR-score)
      → quantification (lesion volume, per-sinus opacification)
      → nomogram.predict (DLR-score + clinical inputs → points → probability ± CI)
      → AnalysisResult → GUI | PDF report | result.json | DICOM SEG
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from sinusapp._version import __version__
from sinusapp.atomic import write_text_atomic
from sinusapp.errors import BundleError, NotSinusCTError, OutputError
from sinusapp.findings import Finding, Severity
from sinusapp.imaging.quantify import (
    NOT_GRADED,
    lund_mackay_score,
    not_assessed,
    per_sinus_opacification,
    sinuses_found,
    with_unfound_regions,
    without_unassessed_opacification,
)
from sinusapp.imaging.volume import Volume

__all__ = [
    "AnalysisResult",
    "ModelInfo",
    "PredictorLike",
    "analyse",
    "write_json_atomic",
]

log = logging.getLogger(__name__)

ProgressFn = Callable[[float, str], None]
CancelFn = Callable[[], bool]


class PredictorLike(Protocol):
    """What :func:`analyse` needs of a predictor (``sinusapp.model.Predictor`` or a fake)."""

    def predict(
        self,
        volume: Volume,
        *,
        progress: ProgressFn | None = None,
        should_cancel: CancelFn | None = None,
        region: Any = None,
    ) -> Any: ...


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """Provenance of the model that produced a result."""

    name: str
    version: str
    sha256: str
    trained_on_synthetic: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "trained_on_synthetic": self.trained_on_synthetic,
        }


@dataclass(frozen=True, slots=True, eq=False)
class AnalysisResult:
    """Everything one analysis produced; what the GUI shows, the report prints, JSON holds.

    ``mask`` is uint8 on the CT grid (``volume.array.shape``). ``points`` maps each nomogram
    factor to its points; ``per_sinus`` maps a sinus name (``maxillary_L``, ``ethmoid_ant_R``,
    ``frontal``...) to ``{"volume_ml", "opacified_ml", "opacification_pct", "lund_mackay"}``
    (see :func:`sinusapp.imaging.quantify.per_sinus_opacification`), or to ``{"volume_ml"}``
    alone where the model's lesion head does not assess the opacification (its bundle's
    ``lesion_regions``; ``result.json`` lists them in ``opacification_not_assessed``) and for
    a Lund–Mackay item the labels hold nothing of (``{"volume_ml": 0.0}``; with those under
    0.5 mL in ``sinuses_not_found``); ``None`` when no sinus labels were available.
    ``sinus_labels_source`` says where the labels came from (``"predictor"``, ``"given"``,
    ``"automatic"``, ``"model"``, ``"model + anchored"``, ``"model + automatic"``,
    ``"model, every sinus"`` or ``""``; the report's notes explain each).

    ``quality`` holds the findings of the input plausibility gate
    (:mod:`sinusapp.imaging.plausibility`); ``quality_checked`` is True only when
    :func:`analyse` ran that gate (a result rebuilt from elsewhere, e.g. an old record, says
    False, and the report and the GUI then say the checks were not run).
    """

    volume: Volume
    clinical_inputs: Mapping[str, Any]
    dlr_score: float
    probability: float
    probability_ci95: tuple[float, float]
    risk_group: str
    cutoff: float
    points: Mapping[str, float]
    total_points: float
    lesion_volume_ml: float
    mask: np.ndarray
    per_sinus: Mapping[str, Mapping[str, float]] | None = None
    sinus_labels_source: str = ""
    model: ModelInfo | None = None
    nomogram_version: str = ""
    warnings: tuple[Finding, ...] = ()
    quality: tuple[Finding, ...] = ()
    quality_checked: bool = False
    analysed_at: str = field(
        default_factory=lambda: _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    )
    software_version: str = __version__

    def to_json_dict(self) -> dict[str, Any]:
        """The ``result.json`` content (DESIGN §3), JSON-serialisable, no pixel data."""
        info = self.volume.info
        found, not_found = sinuses_found(self.per_sinus or {})
        lm_total, lm_max = lund_mackay_score(found)
        return {
            "software_version": self.software_version,
            "analysed_at": self.analysed_at,
            "dlr_score": float(self.dlr_score),
            "probability": float(self.probability),
            "probability_ci95": [float(self.probability_ci95[0]), float(self.probability_ci95[1])],
            "risk_group": self.risk_group,
            "cutoff": float(self.cutoff),
            "points": {
                "per_factor": {k: float(v) for k, v in self.points.items()},
                "total": float(self.total_points),
            },
            "clinical_inputs": dict(self.clinical_inputs),
            "lesion_volume_ml": float(self.lesion_volume_ml),
            "per_sinus": {k: dict(v) for k, v in (self.per_sinus or {}).items()},
            # over the found, graded regions (as on screen); the maximum is 2 per region
            "lund_mackay_total": lm_total,
            "lund_mackay_max": lm_max,
            # outlined with under 0.5 mL or not at all: not listed on screen or in the report
            "sinuses_not_found": not_found,
            "opacification_not_assessed": not_assessed(found),
            "sinus_labels_source": self.sinus_labels_source,
            "series": {
                "series_instance_uid": info.series_uid,
                "study_instance_uid": info.study_uid,
                "frame_of_reference_uid": info.frame_of_reference_uid,
                "description": info.series_description,
                "series_number": info.series_number,
                "modality": info.modality,
                "manufacturer": info.manufacturer,
                "manufacturer_model": info.manufacturer_model,
                "convolution_kernel": info.convolution_kernel,
                "slices": self.volume.shape[0],
                "rows": self.volume.shape[1],
                "columns": self.volume.shape[2],
                "spacing_mm": list(self.volume.spacing_mm),
                "slice_thickness_mm": info.slice_thickness_mm,
                "resampled": self.volume.resampled,
            },
            "patient": {
                "name": info.patient_name,
                "id": info.patient_id,
                "birth_date": info.patient_birth_date,
                "sex": info.patient_sex,
                "accession_number": info.accession_number,
                "study_date": info.study_date,
            },
            "model": self.model.to_dict() if self.model else None,
            "nomogram_version": self.nomogram_version,
            "warnings": [w.to_dict() for w in self.warnings],
            "quality": {
                "checked": bool(self.quality_checked),
                "passed": bool(self.quality_checked)
                and not any(f.severity == Severity.ERROR for f in self.quality),
                "findings": [f.to_dict() for f in self.quality],
            },
        }


def analyse(
    volume: Volume,
    clinical: Mapping[str, Any],
    *,
    predictor: PredictorLike,
    nomogram: Any,
    progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
    sinus_labels: np.ndarray | None = None,
    sinus_region: Any = None,
) -> AnalysisResult:
    """Run one analysis.

    Parameters
    ----------
    volume:
        The CT (from :func:`sinusapp.dicom.load_volume`).
    clinical:
        Validated clinical inputs as a mapping with at least ``asthma``,
        ``allergic_rhinitis`` and ``eosinophils_per_ul`` (see :mod:`sinusapp.clinical`);
        extra record-only factors are carried into the result unchanged.
    predictor:
        Anything with ``predict(volume, *, progress, should_cancel)`` returning an object
        with ``.mask``, ``.dlr_score``, ``.lesion_volume_ml`` and optionally ``.per_sinus``.
        Its ``.manifest`` (when it has one) may name, in ``lesion_regions.assessed``, the
        regions whose opacification its lesion head measures: the other per-sinus rows keep
        their volume only (also rows the predictor gives itself).
    nomogram:
        A :class:`sinusapp.nomogram.Nomogram` (or fake) whose ``predict(**factors)`` gives
        ``.probability``, ``.ci95``, ``.points``, ``.total_points``, ``.risk_group``.
    progress, should_cancel:
        Forwarded to the predictor; progress covers the whole run (0 → 1).
    sinus_labels:
        Sinus label map on the CT grid (:data:`sinusapp.imaging.quantify.SINUS_LABELS`
        values) for the per-sinus quantification. When the predictor provides ``per_sinus``
        that is kept (less what it does not assess); otherwise these labels are used, and
        when none are given the automatic labelling
        :func:`sinusapp.imaging.sinus_labels.label_sinuses` is tried (``per_sinus`` stays
        ``None`` when it declines).
    sinus_region:
        The :class:`~sinusapp.model.preprocess.SinusRegion` already located on ``volume``
        (the GUI's, found when the series was opened), forwarded to the predictor as
        ``region=`` so that it does not locate it again; ``None``: the predictor locates it
        (and a CT without sinuses stops at the gate there).

    Raises
    ------
    InputQualityError
        The input plausibility gate (:mod:`sinusapp.imaging.plausibility`) found an
        ``error``: air far from −1000 HU, not CT, no sinus cavity (the locator's
        :class:`~sinusapp.errors.NotSinusCTError` becomes the ``no_sinus_cavity`` finding).
        Its message names what was measured and what to do; nothing is computed after it.
    """
    from sinusapp.imaging import plausibility

    def report(fraction: float, stage: str) -> None:
        if progress is not None:
            progress(min(max(fraction, 0.0), 1.0), stage)

    report(0.0, "checking the input")
    assessed = _assessed_regions(predictor)  # a bad manifest fails before the inference
    quality = list(plausibility.check_acquisition(volume))
    plausibility.raise_if_severe(quality)
    try:
        located = {} if sinus_region is None else {"region": sinus_region}
        pred = predictor.predict(
            volume,
            progress=(lambda f, s: report(0.95 * f, s)),
            should_cancel=should_cancel,
            **located,
        )
    except NotSinusCTError as exc:
        quality.append(plausibility.not_sinus_finding(exc))
        plausibility.raise_if_severe(quality)
        raise  # pragma: no cover - raise_if_severe always raises on an error finding
    if pred.dlr_score is None:
        raise BundleError(
            "this model bundle is segmentation-only (trained with --task seg): it gives no "
            "DLR-score, so the nomogram cannot estimate the risk of recurrence",
            hint="use a multi-task bundle (sinusapp train --task multi) for the analysis",
        )
    mask = np.asarray(pred.mask)
    if mask.shape != volume.shape:
        raise RuntimeError(
            f"predictor returned a mask of shape {mask.shape} for a CT of shape {volume.shape}"
        )
    centre = getattr(pred, "region_center_lps", None)
    if centre is not None:
        quality += plausibility.check_region(volume, region_center_lps=centre)
        quality += plausibility.check_lesion(volume, mask, region_center_lps=centre)
    else:
        quality.append(
            Finding(
                "region_not_checked",
                Severity.INFO,
                "The predictor gave no sinus-region centre, so coverage, likeness to the "
                "training data and the lesion's location were not checked.",
            )
        )
    plausibility.raise_if_severe(quality)
    for f in quality:
        if f.severity != Severity.INFO:
            log.warning("input quality [%s] %s", f.code, f.message)
    report(0.95, "per-sinus quantification")
    per_sinus, source = _per_sinus(volume, mask, pred=pred, sinus_labels=sinus_labels)
    if per_sinus is not None:
        # where the model's lesion head never learned disease its 0 % says nothing: those
        # rows keep their volume and are shown as not assessed (the bundle's lesion_regions)
        per_sinus = without_unassessed_opacification(per_sinus, assessed=assessed)
        if source != "predictor":
            # a sinus the labels hold nothing of is named "not outlined", not left out
            per_sinus = with_unfound_regions(per_sinus)
    factors: dict[str, Any] = {"dlr_score": float(pred.dlr_score)}
    for name in _nomogram_factor_names(nomogram):
        if name != "dlr_score":
            factors[name] = clinical[name]
    nom = nomogram.predict(**factors)
    warnings = tuple(volume.findings) + tuple(getattr(nom, "warnings", ()) or ())
    model_info = _model_info(predictor)
    report(1.0, "done")
    return AnalysisResult(
        volume=volume,
        clinical_inputs=dict(clinical),
        dlr_score=float(pred.dlr_score),
        probability=float(nom.probability),
        probability_ci95=(float(nom.ci95[0]), float(nom.ci95[1])),
        risk_group=str(nom.risk_group),
        cutoff=float(getattr(nomogram, "cutoff", float("nan"))),
        points={k: float(v) for k, v in nom.points.items()},
        total_points=float(nom.total_points),
        lesion_volume_ml=float(pred.lesion_volume_ml),
        mask=mask.astype(np.uint8, copy=False),
        per_sinus=per_sinus,
        sinus_labels_source=source,
        model=model_info,
        nomogram_version=str(getattr(nomogram, "version", "")),
        warnings=tuple(w for w in warnings if isinstance(w, Finding)),
        quality=tuple(quality),
        quality_checked=True,
    )


def _per_sinus(
    volume: Volume, mask: np.ndarray, *, pred: Any, sinus_labels: np.ndarray | None
) -> tuple[dict[str, dict[str, float]] | None, str]:
    """Per-sinus quantification and where its labels came from (see :func:`analyse`).

    The nasal cavity is left out of the result: it is not a Lund–Mackay item, and the report
    grades every row it is given.
    """
    given = getattr(pred, "per_sinus", None)
    if given:
        return {k: dict(v) for k, v in given.items()}, "predictor"
    model_labels = getattr(pred, "sinus_labels", None)
    centre = _located_centre(pred)
    # Labels on a box of the CT grid (``box``; None = the whole grid): the automatic
    # labelling and its merge never make a CT-sized label map.
    box: tuple[slice, slice, slice] | None = None
    if sinus_labels is None and model_labels is not None:
        labels, box, source = _model_and_rule_labels(
            volume, np.asarray(model_labels), region_center_lps=centre
        )
    elif sinus_labels is not None:
        labels, source = np.asarray(sinus_labels), "given"
        if labels.shape != volume.shape:
            raise ValueError(
                f"sinus labels of shape {labels.shape} do not match the CT's shape {volume.shape}"
            )
    else:
        from sinusapp.imaging.sinus_labels import label_sinuses_box

        auto = label_sinuses_box(volume, region_center_lps=centre)
        if auto is None:
            return None, ""
        (labels, box), source = auto, "automatic"
    quant = per_sinus_opacification(
        lesion_mask=mask, sinus_labels=labels, volume=volume, labels_box=box
    )
    graded = {k: v for k, v in quant.items() if k not in NOT_GRADED}
    if not graded:
        log.warning("the sinus label map holds no paranasal sinus; no per-sinus quantification")
        return None, ""
    return graded, source


def _assessed_regions(predictor: Any) -> frozenset[str] | None:
    """The regions whose opacification the predictor's lesion head measures (its bundle's
    ``lesion_regions``; ``None``: all, e.g. a predictor without a manifest)."""
    from sinusapp.model.bundle import lesion_assessed_regions

    manifest = getattr(predictor, "manifest", None)
    if not isinstance(manifest, Mapping):
        return None
    try:
        return lesion_assessed_regions(manifest)
    except ValueError as exc:
        raise BundleError(
            f"The model's manifest is invalid: {exc}.",
            hint="Use a bundle that load_bundle accepts (docs/model.md, bundle format).",
        ) from exc


def _located_centre(pred: Any) -> np.ndarray | None:
    """The rule-based labelling's anchor from the predictor's own locate, when it has one.

    :class:`~sinusapp.model.Predictor` results carry the located
    :class:`~sinusapp.model.preprocess.SinusRegion` (``sinus_region``); its centre with the
    midline as x is what :func:`~sinusapp.imaging.sinus_labels.label_sinuses` would locate
    itself, so reusing it skips a second locate with the same labels. Other predictors
    (fakes) give ``None``: the labelling locates on its own, as before.
    """
    region = getattr(pred, "sinus_region", None)
    if region is None:
        return None
    centre = np.array(region.center_lps, float)
    centre[0] = region.midline_x_mm
    return centre


def _model_and_rule_labels(
    volume: Volume, model_labels: np.ndarray, *, region_center_lps: np.ndarray | None = None
) -> tuple[np.ndarray, tuple[slice, slice, slice] | None, str]:
    """The model's cavity labels, completed with the ethmoid, frontal and sphenoid sinuses.

    The model's sinus head labels what real labelled CT covers (maxillary sinuses, nasal
    cavity); a head with every class (``--sinus-upper``) also the other sinuses, and when
    its labels hold any of them they are taken as they are (source ``model, every sinus``).
    Otherwise the other sinuses come from :func:`sinusapp.imaging.upper_sinuses.
    label_upper_sinuses`, placed by the model's own labels (source ``model + anchored``);
    only when that finds none, from the phantom-tuned zones of
    :func:`sinusapp.imaging.sinus_labels.label_sinuses_box` (source ``model + automatic``),
    in both cases only where the model labelled no cavity.

    Returns ``(labels, box, source)``: the uint8 labels of ``volume.array[box]`` (zero
    outside), ``box`` spanning the model's labelled voxels and the rule-based labelling's
    box, so that no CT-sized label map is made (``box`` is None only when nothing at all
    is labelled: then ``labels`` is the model's, CT-sized).
    """
    from sinusapp.imaging.quantify import LABEL_IDS, nonzero_box
    from sinusapp.imaging.sinus_labels import label_sinuses_box
    from sinusapp.imaging.upper_sinuses import label_upper_sinuses
    from sinusapp.model.config import SINUS_HEAD_REGIONS

    if model_labels.shape != volume.shape:
        raise RuntimeError(
            f"predictor returned sinus labels of shape {model_labels.shape} for a CT of "
            f"shape {volume.shape}"
        )
    own = [LABEL_IDS[r] for r in SINUS_HEAD_REGIONS[1:]]  # the default head's cavities
    model_box = nonzero_box(model_labels)
    if model_box is not None:
        in_box = model_labels[model_box]
        if (~np.isin(in_box, [0, *own])).any():
            # a sinus head with every class (``sinusapp train --sinus-upper``) labelled the
            # ethmoid / frontal / sphenoid cells itself, air and disease alike: they stand
            return in_box.astype(np.uint8, copy=True), model_box, "model, every sinus"
    found = label_upper_sinuses(hu=volume.array, affine=volume.affine, model_labels=model_labels)
    source = "model + anchored"
    if found is None or not found[0].any():
        found = label_sinuses_box(volume, region_center_lps=region_center_lps)
        source = "model + automatic"
    boxes = [b for b in (model_box, None if found is None else found[1]) if b is not None]
    if not boxes:
        return model_labels, None, "model"
    lo = [min(b[a].start for b in boxes) for a in range(3)]
    hi = [max(b[a].stop for b in boxes) for a in range(3)]
    box = (slice(lo[0], hi[0]), slice(lo[1], hi[1]), slice(lo[2], hi[2]))
    labels = model_labels[box].astype(np.uint8, copy=True)
    if found is None:
        return labels, box, "model"
    rules, rb = found
    # the rule-based box inside the merged one (a view: writing it completes ``labels``)
    sub = labels[tuple(slice(rb[a].start - lo[a], rb[a].stop - lo[a]) for a in range(3))]
    take = (sub == 0) & (rules > 0) & ~np.isin(rules, own)
    sub[take] = rules[take]
    return labels, box, source


def _nomogram_factor_names(nomogram: Any) -> list[str]:
    factors = getattr(nomogram, "factors", None)
    if factors is None:
        return ["dlr_score", "asthma", "allergic_rhinitis", "eosinophils_per_ul"]
    return [getattr(f, "name", f) for f in factors]


def _model_info(predictor: Any) -> ModelInfo | None:
    """Provenance from the predictor: ``model_info`` (a ModelInfo or a mapping with name,
    version, sha256) completed by the bundle ``manifest`` (trained_on_synthetic)."""
    info = getattr(predictor, "model_info", None)
    if isinstance(info, ModelInfo):
        return info
    manifest = getattr(predictor, "manifest", None)
    manifest = manifest if isinstance(manifest, Mapping) else {}
    source = info if isinstance(info, Mapping) else manifest
    if not source:
        return None
    synthetic = source.get("trained_on_synthetic", manifest.get("trained_on_synthetic", True))
    return ModelInfo(
        name=str(source.get("name", "")),
        version=str(source.get("version", "")),
        sha256=str(source.get("sha256", source.get("weights_sha256", ""))),
        trained_on_synthetic=bool(synthetic),
    )


def write_json_atomic(data: Mapping[str, Any], path: str | Path) -> Path:
    """Write JSON so that a failed or interrupted write never leaves a half file.

    Raises :class:`~sinusapp.errors.OutputError` naming the path when it cannot be written.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"cannot create the folder for {target.name}: {exc.strerror}",
            path=target,
            hint="choose a folder you can write to",
        ) from exc
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    return write_text_atomic(text, target, what="the result JSON")
