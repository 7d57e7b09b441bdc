"""Model bundles: a folder with ``weights.safetensors``, ``manifest.json`` and ``MODEL_CARD.md``.

A bundle is what the app loads and what ``sinusapp train`` writes. The weights are safetensors
(never a pickle: a bundle from elsewhere cannot execute code), and the manifest records
everything needed to use them correctly — architecture, preprocessing, label meaning — plus
provenance and metrics, and the sha256 of the weights: :func:`load_bundle` refuses a bundle
whose weights do not match it, or whose manifest is invalid, with a
:class:`~sinusapp.errors.BundleError` that says what is wrong and what to do.

The bundle is trusted only whole: the manifest carries ``bundle_sha256``, a digest of the
manifest itself (every other field, canonical JSON), the model card and, through the
manifest's ``weights.sha256``, the weights. :func:`save_bundle` computes it; :func:`load_bundle`
verifies it on every load (also when it skips hashing the weights), so an edited
``trained_on_synthetic``, block shape or model card is refused, and so is a bundle without the
digest. :func:`seal_bundle` re-seals a bundle folder whose weights still match its manifest
(after a deliberate manifest change by whoever owns the bundle). The digest detects
accidental and casual changes; it is not a signature (whoever can write the folder can
re-seal it).

Reading a manifest does not import torch; :meth:`Bundle.load_state_dict` does.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sinusapp._version import __version__
from sinusapp.errors import BundleError, OutputError
from sinusapp.model.config import NetworkConfig, Postprocessing, PreprocessConfig

if TYPE_CHECKING:
    import torch

__all__ = [
    "BUNDLE_FORMAT",
    "BUNDLE_FORMAT_VERSION",
    "BUNDLE_SHA256_KEY",
    "LABELS",
    "MANIFEST_NAME",
    "MIN_BLOCK_EXTENT_MM",
    "MIN_BLOCK_VOXELS",
    "MODEL_CARD_NAME",
    "WEIGHTS_NAME",
    "Bundle",
    "bundle_digest",
    "check_field_of_view",
    "lesion_assessed_regions",
    "load_bundle",
    "save_bundle",
    "seal_bundle",
    "set_postprocessing",
    "sha256_file",
]

log = logging.getLogger(__name__)

BUNDLE_FORMAT = "sinusapp-model-bundle"
BUNDLE_FORMAT_VERSION = 1
WEIGHTS_NAME = "weights.safetensors"
MANIFEST_NAME = "manifest.json"
MODEL_CARD_NAME = "MODEL_CARD.md"
#: Manifest key of the whole-bundle digest (see :func:`bundle_digest`).
BUNDLE_SHA256_KEY = "bundle_sha256"
LABELS: dict[str, Any] = {
    "segmentation": {
        "0": "background",
        "1": "lesion: soft-tissue disease of the nasal cavity and paranasal sinuses "
        "(thickened mucosa, polyps, fluid, opacification)",
    },
    "segmentation_output": "sigmoid of one logit per voxel; the lesion mask is made from it "
    "as the manifest's postprocessing says (threshold, smallest component, mirrored pass, "
    "growth on the CT grid)",
    "classification": {"0": "no recurrence", "1": "recurrence after endoscopic sinus surgery"},
    "dlr_score": "softmax probability of class 1 (the paper's deep learning radiomic score)",
}


def _labels(network: NetworkConfig) -> dict[str, Any]:
    """The manifest's ``labels``: :data:`LABELS`, plus the sinus head's classes if it has one."""
    if not network.sinus_classes:
        return LABELS
    from sinusapp.model.config import sinus_head_regions

    return {
        **LABELS,
        "sinus": {str(i): r for i, r in enumerate(sinus_head_regions(network.sinus_classes))},
        "sinus_output": "softmax over the sinus classes; a CT voxel gets a class where its "
        "interpolated probability is >= 0.5",
    }


#: The smallest input block a bundle may have, in mm on every axis. An adult maxillary sinus
#: is about 35-40 mm high and deep; a smaller block cannot hold one sinus with its walls, so
#: its lesion volume and DLR-score would describe a fragment of the region (an 8x8x8 block at
#: 1 mm, which the writer used to accept, saw an 8-mm cube). The bundled model's block is
#: 80 x 100 x 120 mm.
MIN_BLOCK_EXTENT_MM = 48.0
#: The fewest voxels a block may have on any axis (fewer cannot delineate a mucosal lining
#: of a few mm at the field of view above).
MIN_BLOCK_VOXELS = 16


def check_field_of_view(preprocess: PreprocessConfig) -> None:
    """Raise ValueError unless the block is at least :data:`MIN_BLOCK_VOXELS` voxels and
    :data:`MIN_BLOCK_EXTENT_MM` mm on every axis (the writer and the reader both check it)."""
    shape = tuple(preprocess.block_shape)
    extent = tuple(preprocess.extent_mm)
    if min(shape) < MIN_BLOCK_VOXELS or min(extent) < MIN_BLOCK_EXTENT_MM:
        raise ValueError(
            f"block_shape {list(shape)} at {preprocess.spacing_mm:g} mm covers "
            f"{' x '.join(f'{e:g}' for e in extent)} mm; a sinus model needs at least "
            f"{MIN_BLOCK_VOXELS} voxels and {MIN_BLOCK_EXTENT_MM:g} mm on every axis"
        )


_REQUIRED = (
    "format",
    "format_version",
    "name",
    "version",
    "architecture",
    "preprocessing",
    "weights",
)
_HINT = "Use a bundle written by `sinusapp train`, or reinstall SinusApp for the bundled model."


def _read_manifest(folder: Path) -> dict[str, Any]:
    """The bundle folder's manifest as a dict (after checking that its files are there)."""
    mpath = folder / MANIFEST_NAME
    for p in (mpath, folder / WEIGHTS_NAME):
        if not p.is_file():
            raise BundleError(f"The model bundle lacks {p.name}.", path=folder, hint=_HINT)
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _invalid(mpath, f"not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict):
        raise _invalid(mpath, "the top level is not a JSON object")
    return manifest


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def bundle_digest(manifest: dict[str, Any], model_card: bytes | None) -> str:
    """Hex sha256 of a whole bundle: its manifest (without :data:`BUNDLE_SHA256_KEY`, as
    canonical JSON, which includes ``weights.sha256``) and its model card (``None`` when the
    bundle has none)."""
    body = {k: v for k, v in manifest.items() if k != BUNDLE_SHA256_KEY}
    h = hashlib.sha256()
    h.update(f"{BUNDLE_FORMAT}/{BUNDLE_FORMAT_VERSION}\0".encode())
    h.update(json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode())
    h.update(b"\0card\0" if model_card is not None else b"\0nocard\0")
    h.update(model_card or b"")
    return h.hexdigest()


def _read_card(folder: Path) -> bytes | None:
    card = folder / MODEL_CARD_NAME
    try:
        return card.read_bytes() if card.is_file() else None
    except OSError as exc:
        raise BundleError(
            f"The model bundle's {MODEL_CARD_NAME} cannot be read: {exc}", path=card, hint=_HINT
        ) from exc


def _write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    from sinusapp.atomic import write_text_atomic

    write_text_atomic(
        json.dumps(manifest, indent=2) + "\n", folder / MANIFEST_NAME, what="the bundle manifest"
    )


@dataclass(frozen=True, slots=True)
class Bundle:
    """A validated model bundle (checksum verified when loaded).

    Attributes
    ----------
    path:
        The bundle folder.
    manifest:
        The parsed ``manifest.json``.
    network:
        The network's hyperparameters.
    preprocess:
        How to build the network's input.
    """

    path: Path
    manifest: dict[str, Any]
    network: NetworkConfig
    preprocess: PreprocessConfig

    @property
    def name(self) -> str:
        """The model's name (manifest ``name``)."""
        return str(self.manifest["name"])

    @property
    def version(self) -> str:
        """The model's version (manifest ``version``)."""
        return str(self.manifest["version"])

    @property
    def postprocessing(self) -> Postprocessing:
        """How the lesion probability becomes the mask (defaults for bundles without it)."""
        return Postprocessing.from_dict(self.manifest.get("postprocessing"))

    @property
    def lesion_assessed_regions(self) -> frozenset[str] | None:
        """Regions whose opacification this model's lesion head measures (manifest
        ``lesion_regions.assessed``; ``None``: all of them).

        A bundle declares it when its lesion head learned disease in some regions only: the
        bundled model learned real-anatomy disease in the maxillary sinuses and the nasal
        cavity, so the ethmoid, frontal and sphenoid sinuses are shown as not assessed
        (:func:`sinusapp.imaging.quantify.without_unassessed_opacification`).
        """
        return lesion_assessed_regions(self.manifest)

    @property
    def sha256(self) -> str:
        """sha256 of the weights file."""
        return str(self.manifest["weights"]["sha256"])

    @property
    def weights_path(self) -> Path:
        """Path of the safetensors weights."""
        return self.path / WEIGHTS_NAME

    def load_state_dict(self, *, device: str = "cpu") -> dict[str, torch.Tensor]:
        """Load the weights (imports torch / safetensors)."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(self.weights_path), device=device)
        except (SafetensorError, OSError, ValueError) as exc:
            raise BundleError(
                f"The weights of model bundle '{self.name}' cannot be read: {exc}",
                path=self.weights_path,
                hint=_HINT,
            ) from exc


def lesion_assessed_regions(manifest: Mapping[str, Any]) -> frozenset[str] | None:
    """``lesion_regions.assessed`` of a manifest as a set of region names (``None`` when the
    manifest has no ``lesion_regions``: every region is assessed).

    Raises
    ------
    ValueError
        It is not a list of :data:`~sinusapp.imaging.quantify.REGIONS` names.
    """
    from sinusapp.imaging.quantify import REGIONS

    spec = manifest.get("lesion_regions")
    if spec is None:
        return None
    if not isinstance(spec, Mapping):
        raise ValueError(
            'lesion_regions must be an object like {"assessed": [region names], "why": "..."}, '
            f"got {spec!r} (docs/model.md, bundle format)"
        )
    names = spec.get("assessed")
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"lesion_regions.assessed must be a list of region names, got {names!r}")
    unknown = sorted(set(names) - set(REGIONS))
    if unknown:
        raise ValueError(
            f"lesion_regions.assessed names unknown regions {unknown}; known: {list(REGIONS)}"
        )
    return frozenset(names)


def _invalid(path: Path, what: str) -> BundleError:
    return BundleError(f"The model bundle's manifest is invalid: {what}.", path=path, hint=_HINT)


def load_bundle(path: str | Path, *, verify_weights: bool = True) -> Bundle:
    """Read, validate and checksum-verify a bundle folder.

    ``verify_weights=False`` skips hashing the weights, for callers that only describe the
    bundle (the GUI's model statement at start-up); anything that loads the weights verifies.

    Raises
    ------
    BundleError
        The folder or a file is missing, the manifest is not valid JSON or lacks / mis-types a
        field, the format version is unknown, or the weights' sha256 does not match.
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise BundleError(
            "This is a file, not a model bundle folder (a folder with manifest.json, "
            "weights.safetensors and MODEL_CARD.md).",
            path=folder,
            hint="Give the bundle's folder, not one of its files.",
        )
    if not folder.is_dir():
        raise BundleError("The model bundle folder does not exist.", path=folder, hint=_HINT)
    mpath = folder / MANIFEST_NAME
    wpath = folder / WEIGHTS_NAME
    manifest = _read_manifest(folder)
    missing = [k for k in _REQUIRED if k not in manifest]
    if missing:
        raise _invalid(mpath, f"missing field(s) {missing}")
    if manifest["format"] != BUNDLE_FORMAT:
        raise _invalid(mpath, f"format is {manifest['format']!r}, expected {BUNDLE_FORMAT!r}")
    if manifest["format_version"] != BUNDLE_FORMAT_VERSION:
        raise BundleError(
            f"The model bundle has format version {manifest['format_version']!r}; this SinusApp "
            f"({__version__}) reads version {BUNDLE_FORMAT_VERSION}.",
            path=mpath,
            hint="Use a SinusApp version that matches the bundle, or retrain the bundle.",
        )
    try:
        network = NetworkConfig.from_dict(manifest["architecture"])
        preprocess = PreprocessConfig.from_dict(manifest["preprocessing"])
        preprocess.check_divisible(network.divisor)
        check_field_of_view(preprocess)
        Postprocessing.from_dict(manifest.get("postprocessing"))
        lesion_assessed_regions(manifest)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise _invalid(
            mpath, f"architecture / pre- or postprocessing / lesion_regions: {exc}"
        ) from exc
    weights = manifest["weights"]
    if not isinstance(weights, dict) or not isinstance(weights.get("sha256"), str):
        raise _invalid(mpath, "weights.sha256 is missing")
    sealed = manifest.get(BUNDLE_SHA256_KEY)
    if not isinstance(sealed, str):
        raise BundleError(
            f"The model bundle's manifest has no {BUNDLE_SHA256_KEY} (the digest of the whole "
            "bundle), so its manifest and model card cannot be verified.",
            path=mpath,
            hint="Use a bundle written by this SinusApp's `sinusapp train`; whoever owns the "
            "bundle can re-seal it with sinusapp.model.bundle.seal_bundle(folder).",
        )
    actual_bundle = bundle_digest(manifest, _read_card(folder))
    if actual_bundle != sealed:
        raise BundleError(
            f"The model bundle's manifest or model card does not match its {BUNDLE_SHA256_KEY} "
            f"({actual_bundle[:16]}… instead of {sealed[:16]}…): it was modified after the "
            "bundle was written.",
            path=mpath,
            hint="Do not use this bundle; copy it again from its source or retrain it.",
        )
    actual = sha256_file(wpath) if verify_weights else weights["sha256"]
    if actual != weights["sha256"]:
        raise BundleError(
            f"The model bundle's weights do not match its manifest (sha256 {actual[:16]}… "
            f"instead of {weights['sha256'][:16]}…): the file is corrupted or was modified.",
            path=wpath,
            hint="Do not use this bundle; copy it again from its source or retrain it.",
        )
    return Bundle(path=folder, manifest=manifest, network=network, preprocess=preprocess)


def save_bundle(
    folder: str | Path,
    *,
    state_dict: dict[str, torch.Tensor],
    network: NetworkConfig,
    preprocess: PreprocessConfig,
    name: str,
    version: str,
    training: dict[str, Any],
    metrics: dict[str, Any],
    model_card: str,
    trained_on_synthetic: bool = True,
    postprocessing: Postprocessing | None = None,
    lesion_regions: Mapping[str, Any] | None = None,
) -> Bundle:
    """Write a bundle folder (weights, manifest with their sha256, model card) and reload it.

    ``model_card`` may contain ``{sha256}``, replaced by the weights' checksum.
    ``trained_on_synthetic`` is shown in reports ("model trained on synthetic data").
    ``lesion_regions``: the manifest's ``{"assessed": [region, ...], "why": "..."}`` (see
    :meth:`Bundle.lesion_assessed_regions`); ``None``: every region is assessed.

    Raises
    ------
    BundleError
        The block is smaller than :func:`check_field_of_view` allows, or ``lesion_regions``
        names no known region (nothing is written).
    OutputError
        The folder cannot be written.
    """
    from safetensors.torch import save_file

    try:
        check_field_of_view(preprocess)
    except ValueError as exc:
        raise BundleError(
            f"Refusing to write a model bundle with this input block: {exc}.",
            path=folder,
            hint="Train with a larger --block or --spacing (the default is 48,64,64 at 2 mm).",
        ) from exc
    if lesion_regions is not None:
        try:
            lesion_assessed_regions({"lesion_regions": lesion_regions})
        except ValueError as exc:
            raise BundleError(
                f"Refusing to write a model bundle with these lesion_regions: {exc}.",
                path=folder,
                hint='give {"assessed": [region names], "why": "..."} (docs/model.md)',
            ) from exc
    out = Path(folder)
    try:
        out.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
        tmp = out / (WEIGHTS_NAME + ".tmp")
        # One metadata key only: safetensors stores metadata in a hash map, so several keys
        # come out in random order and the same weights would get different checksums.
        save_file(tensors, str(tmp), metadata={"format": BUNDLE_FORMAT})
        os.replace(tmp, out / WEIGHTS_NAME)
        os.chmod(out / WEIGHTS_NAME, 0o644)  # safetensors writes 0600; bundles are shared
        digest = sha256_file(out / WEIGHTS_NAME)
        manifest = {
            "format": BUNDLE_FORMAT,
            "format_version": BUNDLE_FORMAT_VERSION,
            "name": name,
            "version": version,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "software_version": __version__,
            "intended_use": "research and demonstration; not for clinical use until retrained "
            "and validated on local data",
            "trained_on_synthetic": bool(trained_on_synthetic),
            "architecture_class": "sinusapp.model.network.UNet3D",
            "architecture": network.to_dict(),
            "preprocessing": preprocess.to_dict(),
            "postprocessing": (postprocessing or Postprocessing()).to_dict(),
            "labels": _labels(network),
            **({} if lesion_regions is None else {"lesion_regions": dict(lesion_regions)}),
            "training": training,
            "metrics": metrics,
            "weights": {
                "file": WEIGHTS_NAME,
                "sha256": digest,
                "n_tensors": len(tensors),
                "n_parameters": int(sum(t.numel() for t in tensors.values())),
            },
        }
        card = model_card.replace("{sha256}", digest).encode("utf-8")
        (out / MODEL_CARD_NAME).write_bytes(card)
        manifest[BUNDLE_SHA256_KEY] = bundle_digest(manifest, card)
        _write_manifest(out, manifest)
    except OSError as exc:
        raise OutputError(
            f"Cannot write the model bundle: {exc}", path=out, hint="Choose a writable folder."
        ) from exc
    log.info("model bundle written to %s (sha256 %s)", out, digest)
    return load_bundle(out)


def seal_bundle(folder: str | Path) -> Bundle:
    """Re-seal an existing bundle folder: write its ``bundle_sha256`` and reload it.

    For the bundle's owner after a deliberate change of the manifest or model card (or for a
    bundle written before the whole-bundle digest existed). The weights must still match the
    manifest's ``weights.sha256`` (they are hashed here), so re-sealing never vouches for
    changed weights. Returns the verified :class:`Bundle`.

    Raises
    ------
    BundleError
        The folder is not a bundle, its manifest is not a JSON object, or its weights do not
        match the manifest.
    """
    out = Path(folder)
    wpath = out / WEIGHTS_NAME
    manifest = _read_manifest(out)
    weights = manifest.get("weights")
    expected = weights.get("sha256") if isinstance(weights, dict) else None
    actual = sha256_file(wpath)
    if actual != expected:
        raise BundleError(
            f"The model bundle's weights do not match its manifest (sha256 {actual[:16]}… "
            f"instead of {str(expected)[:16]}…): refusing to seal it.",
            path=wpath,
            hint="Re-write the bundle with save_bundle (sinusapp train) instead.",
        )
    manifest[BUNDLE_SHA256_KEY] = bundle_digest(manifest, _read_card(out))
    _write_manifest(out, manifest)
    log.info("model bundle %s sealed (bundle_sha256 %s)", out, manifest[BUNDLE_SHA256_KEY])
    return load_bundle(out)


def set_postprocessing(folder: str | Path, postprocessing: Postprocessing) -> Bundle:
    """Record ``postprocessing`` in a verified bundle's manifest and re-seal it.

    For the bundle's owner after choosing the lesion post-processing on a validation split
    (``benchmarks/choose_postprocessing.py``). The bundle is verified first, so a tampered
    bundle is never re-sealed. Returns the re-loaded :class:`Bundle`.
    """
    out = Path(folder)
    load_bundle(out)
    manifest = _read_manifest(out)
    manifest["postprocessing"] = postprocessing.to_dict()
    manifest[BUNDLE_SHA256_KEY] = bundle_digest(manifest, _read_card(out))
    _write_manifest(out, manifest)
    log.info("model bundle %s: postprocessing %s", out, postprocessing.to_dict())
    return load_bundle(out)
