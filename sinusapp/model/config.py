"""Validated hyperparameters of the network and of the preprocessing (pure Python, no torch).

Both are stored in a bundle's ``manifest.json`` and rebuilt from it, so they live apart from
the torch code: the manifest can be validated (and a bad bundle refused with a clear message)
without importing torch, and the network validates its hyperparameters on construction
(MONAI style) by building a :class:`NetworkConfig`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

__all__ = [
    "SINUS_HEAD_REGIONS",
    "SINUS_HEAD_REGIONS_ALL",
    "SINUS_HEAD_SIZES",
    "TASKS",
    "NetworkConfig",
    "Postprocessing",
    "PreprocessConfig",
    "Task",
    "sinus_head_regions",
]

Task = Literal["multi", "seg", "cls"]
#: ``multi``: segmentation + classification (the paper's model); ``seg``: the decoder only
#: (classification head dropped); ``cls``: the encoder + classification head (decoder dropped).
TASKS: tuple[str, ...] = ("multi", "seg", "cls")
NORMS: tuple[str, ...] = ("instance", "batch")
#: Every class a sinus-labelling head may have, in order (class 0 = everything else). Names
#: are :data:`sinusapp.imaging.quantify.SINUS_LABELS` regions. A head with ``n`` classes has
#: the first ``n`` (:func:`sinus_head_regions`): 4 = the cavities that real labelled CT
#: (NasalSeg) covers; 10 adds the ethmoid, frontal and sphenoid sinuses (whole cells, air and
#: disease), learned from the cases whose labels hold them (``sinusapp train --sinus-upper``).
SINUS_HEAD_REGIONS_ALL: tuple[str, ...] = (
    "background",
    "maxillary_L",
    "maxillary_R",
    "nasal_cavity",
    "ethmoid_ant_L",
    "ethmoid_ant_R",
    "ethmoid_post_L",
    "ethmoid_post_R",
    "frontal",
    "sphenoid",
)
#: The default head's classes (bundles 2.x): maxillary sinus L / R and the nasal cavity; the
#: ethmoid, frontal and sphenoid sinuses then come from the rule-based labelling.
SINUS_HEAD_REGIONS: tuple[str, ...] = SINUS_HEAD_REGIONS_ALL[:4]
#: The head sizes a bundle may have: the default cavities, or every sinus.
SINUS_HEAD_SIZES: tuple[int, ...] = (len(SINUS_HEAD_REGIONS), len(SINUS_HEAD_REGIONS_ALL))


def sinus_head_regions(n_classes: int) -> tuple[str, ...]:
    """The region of each class of a sinus head with ``n_classes`` outputs (class 0 first).

    Raises
    ------
    ValueError
        ``n_classes`` is not a head size a bundle may have (:data:`SINUS_HEAD_SIZES`).
    """
    if n_classes not in SINUS_HEAD_SIZES:
        raise ValueError(
            f"a sinus head has {' or '.join(map(str, SINUS_HEAD_SIZES))} classes, got "
            f"{n_classes!r}; retrain with `sinusapp train --sinus-head` (optionally "
            "--sinus-upper)"
        )
    return SINUS_HEAD_REGIONS_ALL[:n_classes]


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class NetworkConfig:
    """Hyperparameters of the multi-task 3D U-Net (see :class:`~sinusapp.model.network.UNet3D`).

    Attributes
    ----------
    in_channels:
        Input channels (1: normalised HU).
    base_width:
        Channels of the first level; level ``l`` has ``base_width * 2**l`` (paper: 16).
    levels:
        Resolution levels including the bottleneck (paper: 5 → 16-32-64-128-256).
    seg_classes:
        Output channels of the segmentation head (1: lesion logit, sigmoid).
    sinus_classes:
        Classes of the second segmentation head, the sinus labelling (softmax over
        background + cavities; :func:`sinus_head_regions`: 4 or 10); 0 = no sinus head (bundles
        before 2.0).
    num_classes:
        Classification logits (2: no recurrence / recurrence, softmax).
    task:
        ``multi`` | ``seg`` | ``cls`` (single-task ablations of the paper).
    norm:
        ``instance`` (default: reliable with the small batches CPU training affords) or
        ``batch`` (the authors' choice, needs batches of ≥ 8).
    dropout:
        Dropout before the classification MLP (paper: 0.2).
    cls_hidden:
        Widths of the hidden fully connected layers of the classification head (paper:
        256, 64), followed by the final layer to ``num_classes`` logits.
    cls_lesion_features:
        Also feed the classification head two summaries of the lesion probability over its
        field of view (mean, and log of the mean; gradients stopped, so the classification
        loss cannot bend the segmentation): segmentation-guided classification. Without them
        a small network trained briefly on CPU learned only the prevalence (DLR-scores within
        0.383-0.385, bundle 2.0.0). Needs the decoder on the classification window, so it
        requires ``task="multi"``. False in bundles before 2.1.
    cls_region_features:
        Also feed the classification head the lesion fraction of each sinus-head region
        (maxillary L / R, nasal cavity: the model's own per-sinus opacification, gradients
        stopped). In the synthetic cohort the nasal cavity's burden carries most of the
        imaging signal (type-2, ethmoid-predominant disease and polyps) while the maxillary
        burden points the other way, which one lesion mean over the patch cannot tell apart.
        Needs ``cls_lesion_features`` and a sinus head.
    """

    in_channels: int = 1
    base_width: int = 8
    levels: int = 4
    seg_classes: int = 1
    sinus_classes: int = 0
    num_classes: int = 2
    task: str = "multi"
    norm: str = "instance"
    dropout: float = 0.2
    cls_hidden: tuple[int, ...] = (64, 32)
    cls_lesion_features: bool = False
    cls_region_features: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.cls_region_features, bool):
            raise ValueError(
                f"cls_region_features must be True or False, got {self.cls_region_features!r}"
            )
        if self.cls_region_features and not (self.cls_lesion_features and self.sinus_classes):
            raise ValueError(
                "cls_region_features needs cls_lesion_features and a sinus head "
                f"(sinus_classes >= 2), got cls_lesion_features={self.cls_lesion_features}, "
                f"sinus_classes={self.sinus_classes}"
            )
        if not isinstance(self.cls_lesion_features, bool):
            raise ValueError(
                f"cls_lesion_features must be True or False, got {self.cls_lesion_features!r}"
            )
        if self.cls_lesion_features and self.task != "multi":
            raise ValueError(
                f"cls_lesion_features needs both heads (task='multi'), got task={self.task!r}"
            )
        _positive_int("in_channels", self.in_channels)
        _positive_int("base_width", self.base_width)
        _positive_int("seg_classes", self.seg_classes)
        _positive_int("levels", self.levels)
        if (
            isinstance(self.sinus_classes, bool)
            or not isinstance(self.sinus_classes, int)
            or self.sinus_classes < 0
            or (self.sinus_classes and self.sinus_classes not in SINUS_HEAD_SIZES)
        ):
            raise ValueError(
                "sinus_classes must be 0 (no sinus head), "
                f"{' or '.join(map(str, SINUS_HEAD_SIZES))}, got {self.sinus_classes!r}"
            )
        if self.levels < 2 or self.levels > 7:
            raise ValueError(f"levels must be between 2 and 7, got {self.levels}")
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int):
            raise ValueError(f"num_classes must be an integer ≥ 2, got {self.num_classes!r}")
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be ≥ 2, got {self.num_classes}")
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {self.norm!r}")
        if not isinstance(self.dropout, int | float) or not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        hidden = tuple(self.cls_hidden)
        for h in hidden:
            _positive_int("cls_hidden entries", h)
        object.__setattr__(self, "cls_hidden", hidden)
        object.__setattr__(self, "dropout", float(self.dropout))

    @property
    def divisor(self) -> int:
        """Each block side must be a multiple of this (``2**(levels-1)`` poolings)."""
        return 2 ** (self.levels - 1)

    @property
    def has_seg(self) -> bool:
        """Whether the network has the decoder and segmentation head."""
        return self.task in ("multi", "seg")

    @property
    def has_cls(self) -> bool:
        """Whether the network has the classification head."""
        return self.task in ("multi", "cls")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (the manifest's ``architecture``)."""
        d = asdict(self)
        d["cls_hidden"] = list(self.cls_hidden)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NetworkConfig:
        """Rebuild from :meth:`to_dict` output; raises ValueError/TypeError when invalid."""
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown architecture keys {sorted(unknown)}")
        d = dict(data)
        if "cls_hidden" in d:
            d["cls_hidden"] = tuple(d["cls_hidden"])
        return cls(**d)


@dataclass(frozen=True, slots=True)
class PreprocessConfig:
    """How a CT becomes the network's input block (recorded in the manifest).

    The CT is resampled (trilinear, after block-averaging to the target resolution against
    aliasing) onto an LPS-aligned grid of isotropic ``spacing_mm`` and ``block_shape``
    voxels — axes ``[superior (+z), posterior (+y), left (+x)]`` — centred on the located
    sinus region; HU are clipped to ``hu_window`` and mapped linearly onto [-1, 1].

    Attributes
    ----------
    spacing_mm:
        Isotropic voxel size of the block in mm.
    block_shape:
        Block size in voxels along ``(z, y, x)``; each a multiple of the network's divisor.
    hu_window:
        ``(low, high)`` HU clip window, mapped to ``[-1, 1]``.
    outside_hu:
        HU assumed outside the CT's field of view (air).
    patch_shape:
        ``None``: the network sees the whole block in training and at inference. Otherwise
        a sub-block ``(z, y, x)``: training uses random patches of this size cut from the
        block (more, cheaper steps on a CPU), the segmentation heads run on the whole block
        at inference (the network is fully convolutional), and the classification head
        (DLR-score) runs on the central patch, the field of view it was trained on.
    """

    spacing_mm: float = 2.0
    block_shape: tuple[int, int, int] = (48, 64, 64)
    hu_window: tuple[float, float] = (-1000.0, 1000.0)
    outside_hu: float = -1000.0
    patch_shape: tuple[int, int, int] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.spacing_mm, int | float) or not 0.2 <= float(self.spacing_mm) <= 8:
            raise ValueError(f"spacing_mm must be in [0.2, 8] mm, got {self.spacing_mm!r}")
        shape = tuple(self.block_shape)
        if len(shape) != 3:
            raise ValueError(f"block_shape must have 3 entries (z, y, x), got {shape!r}")
        for s in shape:
            _positive_int("block_shape entries", s)
            if s < 8 or s > 512:
                raise ValueError(f"block_shape entries must be in [8, 512], got {shape!r}")
        lo, hi = (float(v) for v in self.hu_window)
        if not lo < hi:
            raise ValueError(
                f"hu_window must be (low, high) with low < high, got {self.hu_window!r}"
            )
        if self.patch_shape is not None:
            patch = tuple(int(v) for v in self.patch_shape)
            if len(patch) != 3 or any(p < 8 or p > b for p, b in zip(patch, shape, strict=True)):
                raise ValueError(
                    f"patch_shape must be 3 sides of at least 8 voxels and at most the block "
                    f"{shape}, got {self.patch_shape!r}"
                )
            object.__setattr__(self, "patch_shape", patch)
        object.__setattr__(self, "spacing_mm", float(self.spacing_mm))
        object.__setattr__(self, "block_shape", shape)
        object.__setattr__(self, "hu_window", (lo, hi))
        object.__setattr__(self, "outside_hu", float(self.outside_hu))

    @property
    def extent_mm(self) -> tuple[float, float, float]:
        """Physical size of the block along (z, y, x)."""
        return tuple(n * self.spacing_mm for n in self.block_shape)  # type: ignore[return-value]

    def check_divisible(self, divisor: int) -> None:
        """Raise ValueError unless every block (and patch) side is a multiple of ``divisor``."""
        for name, shape in (("block_shape", self.block_shape), ("patch_shape", self.patch_shape)):
            if shape is not None and any(s % divisor for s in shape):
                raise ValueError(
                    f"{name} {shape} must be a multiple of {divisor} on every axis "
                    "(2**(levels-1) for the network's poolings)"
                )

    def central_patch(self) -> tuple[slice, slice, slice]:
        """Slices of the block that hold the central patch (the whole block without one)."""
        if self.patch_shape is None:
            return (slice(None), slice(None), slice(None))
        return tuple(  # type: ignore[return-value]
            slice((b - p) // 2, (b - p) // 2 + p)
            for b, p in zip(self.block_shape, self.patch_shape, strict=True)
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (the manifest's ``preprocessing``)."""
        return {
            "spacing_mm": self.spacing_mm,
            "block_shape": list(self.block_shape),
            "patch_shape": None if self.patch_shape is None else list(self.patch_shape),
            "block_axes": ["superior (+z)", "posterior (+y)", "left (+x)"],
            "hu_window": list(self.hu_window),
            "normalisation": "clip HU to hu_window, map linearly onto [-1, 1]",
            "resampling": "block-average to ~spacing_mm, then trilinear in LPS space",
            "outside_hu": self.outside_hu,
            "locate": "sinusapp.model.preprocess.locate_sinus_region v1 "
            "(enclosed air within ~6 mm of bone, near the midline; block centred on it)",
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreprocessConfig:
        """Rebuild from :meth:`to_dict` output (descriptive keys are ignored)."""
        return cls(
            spacing_mm=data["spacing_mm"],
            block_shape=tuple(data["block_shape"]),  # type: ignore[arg-type]
            hu_window=tuple(data["hu_window"]),  # type: ignore[arg-type]
            outside_hu=data.get("outside_hu", -1000.0),
            patch_shape=(None if data.get("patch_shape") is None else tuple(data["patch_shape"])),
        )


@dataclass(frozen=True, slots=True)
class Postprocessing:
    """How the lesion probability on the block becomes the mask (the manifest's
    ``postprocessing``; chosen on a validation split, never on the test cohort).

    Attributes
    ----------
    lesion_threshold:
        Lesion where the probability is at least this (0.5: the plain sigmoid decision).
    opening:
        Binary opening (6-connected, one block voxel) of the thresholded lesion: drops rims
        one voxel thin, which on real CT is the partial-volume edge of normal mucosa.
    min_component_vox:
        Lesion components smaller than this many block voxels are dropped (0: keep all).
    mirror_average:
        Average the lesion probability with that of the left-right mirrored block, mirrored
        back (test-time augmentation: a second network pass; the DLR-score and the sinus head
        are left as they are). On real anatomy this halves the false lesion on healthy
        sinuses at the same threshold.
    grow_mm:
        After mapping back to the CT grid, grow the lesion by up to this distance (mm) into
        CT voxels of soft-tissue density (HU ≥ ``grow_min_hu``) that lie inside the model's
        sinus cavities (its sinus head), connected to the lesion (0: no growth). The network
        sees the CT at ``spacing_mm``; this puts the lesion edge where the CT's own finer grid
        shows it, and it never leaves the cavities nor enters air. Needs a sinus head.
    grow_min_hu:
        The HU a voxel needs to be grown into: well above partial-volume air (-1000 HU air
        and about 40 HU soft tissue have their half-way point near -480).
    grow_min_probability:
        With ``grow_mm``: also grow into voxels outside the sinus head's cavities where the
        lesion probability interpolated onto the CT is at least this (a hysteresis below
        ``lesion_threshold``; the same HU and distance limits). ``None``: cavities only.
    grow_cavity_probability:
        With ``grow_mm``: the cavities the lesion may grow into are where the sinus head's
        probability of any cavity (one minus its background's, interpolated onto the CT)
        reaches this, not only its labels (a class at ≥ 0.5). Where disease fills a cavity
        to its wall the head is unsure of the cavity's last voxel, which the labels then
        leave out; a lower floor takes it in. ``None``: the labels.
    sinus_component_mm:
        Each class of the sinus head's labels keeps its largest connected component on the CT
        grid and the components within this distance of it (a box neighbourhood: along each
        axis, rounded up to whole CT voxels); the rest is dropped. A maxillary sinus or nasal
        cavity is one cavity; on real heads the head's stray pieces of a class lie in the
        temporal fossa or cheek, 20-35 mm from the sinus, and would count in that
        sinus's volume and opacification. The lesion still grows into them (``grow_mm``):
        the cut says which sinus a voxel counts for, not whether the head saw a cavity
        there (it reads a diseased sphenoid as stray "maxillary" pieces). ``None``: the
        labels as the head gives them. Needs a sinus head.
    drop_stray_lesion:
        With ``sinus_component_mm``: also drop every lesion component near (the same distance)
        a piece that was cut, near no kept label and wholly lateral of the kept labels (no
        sinus lies lateral of the maxillary sinuses). A lesion near no label at all is kept
        (a 4-class head does not label the ethmoid, frontal and sphenoid sinuses).
    lesion_within_mm:
        Lesion components (on the CT grid, after the growth) without a voxel within this
        distance of the sinus head's labels (after ``sinus_component_mm``) are dropped:
        disease lies in a sinus or the nasal cavity. For a head that labels every sinus
        (``--sinus-upper``); with one that does not it drops the upper sinuses' lesion.
        ``None``: every component is kept. With no label at all the lesion is kept as it is
        (the input gate reports "no sinus cavity found").
    """

    lesion_threshold: float = 0.5
    opening: bool = False
    min_component_vox: int = 0
    mirror_average: bool = False
    grow_mm: float = 0.0
    grow_min_hu: float = -300.0
    grow_min_probability: float | None = None
    grow_cavity_probability: float | None = None
    sinus_component_mm: float | None = None
    drop_stray_lesion: bool = False
    lesion_within_mm: float | None = None

    def __post_init__(self) -> None:
        t = self.lesion_threshold
        if isinstance(t, bool) or not isinstance(t, int | float) or not 0.0 < float(t) < 1.0:
            raise ValueError(f"lesion_threshold must be in (0, 1), got {t!r}")
        if not isinstance(self.opening, bool):
            raise ValueError(f"opening must be true or false, got {self.opening!r}")
        v = self.min_component_vox
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"min_component_vox must be an integer ≥ 0, got {v!r}")
        if not isinstance(self.mirror_average, bool):
            raise ValueError(f"mirror_average must be true or false, got {self.mirror_average!r}")
        g = self.grow_mm
        if isinstance(g, bool) or not isinstance(g, int | float) or not 0.0 <= float(g) <= 10.0:
            raise ValueError(f"grow_mm must be a distance in mm from 0 to 10, got {g!r}")
        h = self.grow_min_hu
        if isinstance(h, bool) or not isinstance(h, int | float) or not -1000.0 < float(h) < 300.0:
            raise ValueError(
                f"grow_min_hu must be between -1000 (air) and 300 (bone) HU, got {h!r}"
            )
        q = self.grow_min_probability
        if q is not None:
            if (
                isinstance(q, bool)
                or not isinstance(q, int | float)
                or not 0.0 < float(q) < float(t)
            ):
                raise ValueError(
                    f"grow_min_probability must be null or between 0 and lesion_threshold "
                    f"({float(t)}), got {q!r}"
                )
            object.__setattr__(self, "grow_min_probability", float(q))
        c = self.grow_cavity_probability
        if c is not None:
            if isinstance(c, bool) or not isinstance(c, int | float) or not 0.0 < float(c) < 1.0:
                raise ValueError(f"grow_cavity_probability must be null or in (0, 1), got {c!r}")
            object.__setattr__(self, "grow_cavity_probability", float(c))
        if not isinstance(self.drop_stray_lesion, bool):
            raise ValueError(
                f"drop_stray_lesion must be true or false, got {self.drop_stray_lesion!r}"
            )
        if self.drop_stray_lesion and self.sinus_component_mm is None:
            raise ValueError(
                "drop_stray_lesion needs sinus_component_mm (the pieces it cuts are where "
                "the stray lesion lies): set both, or neither"
            )
        for name in ("sinus_component_mm", "lesion_within_mm"):
            d = getattr(self, name)
            if d is None:
                continue
            if isinstance(d, bool) or not isinstance(d, int | float) or not 0.0 < float(d) <= 30.0:
                raise ValueError(
                    f"{name} must be null or a distance in mm above 0 and at most 30, got {d!r}"
                )
            object.__setattr__(self, name, float(d))
        object.__setattr__(self, "lesion_threshold", float(t))
        object.__setattr__(self, "grow_mm", float(g))
        object.__setattr__(self, "grow_min_hu", float(h))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (the manifest's ``postprocessing``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Postprocessing:
        """Rebuild from :meth:`to_dict` output; ``None`` (older bundles) gives the defaults."""
        if not data:
            return cls()
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown postprocessing keys {sorted(unknown)}")
        return cls(**data)

    def apply(self, probability: Any) -> Any:
        """The lesion probability with the voxels that the post-processing removes set to 0.

        Only voxels at or above ``lesion_threshold`` that the opening or the component filter
        drops are zeroed; every other voxel keeps its probability. The result thresholded at
        ``lesion_threshold`` (as :func:`map_back` does after trilinear interpolation) is the
        mask. Zeroing the sub-threshold voxels too would pull the interpolated probability
        down at every lesion edge and shrink each kept lesion by a fraction of a block voxel
        (measured on the real-anatomy validation crops: median Dice 0.73 -> 0.67 at 0.7).
        """
        import numpy as np
        from scipy import ndimage

        prob = np.asarray(probability, np.float32)
        if not self.opening and not self.min_component_vox:
            return prob
        keep = prob >= self.lesion_threshold
        if self.opening:
            keep = ndimage.binary_opening(keep, structure=ndimage.generate_binary_structure(3, 1))
        if self.min_component_vox and keep.any():
            lab, n = ndimage.label(keep)
            sizes = np.bincount(lab.ravel(), minlength=n + 1)
            big = sizes >= self.min_component_vox
            big[0] = False
            keep = big[lab]
        removed = (prob >= self.lesion_threshold) & ~keep
        return np.where(removed, np.float32(0.0), prob)
