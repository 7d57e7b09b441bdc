"""Pack the NasalSeg backgrounds for the lent GPU machine (``../shared`` does not travel).

Writes ``<patient>.npz.xz`` per crop and ``PACK.json`` (:mod:`sinusapp.synth.realanat_pack`)
and prints the pack's size; ``sinusapp synth --real-anatomy OUT`` then renders the cohort from
it. Put OUT in a folder ``.git/info/exclude`` ignores and name it in the device run's
``carry`` (64 MiB in all, with the repository's 18 MB and the wheels). Measured on all 90
crops: 27.6 MB at 1.25 mm with ``--hu-step 4`` (36.4 MB with 1), 68.4 MB at 1.0 mm (1 HU).

Usage::

    python benchmarks/pack_nasalseg.py --out .pack/nasalseg_125 --spacing 1.25
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sinusapp.synth.realanat_pack import write_background_pack  # noqa: E402

log = logging.getLogger("pack_nasalseg")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=REPO.parent / "shared" / "data" / "nasalseg")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--spacing", type=float, default=1.25, help="mm per axis, about (default 1.25)")
    ap.add_argument(
        "--hu-step", type=int, default=4, help="HU stored in multiples of this (default 4)"
    )
    ap.add_argument("--patients", nargs="*", default=None, help="default: every crop")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    m = write_background_pack(
        root=args.root,
        out=args.out,
        spacing_mm=args.spacing,
        hu_step=args.hu_step,
        patients=args.patients,
    )
    log.info(
        "%d backgrounds at %.2f mm: %.1f MB in %s",
        len(m["patients"]),
        m["spacing_mm"],
        m["bytes"] / 1e6,
        args.out,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
