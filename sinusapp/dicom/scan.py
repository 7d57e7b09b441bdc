"""Examine what is under a file, a folder or a DICOMDIR: patients → studies → series, each
series ranked as an analysis candidate with its score, reasons and geometry findings.

This is the *examine* half of 3D Slicer's examine / load split: it reads headers only (in
parallel for large folders), never pixel data, never aborts on a bad file, and proposes the best
series without forcing it — :func:`sinusapp.dicom.load_volume` does the *load*.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sinusapp.dicom.dicomdir import is_dicomdir, read_dicomdir
from sinusapp.dicom.geometry import assess_geometry, frames_of
from sinusapp.dicom.headers import InstanceHeader, SkippedFile, _read_header
from sinusapp.errors import InputError
from sinusapp.findings import Finding

log = logging.getLogger(__name__)

__all__ = [
    "Candidate",
    "HeaderCache",
    "PatientEntry",
    "ScanResult",
    "SeriesEntry",
    "StudyEntry",
    "collect_files",
    "rank_series",
    "read_headers",
    "scan",
]

ProgressFn = Callable[[float, str], None]
_PARALLEL_MIN_FILES = 64
_SKIP_NAMES = {".ds_store", "thumbs.db", "desktop.ini"}

BONE_KERNEL_HINTS = (
    "BONE",
    "H60",
    "H70",
    "H80",
    "H90",
    "B60",
    "B70",
    "B80",
    "BR6",
    "BR7",
    "HR6",
    "HR7",
    "FC30",
    "FC81",
    "YC",
    "YD",
    "D",
    "EDGE",
    "LUNG",
    "SHARP",
    "U90",
    "J70",
)
SOFT_KERNEL_HINTS = (
    "STD",
    "STANDARD",
    "SOFT",
    "H30",
    "H31",
    "B30",
    "B31",
    "BR3",
    "HR3",
    "FC2",
    "UB",
    "UA",
    "FC0",
    "SMOOTH",
    "BRAIN",
)
EXCLUDE_DESCRIPTION_WORDS = (
    "SCOUT",
    "SURVIEW",
    "TOPOGRAM",
    "LOCALIZER",
    "LOCALISER",
    "PILOT",
    "DOSE",
    "SCREEN",
    "SUMMARY",
    "REPORT",
    "PATIENT PROTOCOL",
)


@dataclass(frozen=True, slots=True)
class Candidate:
    """How suitable a series is for the sinus analysis.

    ``eligible`` False means it must not be analysed (``reasons`` says why); otherwise a higher
    ``score`` is better. ``reasons`` are short clinician-readable statements, each prefixed
    with ``+`` or ``−`` when it changed the score.
    """

    eligible: bool
    score: float
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "eligible": self.eligible,
            "score": round(self.score, 1),
            "reasons": list(self.reasons),
        }


@dataclass
class SeriesEntry:
    """One series with the columns a clinician sorts by."""

    series_uid: str
    series_number: int | None
    description: str
    modality: str
    kind: str
    n_instances: int
    n_frames: int
    rows: int
    columns: int
    slice_thickness_mm: float | None
    spacing_mm: float | None
    pixel_spacing_mm: tuple[float, float] | None
    convolution_kernel: str
    image_type: tuple[str, ...]
    body_part: str
    manufacturer: str
    manufacturer_model: str
    transfer_syntaxes: tuple[str, ...]
    files: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    candidate: Candidate = field(default_factory=lambda: Candidate(False, 0.0, ()))
    proposed: bool = False
    referenced_series_uids: tuple[str, ...] = ()

    def to_dict(self, *, with_files: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {
            "series_instance_uid": self.series_uid,
            "series_number": self.series_number,
            "description": self.description,
            "modality": self.modality,
            "kind": self.kind,
            "instances": self.n_instances,
            "frames": self.n_frames,
            "rows": self.rows,
            "columns": self.columns,
            "slice_thickness_mm": self.slice_thickness_mm,
            "slice_spacing_mm": None if self.spacing_mm is None else round(self.spacing_mm, 4),
            "pixel_spacing_mm": list(self.pixel_spacing_mm) if self.pixel_spacing_mm else None,
            "convolution_kernel": self.convolution_kernel,
            "image_type": list(self.image_type),
            "body_part": self.body_part,
            "manufacturer": self.manufacturer,
            "manufacturer_model": self.manufacturer_model,
            "transfer_syntaxes": list(self.transfer_syntaxes),
            "candidate": self.candidate.to_dict(),
            "proposed": self.proposed,
            "findings": [f.to_dict() for f in self.findings],
        }
        if self.referenced_series_uids:
            d["referenced_series_uids"] = list(self.referenced_series_uids)
        if with_files:
            d["files"] = list(self.files)
        return d


@dataclass
class StudyEntry:
    study_uid: str
    study_date: str
    study_time: str
    description: str
    accession_number: str
    series: list[SeriesEntry] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "study_instance_uid": self.study_uid,
            "study_date": self.study_date,
            "study_time": self.study_time,
            "description": self.description,
            "accession_number": self.accession_number,
            "series": [s.to_dict() for s in self.series],
        }


@dataclass
class PatientEntry:
    patient_id: str
    patient_name: str
    birth_date: str
    sex: str
    studies: list[StudyEntry] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "patient_id": self.patient_id,
            "patient_name": self.patient_name,
            "birth_date": self.birth_date,
            "sex": self.sex,
            "studies": [s.to_dict() for s in self.studies],
        }


@dataclass
class ScanResult:
    """Everything found under one path."""

    root: str
    source: str  # "file", "folder" or "dicomdir"
    patients: list[PatientEntry] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    headers: list[InstanceHeader] = field(default_factory=list, repr=False)

    @property
    def series(self) -> list[SeriesEntry]:
        """All series, patient by patient, study by study."""
        return [s for p in self.patients for st in p.studies for s in st.series]

    @property
    def proposed(self) -> SeriesEntry | None:
        """The series proposed for analysis (best eligible candidate), if any."""
        return next((s for s in self.series if s.proposed), None)

    def find_series(self, series_uid: str) -> SeriesEntry | None:
        return next((s for s in self.series if s.series_uid == series_uid), None)

    def headers_of(self, series_uid: str) -> list[InstanceHeader]:
        return [h for h in self.headers if h.series_uid == series_uid]

    def to_dict(self) -> dict[str, Any]:
        proposed = self.proposed
        return {
            "root": self.root,
            "source": self.source,
            "proposed_series_instance_uid": proposed.series_uid if proposed else None,
            "patients": [p.to_dict() for p in self.patients],
            "skipped": [s.to_dict() for s in self.skipped],
        }


# --------------------------------------------------------------------------------------------
# Files


def collect_files(path: str | os.PathLike[str]) -> tuple[str, list[Path], list[SkippedFile]]:
    """List the candidate files under ``path``.

    A DICOMDIR file, or a folder with a DICOMDIR at its root, is read through the directory
    records (missing referenced files become skipped items); any other folder is walked
    recursively.

    Returns ``(source, files, skipped)``.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"'{p}' does not exist", path=p, hint="check the path, or insert the CD")
    if p.is_file():
        if is_dicomdir(p):
            c = read_dicomdir(p)
            return "dicomdir", c.files, list(c.missing)
        return "file", [p], []
    if not p.is_dir():
        return "file", [], [_not_regular(p)]
    for name in ("DICOMDIR", "dicomdir"):
        dd = p / name
        if dd.is_file() and is_dicomdir(dd):
            c = read_dicomdir(dd)
            return "dicomdir", c.files, list(c.missing)
    files: list[Path] = []
    skipped: list[SkippedFile] = []
    for dirpath, dirnames, filenames in os.walk(p):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for fn in sorted(filenames):
            if fn.startswith(".") or fn.lower() in _SKIP_NAMES:
                continue
            f = Path(dirpath) / fn
            try:
                regular = stat.S_ISREG(os.stat(f).st_mode)
            except OSError as exc:
                skipped.append(SkippedFile(str(f), f"cannot open file: {exc.strerror}", "missing"))
                continue
            if regular:
                files.append(f)
            else:
                skipped.append(_not_regular(f))
    return "folder", files, skipped


def _not_regular(path: Path) -> SkippedFile:
    """A FIFO, device or socket: never opened (reading a FIFO blocks forever)."""
    return SkippedFile(
        str(path),
        "not a regular file (a pipe, device or socket); not read",
        "not_regular",
    )


def _read_chunk(paths: list[str]) -> list[InstanceHeader | SkippedFile]:
    dirs: dict[str, str] = {}  # each folder resolved once per chunk (issue 15)
    return [_read_header(p, dirs) for p in paths]


_STOP_SIGNALS = {signal.SIGINT, getattr(signal, "SIGTERM", signal.SIGINT)}


def _worker_init() -> None:
    """Header-reading workers die on SIGTERM and leave Ctrl-C to the parent, which stops them."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):  # forked while the parent blocked them
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)


def _block_stop_signals() -> Any:
    """Hold back Ctrl-C / SIGTERM (returns the mask to restore; None where unsupported)."""
    if not hasattr(signal, "pthread_sigmask"):
        return None
    return signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)


def _restore_signals(mask: Any) -> None:
    """Undo :func:`_block_stop_signals` (a held-back signal is delivered now)."""
    if mask is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def read_headers(
    files: Iterable[Path | str],
    *,
    progress: ProgressFn | None = None,
    workers: int | None = None,
) -> Iterator[InstanceHeader | SkippedFile]:
    """Read headers of many files, in parallel processes for large sets (order preserved).

    The worker processes are stopped whenever reading ends early (an exception, Ctrl-C,
    SIGTERM turned into an exception by the CLI, or the consumer abandoning the iterator), so
    none is left running on its own.
    """
    paths = [str(f) for f in files]
    n = len(paths)
    if n == 0:
        return
    n_workers = workers if workers is not None else min(os.cpu_count() or 1, 8)
    if n < _PARALLEL_MIN_FILES or n_workers <= 1:
        dirs: dict[str, str] = {}  # each folder resolved once per call (issue 15)
        for i, p in enumerate(paths):
            yield _read_header(p, dirs)
            if progress is not None and (i % 16 == 0 or i == n - 1):
                progress((i + 1) / n, "reading headers")
        return
    chunk = max(16, n // (n_workers * 8))
    chunks = [paths[i : i + chunk] for i in range(0, n, chunk)]
    done = 0
    finished = False
    # an interruption must not fall between forking the workers and owning the pool: it is
    # held back until the pool is assigned, then delivered inside the try (which stops them)
    mask = _block_stop_signals()
    try:
        pool = multiprocessing.get_context().Pool(processes=n_workers, initializer=_worker_init)
    except BaseException:
        _restore_signals(mask)
        raise
    try:
        _restore_signals(mask)
        for result in pool.imap(_read_chunk, chunks):
            yield from result
            done += len(result)
            if progress is not None:
                progress(done / n, "reading headers")
        finished = True
    finally:
        if finished:
            pool.close()
        else:
            pool.terminate()
        pool.join()


class HeaderCache(Protocol):
    """Where :func:`scan` keeps headers between runs (:class:`~sinusapp.dicom.catalogue.
    Catalogue` is one), keyed on absolute path + size + modification time."""

    def cached_headers(
        self, stats: dict[str, tuple[int, float]]
    ) -> dict[str, InstanceHeader | SkippedFile]: ...

    def remember_headers(
        self, items: list[tuple[str, int, float, InstanceHeader | SkippedFile]]
    ) -> None: ...


def _read_through_cache(
    files: list[Path],
    *,
    cache: HeaderCache,
    progress: ProgressFn | None,
    workers: int | None,
) -> list[InstanceHeader | SkippedFile]:
    """Headers of ``files`` (in order): unchanged files from ``cache``, the others read (and
    remembered). A cache that fails (a locked or damaged database) is logged and bypassed."""
    import sqlite3
    from dataclasses import replace

    keys = [os.path.abspath(f) for f in files]
    stats: dict[str, tuple[int, float]] = {}
    for key in keys:
        try:
            st = os.stat(key)
        except OSError:
            continue  # read_header names the problem
        stats[key] = (st.st_size, st.st_mtime)
    try:
        known = cache.cached_headers(stats)
    except sqlite3.Error as exc:
        log.warning("header cache unreadable (%s); reading every header", exc)
        known = {}
    todo = [(key, f) for key, f in zip(keys, files, strict=True) if key not in known]
    fresh = dict(
        zip(
            (key for key, _ in todo),
            read_headers([f for _, f in todo], progress=progress, workers=workers),
            strict=True,
        )
    )
    try:
        cache.remember_headers([(k, *stats[k], fresh[k]) for k, _ in todo if k in stats])
    except sqlite3.Error as exc:
        log.warning("header cache not updated (%s)", exc)
    if progress is not None:
        progress(1.0, "reading headers")
    log.debug("headers: %d from the cache, %d read", len(known), len(todo))
    out: list[InstanceHeader | SkippedFile] = []
    for key, f in zip(keys, files, strict=True):
        item = known.get(key)
        if item is None:
            out.append(fresh[key])
        elif isinstance(item, SkippedFile):
            out.append(replace(item, path=str(f)))  # as the scan names it (maybe relative)
        else:
            out.append(item)
    return out


# --------------------------------------------------------------------------------------------
# Grouping and ranking


def _is_bone_kernel(kernel: str) -> bool:
    k = kernel.upper().replace(" ", "")
    return any(k.startswith(h) or h in k for h in BONE_KERNEL_HINTS if len(h) > 1) or k in (
        "D",
        "E",
    )


def _is_soft_kernel(kernel: str) -> bool:
    k = kernel.upper().replace(" ", "")
    return any(k.startswith(h) for h in SOFT_KERNEL_HINTS)


#: Fewer slices than this cannot cover the sinus region (≈ 80 mm) even at 5 mm: not proposed.
MIN_PROPOSABLE_SLICES = 16
#: Thicker slices than this are not proposed: above it the plausibility gate says the
#: analysis is not reliable (``sinusapp.imaging.plausibility.THICK_SLICE_MM``; a test keeps
#: the two equal), so such a series is not a sinus-capable CT (e.g. a 5 mm brain series).
MAX_PROPOSABLE_THICKNESS_MM = 2.5


def rank_series(entry: SeriesEntry, headers: list[InstanceHeader]) -> Candidate:
    """Score a series as a candidate for the sinus analysis, with the reasons."""
    reasons: list[str] = []
    if entry.kind != "image":
        return Candidate(False, 0.0, (f"{entry.kind}, not an image series",))
    if entry.modality != "CT":
        return Candidate(False, 0.0, (f"modality {entry.modality or 'unknown'}, not CT",))
    h0 = headers[0]
    if h0.is_secondary_capture:
        return Candidate(
            False, 0.0, ("secondary capture (screenshot / report page), not a CT acquisition",)
        )
    if any(h.samples_per_pixel != 1 for h in headers):
        return Candidate(False, 0.0, ("colour images (report or screenshot pages), not CT slices",))
    itype = set(entry.image_type)
    desc = f"{entry.description} {' '.join(entry.image_type)}".upper()
    if "LOCALIZER" in itype or any(w in desc for w in EXCLUDE_DESCRIPTION_WORDS):
        word = next((w for w in EXCLUDE_DESCRIPTION_WORDS if w in desc), "LOCALIZER")
        return Candidate(
            False, 0.0, (f"localizer / scout / summary image ({word.lower()}), not a volume",)
        )
    if entry.n_frames < 2:
        return Candidate(False, 0.0, ("a single image, not a 3-D series",))
    errors = [f for f in entry.findings if f.severity == "error"]
    if errors:
        return Candidate(
            False, 0.0, tuple(f"cannot be made into a volume: {f.message}" for f in errors)
        )
    # Never propose what cannot be a sinus CT (it can still be forced with --series / opened).
    if entry.n_frames < MIN_PROPOSABLE_SLICES:
        return Candidate(
            False,
            0.0,
            (
                f"only {entry.n_frames} slices: cannot cover the sinuses (at least "
                f"{MIN_PROPOSABLE_SLICES} needed), not a sinus CT",
            ),
        )
    thick = entry.slice_thickness_mm or entry.spacing_mm
    if thick is not None and thick > MAX_PROPOSABLE_THICKNESS_MM + 0.01:
        return Candidate(
            False,
            0.0,
            (
                f"slices of {thick:g} mm: too thick for sinus analysis (at most "
                f"{MAX_PROPOSABLE_THICKNESS_MM:g} mm), not a sinus-capable CT",
            ),
        )
    score = 50.0
    if "ORIGINAL" in itype and "PRIMARY" in itype:
        score += 10
        reasons.append("+ original primary acquisition")
    elif "DERIVED" in itype or "SECONDARY" in itype:
        score -= 15
        reasons.append("− derived / secondary images (reformat or post-processing)")
    frame = h0.frames[0] if h0.frames else None
    if frame is not None and frame.orientation is not None:
        import numpy as np

        o = np.array(frame.orientation)
        normal = np.cross(o[:3], o[3:])
        axial = abs(normal[2]) / (np.linalg.norm(normal) or 1.0)
        if axial > 0.9:
            score += 10
            reasons.append("+ axial slices")
        elif axial < 0.5:
            score -= 20
            reasons.append("− not axial (coronal / sagittal reformat)")
    thk = entry.slice_thickness_mm or entry.spacing_mm
    if thk is not None:
        if thk <= 1.25:
            score += 20
            reasons.append(f"+ thin slices ({thk:g} mm)")
        elif thk <= 2.5:
            score += 8
            reasons.append(f"+ slices of {thk:g} mm")
        else:
            score -= min(25.0, 4 * thk)
            reasons.append(f"− thick slices ({thk:g} mm): fine sinus detail is lost")
    if entry.convolution_kernel:
        if _is_bone_kernel(entry.convolution_kernel):
            score += 10
            reasons.append(f"+ bone kernel ({entry.convolution_kernel})")
        elif _is_soft_kernel(entry.convolution_kernel):
            reasons.append(f"soft-tissue kernel ({entry.convolution_kernel})")
    if entry.n_frames < 20:
        score -= 20
        reasons.append(f"− only {entry.n_frames} slices: partial coverage")
    bp = entry.body_part.upper()
    if any(w in bp for w in ("HEAD", "SINUS", "SKULL", "FACE", "BRAIN", "NECK")):
        score += 5
        reasons.append(f"+ body part {entry.body_part}")
    elif any(w in bp for w in ("CHEST", "ABDOMEN", "PELVIS", "THORAX", "LUNG", "HEART")):
        score -= 30
        reasons.append(f"− body part {entry.body_part}, not the head")
    if any(f.code == "gantry_tilt" for f in entry.findings):
        score -= 5
        reasons.append("− gantry tilt (resampled)")
    if any(f.code in ("missing_slices", "nonuniform_spacing") for f in entry.findings):
        score -= 10
        reasons.append("− irregular slice spacing (resampled)")
    return Candidate(True, max(score, 1.0), tuple(reasons))


def _series_entry(headers: list[InstanceHeader]) -> SeriesEntry:
    headers = sorted(headers, key=lambda h: (h.instance_number or 0, h.path))
    h0 = headers[0]
    kind = h0.kind
    n_frames = (
        sum(max(h.number_of_frames, len(h.frames)) for h in headers) if kind == "image" else 0
    )
    thick = [g.slice_thickness for h in headers for g in h.frames if g.slice_thickness]
    psp = next((g.pixel_spacing for h in headers for g in h.frames if g.pixel_spacing), None)
    entry = SeriesEntry(
        series_uid=h0.series_uid,
        series_number=h0.series_number,
        description=h0.series_description,
        modality=h0.modality,
        kind=kind,
        n_instances=len(headers),
        n_frames=n_frames,
        rows=h0.rows,
        columns=h0.columns,
        slice_thickness_mm=(min(thick) if thick else None),
        spacing_mm=None,
        pixel_spacing_mm=psp,
        convolution_kernel=h0.convolution_kernel,
        image_type=h0.image_type,
        body_part=h0.body_part,
        manufacturer=h0.manufacturer,
        manufacturer_model=h0.manufacturer_model,
        transfer_syntaxes=tuple(sorted({h.transfer_syntax_uid for h in headers})),
        files=[h.path for h in headers],
    )
    if kind == "image" and h0.modality == "CT" and not h0.is_secondary_capture:
        geo = assess_geometry(frames_of(headers))
        entry.findings = list(geo.findings)
        entry.spacing_mm = geo.spacing_mm
    if kind == "segmentation":
        entry.referenced_series_uids = _referenced_series(h0.path)
    entry.candidate = rank_series(entry, headers)
    return entry


def _referenced_series(path: str) -> tuple[str, ...]:
    from sinusapp.dicom._pydicom import InvalidDicomError, pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError, EOFError, ValueError) as exc:
        log.warning("cannot re-read segmentation %s to find its source series: %s", path, exc)
        return ()
    uids = {
        str(item.get("SeriesInstanceUID", "")) for item in ds.get("ReferencedSeriesSequence", [])
    }
    return tuple(sorted(u for u in uids if u))


def build_tree(headers: list[InstanceHeader]) -> list[PatientEntry]:
    """Group headers into patients → studies → series, and rank the series."""
    by_series: dict[str, list[InstanceHeader]] = {}
    for h in headers:
        by_series.setdefault(h.series_uid, []).append(h)
    patients: dict[tuple[str, str], PatientEntry] = {}
    studies: dict[str, StudyEntry] = {}
    for series_headers in by_series.values():
        h0 = series_headers[0]
        pkey = (h0.patient_id, h0.patient_name)
        if pkey not in patients:
            patients[pkey] = PatientEntry(
                h0.patient_id, h0.patient_name, h0.patient_birth_date, h0.patient_sex
            )
        if h0.study_uid not in studies:
            st = StudyEntry(
                h0.study_uid,
                h0.study_date,
                h0.study_time,
                h0.study_description,
                h0.accession_number,
            )
            studies[h0.study_uid] = st
            patients[pkey].studies.append(st)
        studies[h0.study_uid].series.append(_series_entry(series_headers))
    for st in studies.values():
        st.series.sort(key=lambda s: (s.series_number is None, s.series_number or 0, s.description))
    out = sorted(patients.values(), key=lambda p: (p.patient_name, p.patient_id))
    for p in out:
        p.studies.sort(key=lambda s: (s.study_date, s.study_time))
    # Propose the best eligible candidate overall (never forced: the user may choose another).
    best: SeriesEntry | None = None
    for p in out:
        for st in p.studies:
            for s in st.series:
                if s.candidate.eligible and (
                    best is None or s.candidate.score > best.candidate.score
                ):
                    best = s
    if best is not None:
        best.proposed = True
    return out


def scan(
    path: str | os.PathLike[str],
    *,
    progress: ProgressFn | None = None,
    workers: int | None = None,
    cache: HeaderCache | None = None,
) -> ScanResult:
    """Examine a file, a folder (recursively) or a DICOMDIR.

    Parameters
    ----------
    path:
        A DICOM file, a folder, a DICOMDIR file, or a folder with a DICOMDIR at its root.
    progress:
        Called as ``progress(fraction, stage)``.
    workers:
        Header-reading processes (default: number of CPUs, at most 8).
    cache:
        Headers kept from earlier scans (e.g. the workstation
        :class:`~sinusapp.dicom.catalogue.Catalogue`): files whose path, size and modification
        time are unchanged are not read again; the others are read and remembered.

    Returns
    -------
    ScanResult
        Patients → studies → series (each with ``candidate`` score / reasons and geometry
        ``findings``), the proposed series, and the skipped files with their reasons.

    Raises
    ------
    InputError
        If ``path`` does not exist.
    """
    source, files, skipped = collect_files(path)
    headers: list[InstanceHeader] = []
    items = (
        read_headers(files, progress=progress, workers=workers)
        if cache is None
        else _read_through_cache(files, cache=cache, progress=progress, workers=workers)
    )
    for item in items:
        if isinstance(item, SkippedFile):
            skipped.append(item)
        else:
            headers.append(item)
    result = ScanResult(root=str(Path(path)), source=source, skipped=skipped, headers=headers)
    result.patients = build_tree(headers)
    log.info(
        "scanned %s: %d files, %d series, %d skipped",
        path,
        len(files),
        len(result.series),
        len(skipped),
    )
    return result
