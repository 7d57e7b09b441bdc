"""List the patients, studies and series in a folder, a file or a DICOMDIR, with each series
ranked as a candidate for the sinus analysis (score and reasons), its geometry findings, and
the files that were skipped (with why). Reads headers only; a second scan of an unchanged
folder takes them from the catalogue (path, size and modification time unchanged).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from sinusapp.dicom.scan import ScanResult

__all__ = ["add_arguments", "format_table", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="a DICOM file, a folder (searched recursively), or a DICOMDIR")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--all-skipped", action="store_true", help="list every skipped file (default: the first 20)"
    )
    parser.add_argument(
        "--reread",
        action="store_true",
        help="read every header again (default: unchanged files come from the catalogue)",
    )


def _fmt(v: object, width: int) -> str:
    s = "" if v is None else str(v)
    return (s if len(s) <= width else s[: width - 1] + "…").ljust(width)


def format_table(result: ScanResult, *, all_skipped: bool = False) -> str:
    """Render a scan as a readable text table."""
    lines: list[str] = []
    n_series = len(result.series)
    lines.append(
        f"{result.root}  ({result.source}; {len(result.patients)} patient(s), "
        f"{n_series} series, {len(result.skipped)} skipped item(s))"
    )
    for p in result.patients:
        lines.append("")
        lines.append(
            f"Patient {p.patient_name or '(no name)'}  ID {p.patient_id or '-'}  "
            f"born {p.birth_date or '-'}  sex {p.sex or '-'}"
        )
        for st in p.studies:
            lines.append(
                f"  Study {st.study_date or '-'}  {st.description or '(no description)'}  "
                f"accession {st.accession_number or '-'}"
            )
            lines.append(
                "    "
                + "  ".join(
                    [
                        _fmt("", 2),
                        _fmt("#", 5),
                        _fmt("description", 26),
                        _fmt("mod", 4),
                        _fmt("images", 6),
                        _fmt("thick", 6),
                        _fmt("kernel", 8),
                        _fmt("score", 5),
                    ]
                )
                + "  reasons"
            )
            for s in st.series:
                mark = "=>" if s.proposed else ("  " if s.candidate.eligible else " x")
                thick = f"{s.slice_thickness_mm:g}" if s.slice_thickness_mm else "-"
                score = f"{s.candidate.score:.0f}" if s.candidate.eligible else "-"
                desc = s.description or (s.kind if s.kind != "image" else "(no description)")
                lines.append(
                    "    "
                    + "  ".join(
                        [
                            _fmt(mark, 2),
                            _fmt(s.series_number, 5),
                            _fmt(desc, 26),
                            _fmt(s.modality, 4),
                            _fmt(s.n_frames or s.n_instances, 6),
                            _fmt(thick, 6),
                            _fmt(s.convolution_kernel or "-", 8),
                            _fmt(score, 5),
                        ]
                    )
                    + "  "
                    + "; ".join(s.candidate.reasons)
                )
                for f in s.findings:
                    lines.append(f"          [{f.severity}] {f.code}: {f.message}")
    proposed = result.proposed
    lines.append("")
    if proposed:
        lines.append(
            f"Proposed for analysis: series {proposed.series_number} "
            f"'{proposed.description or '(no description)'}' ({proposed.series_uid})"
        )
    else:
        lines.append("No series is suitable for the sinus analysis (a 3-D axial CT is needed).")
    if result.skipped:
        lines.append("")
        lines.append(f"Skipped ({len(result.skipped)}):")
        shown = result.skipped if all_skipped else result.skipped[:20]
        for sk in shown:
            lines.append(f"  {sk.path}: {sk.reason}")
        if len(shown) < len(result.skipped):
            lines.append(f"  … and {len(result.skipped) - len(shown)} more (--all-skipped)")
    return "\n".join(lines)


def run(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    from sinusapp.dicom.catalogue import open_header_cache
    from sinusapp.dicom.scan import scan

    stream = out or sys.stdout
    cache = None if getattr(args, "reread", False) else open_header_cache()
    result = scan(args.path, cache=cache)
    if args.json:
        json.dump(result.to_dict(), stream, indent=2, ensure_ascii=False)
        stream.write("\n")
    else:
        stream.write(format_table(result, all_skipped=args.all_skipped) + "\n")
    return 0
