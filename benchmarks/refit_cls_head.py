"""Refit a bundle's classification head on frozen features of its training cases.

A short CPU training can leave the classification head at the prevalence (bundle 2.0.0:
DLR-scores within 0.383-0.385, training cross-entropy at the label entropy) while the
segmentation is useful. This refits only the head, on the features the network computes for
the central patch of each *training* case's cached block (no augmentation): the pooled
bottleneck and, with ``cls_lesion_features``, the lesion-probability summaries. With
``--inputs lesion`` the bottleneck inputs are zeroed and frozen, so the head is a small MLP
of the lesion summaries alone (2 inputs; little room to overfit 240 cases). Settings are
fixed in advance; the held-out and test AUCs are printed for the record, never used to choose.

    python benchmarks/refit_cls_head.py --bundle B --prep WORK/prep_xxx --dataset DS [--write]

``--out DIR`` writes a new bundle there with the refitted head (new weights sha256; the
manifest's ``training.cls_head_refit`` and the model card record what was done).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _auc(y: np.ndarray, s: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, s)) if len(set(y.tolist())) == 2 else float("nan")


def features(model, image: np.ndarray, window) -> np.ndarray:  # type: ignore[no-untyped-def]
    """The classification head's input for one block's central patch (captured by a hook)."""
    import torch

    seen: list[torch.Tensor] = []
    hook = model.cls_head.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    try:
        x = torch.from_numpy(image[window].astype(np.float32))[None, None]
        with torch.no_grad():
            model(x, segment=False)
    finally:
        hook.remove()
    return seen[0][0].numpy()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--prep", type=Path, required=True, help="the training's cached blocks")
    ap.add_argument("--dataset", type=Path, required=True, help="for recurrence and splits")
    ap.add_argument("--inputs", choices=["lesion", "all"], default="lesion")
    ap.add_argument("--epochs", type=int, default=600)
    ap.add_argument(
        "--add-region-features",
        action="store_true",
        help="give the new head the per-region lesion fractions (cls_region_features)",
    )
    ap.add_argument("--out", type=Path, default=None, help="write the refitted bundle here")
    args = ap.parse_args()

    import torch

    from sinusapp.model.bundle import load_bundle, save_bundle
    from sinusapp.model.network import N_LESION_FEATURES, UNet3D

    torch.manual_seed(0)
    torch.set_num_threads(2)
    bundle = load_bundle(args.bundle)
    network = bundle.network
    if args.add_region_features:
        network = dataclasses.replace(network, cls_lesion_features=True, cls_region_features=True)
    model = UNet3D(config=network)
    state = bundle.load_state_dict()
    own = model.state_dict()
    model.load_state_dict(
        {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}, strict=False
    )
    model.eval()
    window = bundle.preprocess.central_patch()
    train_ids = set(bundle.manifest["training"]["case_ids"])
    with open(args.dataset / "clinical.csv", newline="", encoding="utf-8") as fh:
        rows = {r["case_id"]: r for r in csv.DictReader(fh)}
    groups: dict[str, list[tuple[np.ndarray, int]]] = {"train": [], "holdout": [], "test": []}
    for cid, r in sorted(rows.items()):
        f = args.prep / f"{cid}.npz"
        if not f.is_file():
            continue
        if cid in train_ids:
            g = "train"
        elif r.get("cohort") == "test":
            g = "test"
        elif r.get("background_split") == "val":
            g = "holdout"
        else:
            continue
        with np.load(f) as z:
            groups[g].append((features(model, z["image"], window), int(r["recurrence"])))
    print({g: len(v) for g, v in groups.items()}, flush=True)
    xt = torch.tensor(np.stack([f for f, _ in groups["train"]]))
    yt = torch.tensor([y for _, y in groups["train"]])
    head = model.cls_head
    first = head[1]
    n_in = first.in_features
    if args.inputs == "lesion":
        if not model.config.cls_lesion_features:
            raise SystemExit("--inputs lesion needs a bundle with cls_lesion_features")
        keep = torch.zeros(n_in, dtype=torch.bool)
        n_region = network.sinus_classes - 1 if network.cls_region_features else 0
        extra = N_LESION_FEATURES + n_region
        keep[n_in - extra :] = True
    else:
        keep = torch.ones(n_in, dtype=torch.bool)
    for m in head.modules():
        if isinstance(m, torch.nn.Linear):
            m.reset_parameters()
    with torch.no_grad():
        first.weight[:, ~keep] = 0.0
    opt = torch.optim.AdamW(head.parameters(), lr=3e-3, weight_decay=1e-2)
    head.train()
    for _epoch in range(args.epochs):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(head(xt), yt)
        loss.backward()
        first.weight.grad[:, ~keep] = 0.0
        opt.step()
        with torch.no_grad():
            first.weight[:, ~keep] = 0.0
    head.eval()
    result: dict[str, object] = {
        "inputs": args.inputs,
        "epochs": args.epochs,
        "loss": float(loss.detach()),
    }
    for g, v in groups.items():
        if not v:
            continue
        x = torch.tensor(np.stack([f for f, _ in v]))
        with torch.no_grad():
            p = torch.softmax(head(x), 1)[:, 1].numpy()
        y = np.array([y for _, y in v])
        result[g] = {
            "n": len(v),
            "auc": round(_auc(y, p), 3),
            "score_range": [round(float(p.min()), 3), round(float(p.max()), 3)],
        }
    print(json.dumps(result, indent=1), flush=True)
    if args.out is not None:
        m = bundle.manifest
        training = {**m["training"], "cls_head_refit": {**result, "command": " ".join(sys.argv)}}
        card = (bundle.path / "MODEL_CARD.md").read_text(encoding="utf-8")
        card = card.replace(bundle.sha256, "{sha256}") + (
            "\n## Classification head refitted\n"
            "The classification head was refitted on frozen features of the "
            f"{len(groups['train'])} training cases "
            f"(`benchmarks/refit_cls_head.py --inputs {args.inputs}`, settings "
            "fixed in advance: AdamW 3e-3, weight decay 1e-2, "
            f"{args.epochs} full-batch epochs): "
            + ("the lesion summaries only" if args.inputs == "lesion" else "all inputs")
            + (", per-region lesion fractions added. " if args.add_region_features else ". ")
            + f"AUC train {result['train']['auc']}, held-out "
            f"{result.get('holdout', {}).get('auc')}, test {result.get('test', {}).get('auc')} "
            "(the central patch, no augmentation; for the record, not used to choose).\n"
        )
        out = save_bundle(
            args.out,
            state_dict=model.state_dict(),
            network=network,
            preprocess=bundle.preprocess,
            name=str(m["name"]),
            version=str(m["version"]),
            training=training,
            metrics=m["metrics"],
            model_card=card,
            trained_on_synthetic=bool(m.get("trained_on_synthetic", True)),
            postprocessing=bundle.postprocessing,
        )
        print(f"refitted bundle written to {out.path} (weights sha256 {out.sha256})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
