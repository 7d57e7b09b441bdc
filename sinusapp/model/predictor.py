"""Inference: a CT :class:`~sinusapp.imaging.volume.Volume` → lesion mask + DLR-score.

:class:`Predictor` loads a bundle (verified), builds the network on the chosen device and runs
the stages *locate → resample → network → map back*, reporting progress and checking a cancel
flag between stages. torch is imported when a Predictor is created, never on import of this
module (the app's window must appear fast).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from sinusapp import errors
from sinusapp.errors import BundleError, InputError
from sinusapp.imaging.volume import Volume

__all__ = [
    "BUNDLED_MODEL_NAME",
    "BlockOutputs",
    "Cancelled",
    "PredictionResult",
    "Predictor",
    "PredictorLike",
    "ProgressCallback",
    "bundled_model_dir",
    "resolve_device",
]

log = logging.getLogger(__name__)

#: Folder name of the bundled model under :func:`sinusapp.resources.models_dir`.
BUNDLED_MODEL_NAME = "sinus_unet"

ProgressCallback = Callable[[float, str], None]
STAGES = ("locate", "resample", "network", "map back")


class Cancelled(errors.Cancelled):
    """The prediction was cancelled by the caller's ``should_cancel`` (not an input error)."""


@dataclass(frozen=True, slots=True, eq=False)
class PredictionResult:
    """What a prediction produces.

    Attributes
    ----------
    mask:
        uint8 lesion mask (1 = lesion) with the CT's shape ``[slice, row, column]``.
    dlr_score:
        Probability of recurrence from the image (the paper's DLR-score), 0–1; None for a
        segmentation-only bundle.
    lesion_volume_ml:
        Lesion volume in mL (mask voxels × voxel volume).
    per_sinus:
        Per-sinus quantification when the model provides it (this model does not: None;
        :mod:`sinusapp.imaging` computes it from a sinus label map).
    timings_s:
        Seconds per stage (``locate``, ``resample``, ``network``, ``map back``).
    device:
        Where the network ran (``cpu``, ``cuda``, ``cuda:0``...; ``fake`` for FakePredictor).
    model:
        Provenance: ``name``, ``version``, ``sha256`` of the bundle.
    block_affine:
        Index → LPS affine of the network's input block (for viewers and debugging).
    region_center_lps:
        Centre of the located sinus region, LPS mm.
    sinus_labels:
        uint8 sinus label map on the CT grid
        (:data:`~sinusapp.imaging.quantify.SINUS_LABELS` values) from the model's sinus head
        — the cavities it labels (maxillary L / R, nasal cavity); None without a sinus head.
    sinus_region:
        The located :class:`~sinusapp.model.preprocess.SinusRegion` (centre, midline), so
        that the pipeline's rule-based sinus labelling reuses it instead of locating again.
    """

    mask: np.ndarray
    dlr_score: float | None
    lesion_volume_ml: float
    per_sinus: dict[str, Any] | None = None
    timings_s: dict[str, float] = field(default_factory=dict)
    device: str = "cpu"
    model: dict[str, str] = field(default_factory=dict)
    block_affine: np.ndarray | None = None
    region_center_lps: np.ndarray | None = None
    sinus_labels: np.ndarray | None = None
    sinus_region: Any = None


@dataclass(frozen=True, slots=True, eq=False)
class BlockOutputs:
    """The network's outputs on one input block, on the block grid (numpy).

    ``lesion``: the lesion probability of the plain pass (zeros without a lesion head);
    ``lesion_mirrored``: that of the left-right mirrored block, mirrored back (None unless the
    mirrored pass was asked for and there is a lesion head); ``sinus``: the sinus head's class
    probabilities (C, D, H, W) or None; ``dlr_score``: None without a classification head or
    when not asked for.
    """

    lesion: np.ndarray
    lesion_mirrored: np.ndarray | None
    sinus: np.ndarray | None
    dlr_score: float | None

    def lesion_probability(self, *, mirror_average: bool) -> np.ndarray:
        """The plain pass's probability, or its mean with the mirrored pass's
        (``postprocessing.mirror_average``) when that pass was run."""
        if mirror_average and self.lesion_mirrored is not None:
            return 0.5 * (self.lesion + self.lesion_mirrored)
        return self.lesion


class PredictorLike(Protocol):
    """What the pipeline and the GUI need from a predictor (Predictor, FakePredictor)."""

    @property
    def model_info(self) -> dict[str, str]: ...

    def predict(
        self,
        volume: Volume,
        *,
        progress: ProgressCallback | None = None,
        should_cancel: Callable[[], bool] | None = None,
        region: Any = None,
    ) -> PredictionResult: ...


def bundled_model_dir() -> Path:
    """Folder of the model bundle that ships with SinusApp."""
    from sinusapp.resources import models_dir

    return models_dir() / BUNDLED_MODEL_NAME


def resolve_device(device: str) -> str:
    """``auto`` → ``cuda`` when available else ``cpu``; validates explicit choices.

    Raises
    ------
    InputError
        ``device`` is not auto/cpu/cuda[:N], or CUDA was asked for but is not available.
    """
    import torch

    d = device.strip().lower()
    if d == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if d == "cpu":
        return "cpu"
    if d == "cuda" or d.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise InputError(
                f"Device {device!r} was requested but no CUDA GPU is available to torch "
                f"(torch {torch.__version__}).",
                hint="Use --device cpu or auto, or install a CUDA build of torch.",
            )
        return d
    raise InputError(f"Unknown device {device!r}.", hint="Use auto, cpu or cuda.")


def _checker(
    progress: ProgressCallback | None, should_cancel: Callable[[], bool] | None
) -> Callable[[float, str], None]:
    def step(fraction: float, stage: str) -> None:
        if should_cancel is not None and should_cancel():
            raise Cancelled(f"prediction cancelled before stage '{stage}'")
        if progress is not None:
            progress(fraction, stage)

    return step


class Predictor:
    """Runs a model bundle on CT volumes.

    Parameters
    ----------
    bundle_dir:
        A bundle folder; None = the bundled model (``models/sinus_unet``).
    device:
        ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``.

    Raises
    ------
    BundleError
        The bundle is missing, corrupted (checksum mismatch) or invalid, or its weights do not
        fit its architecture.
    InputError
        The device is unknown or unavailable.
    """

    def __init__(self, bundle_dir: str | Path | None = None, *, device: str = "auto") -> None:
        from sinusapp.model.bundle import load_bundle

        # the bundle is verified before torch is imported: a wrong --bundle is refused at once
        path = Path(bundle_dir) if bundle_dir is not None else bundled_model_dir()
        self.bundle = load_bundle(path)

        import torch

        from sinusapp.model.network import UNet3D

        self.device = resolve_device(device)
        model = UNet3D(config=self.bundle.network)
        state = self.bundle.load_state_dict(device="cpu")
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise BundleError(
                f"The weights of model bundle '{self.bundle.name}' do not fit its architecture: "
                f"{str(exc).splitlines()[0]}",
                path=self.bundle.weights_path,
                hint="The manifest and the weights come from different models; retrain it.",
            ) from exc
        self._model = model.to(self.device).eval()
        self._torch = torch
        post = self.bundle.postprocessing
        if post.grow_mm > 0 and not self.bundle.network.sinus_classes:
            log.warning(
                "model bundle %s: postprocessing grow_mm %.1f needs a sinus head, which this "
                "network has none of; the lesion is not grown (set grow_mm 0 to silence this)",
                self.bundle.name,
                post.grow_mm,
            )
        if post.sinus_component_mm is not None and not self.bundle.network.sinus_classes:
            log.warning(
                "model bundle %s: postprocessing sinus_component_mm / drop_stray_lesion need a "
                "sinus head, which this network has none of; they do nothing",
                self.bundle.name,
            )
        log.info(
            "model %s %s loaded on %s (%d parameters)",
            self.bundle.name,
            self.bundle.version,
            self.device,
            model.parameter_count(),
        )

    @property
    def model_info(self) -> dict[str, str]:
        """Provenance for reports: name, version, sha256."""
        return {
            "name": self.bundle.name,
            "version": self.bundle.version,
            "sha256": self.bundle.sha256,
        }

    @property
    def manifest(self) -> dict[str, Any]:
        """The bundle's manifest plus flat ``sha256`` / ``weights_sha256`` and
        ``trained_on_synthetic`` keys (what the pipeline and the report read)."""
        m = dict(self.bundle.manifest)
        m["sha256"] = m["weights_sha256"] = self.bundle.sha256
        m["trained_on_synthetic"] = bool(m.get("trained_on_synthetic", True))
        return m

    def block_outputs(
        self, image: np.ndarray, *, mirror: bool = False, classify: bool = True
    ) -> BlockOutputs:
        """Run the network on one normalised input block (``preprocess.normalise_hu``'s
        output, the bundle's ``block_shape``).

        Segmentation runs on the whole block; the DLR-score (``classify``) on the central
        patch when the model was trained on patches (the field of view its classifier knows).
        ``mirror``: the left-right mirrored block (the block's last axis is its left) goes
        through in the same batch (1.15 s on 2 CPU threads against 1.29-1.51 s for a second
        call); only its lesion probability is used, so without a lesion head it is skipped.
        :meth:`predict` and the benchmark that chooses the post-processing both call this.
        """
        torch = self._torch
        cfg = self.bundle.preprocess
        model = self._model
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(image, np.float32))[None, None]
            x = x.to(self.device)
            patched = cfg.patch_shape is not None
            mirror = mirror and model.seg_head is not None
            batch = torch.cat([x, torch.flip(x, dims=[4])]) if mirror else x
            out = model(batch, classify=classify and not patched)
            cls_logits = None
            if classify and patched and model.cls_head is not None:
                w = cfg.central_patch()
                cls_logits = model(x[:, :, w[0], w[1], w[2]], segment=False).cls_logits
            elif classify and out.cls_logits is not None:
                cls_logits = out.cls_logits[:1]
            if out.seg_logits is not None:
                lesion = torch.sigmoid(out.seg_logits[0, 0].float()).cpu().numpy()
            else:
                lesion = np.zeros(cfg.block_shape, np.float32)
            mirrored = None
            if mirror and out.seg_logits is not None:
                back = torch.flip(torch.sigmoid(out.seg_logits[1, 0].float()), dims=[2])
                mirrored = back.cpu().numpy()
            sinus = (
                torch.softmax(out.sinus_logits[0].float(), dim=0).cpu().numpy()
                if out.sinus_logits is not None
                else None
            )
            dlr = (
                float(torch.softmax(cls_logits.float(), dim=1)[0, 1].cpu())
                if cls_logits is not None
                else None
            )
        return BlockOutputs(lesion=lesion, lesion_mirrored=mirrored, sinus=sinus, dlr_score=dlr)

    def predict(
        self,
        volume: Volume,
        *,
        progress: ProgressCallback | None = None,
        should_cancel: Callable[[], bool] | None = None,
        region: Any = None,
    ) -> PredictionResult:
        """Segment the lesions and score recurrence risk on one CT.

        Parameters
        ----------
        volume:
            The CT.
        progress:
            Called as ``progress(fraction, stage)`` at each stage (fraction 0–1).
        should_cancel:
            Polled between stages; when it returns True, :class:`Cancelled` is raised.
        region:
            The :class:`~sinusapp.model.preprocess.SinusRegion` already located on this
            ``volume`` (the GUI locates it when it opens the series, to open at the sinuses),
            so that it is not located twice (0.1-1.5 s on the real heads). ``None``: located
            here. The locator is deterministic: passing its result changes nothing else.

        Raises
        ------
        NotSinusCTError
            The CT does not contain the nasal cavity and sinuses.
        Cancelled
            ``should_cancel`` returned True.
        """
        from sinusapp.model import preprocess as pp
        from sinusapp.model.refine import cavity_labels, lesion_mask

        cfg = self.bundle.preprocess
        step = _checker(progress, should_cancel)
        timings: dict[str, float] = {}

        step(0.0, "locate")
        t = time.perf_counter()
        if region is None:
            region = pp.locate_sinus_region(volume)
            timings["locate"] = time.perf_counter() - t
        else:
            timings["locate"] = 0.0  # located before (the GUI's load job), not here

        step(0.15, "resample")
        t = time.perf_counter()
        block_affine = pp.make_block_affine(region.center_lps, cfg)
        hu = pp.resample_to_block(volume, block_affine=block_affine, config=cfg)
        image = pp.normalise_hu(hu, config=cfg)
        timings["resample"] = time.perf_counter() - t

        step(0.3, "network")
        t = time.perf_counter()
        post = self.bundle.postprocessing
        outputs = self.block_outputs(image, mirror=post.mirror_average)
        prob = outputs.lesion_probability(mirror_average=post.mirror_average)
        sinus_prob, dlr = outputs.sinus, outputs.dlr_score
        timings["network"] = time.perf_counter() - t

        step(0.85, "map back")
        t = time.perf_counter()
        cavities = None
        if sinus_prob is not None:
            cavities = cavity_labels(
                sinus_prob, block_affine=block_affine, volume=volume, postprocessing=post
            )
        mask = lesion_mask(
            prob,
            block_affine=block_affine,
            volume=volume,
            postprocessing=post,
            cavities=cavities,
            sinus_probabilities=sinus_prob,
        )
        sinus_labels = None if cavities is None else cavities.labels
        timings["map back"] = time.perf_counter() - t
        if progress is not None:
            progress(1.0, "done")
        volume_ml = float(np.count_nonzero(mask) * volume.voxel_volume_ml)
        log.info(
            "prediction: DLR-score %s, lesion %.1f mL, timings %s",
            "n/a" if dlr is None else f"{dlr:.3f}",
            volume_ml,
            {k: round(v, 3) for k, v in timings.items()},
        )
        return PredictionResult(
            mask=mask,
            dlr_score=dlr,
            lesion_volume_ml=volume_ml,
            per_sinus=None,
            timings_s=timings,
            device=self.device,
            model=self.model_info,
            block_affine=block_affine,
            region_center_lps=region.center_lps,
            sinus_labels=sinus_labels,
            sinus_region=region,
        )
