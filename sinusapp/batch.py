"""Batch scoring of many studies on a Dask cluster (``sinusapp batch``), for researchers.

Scores an archive: each study is analysed by the headless predict path
(:func:`sinusapp.headless.run_headless`, exactly what ``sinusapp predict`` runs) in one Dask
task; each worker process loads the model once (:func:`_predictor` keeps it for the worker's
life) and writes ``OUT/<case_id>/result.json`` (and ``report.pdf`` on request) atomically.

- **Input**: a folder of studies (one sub-folder per study, clinical factors in the folder's
  ``clinical.csv`` by ``case_id`` = sub-folder name: the training-dataset layout of
  ``sinusapp synth``), or a CSV with a ``path`` column (relative to the CSV), optional
  ``case_id`` and ``series_uid`` columns and the clinical factors (``asthma``,
  ``allergic_rhinitis``, ``eosinophils_per_ul`` or ``eosinophils`` + ``eosinophil_unit``...).
- **Resumable**: a study whose result.json is present and complete is not scored again.
- **Safe**: a study that fails is recorded with its error in ``OUT/summary.csv`` and never
  stops the batch; summary.csv is rewritten atomically as studies finish.
- ``OUT/summary.csv``: one row per study (IDs, series, DLR-score, probability, risk group,
  lesion mL, per-sinus opacification, warnings, error); its ``case_id`` and ``dlr_score``
  columns feed ``sinusapp evaluate --scores``.

The cluster: by default a :class:`dask.distributed.LocalCluster` on this machine's cores,
listening on the loopback interface only (127.0.0.1, dashboard included); ``scheduler``
connects to an existing cluster instead (its workers must see the input and output folders
and have SinusApp installed; start them with ``DASK_DISTRIBUTED__WORKER__DAEMON=False``, as
the local cluster does, because reading a series' headers uses a process pool). This module
imports Dask only inside :func:`run_batch`: the desktop app and ``sinusapp predict`` never
import it and never open a socket.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import platform
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sinusapp.atomic import write_text_atomic
from sinusapp.errors import InputError

__all__ = [
    "SUMMARY_COLUMNS",
    "BatchSummary",
    "ModelSpec",
    "Study",
    "completed_result",
    "read_studies",
    "run_batch",
    "score_study",
    "summary_row",
]

log = logging.getLogger(__name__)

#: Sinus regions with an opacification column in summary.csv (the Lund–Mackay items).
SINUS_COLUMNS: tuple[str, ...] = (
    "maxillary_L",
    "maxillary_R",
    "ethmoid_ant_L",
    "ethmoid_ant_R",
    "ethmoid_post_L",
    "ethmoid_post_R",
    "frontal",
    "sphenoid",
)

#: Columns of summary.csv, in order. ``case_id`` and ``dlr_score`` (and ``lesion_volume_ml``)
#: are what ``sinusapp evaluate --scores`` reads.
SUMMARY_COLUMNS: tuple[str, ...] = (
    "case_id",
    "status",
    "path",
    "patient_id",
    "study_uid",
    "series_uid",
    "dlr_score",
    "probability",
    "probability_ci_low",
    "probability_ci_high",
    "risk_group",
    "lesion_volume_ml",
    "lund_mackay_total",
    "lund_mackay_max",
    *(f"opacification_pct_{r}" for r in SINUS_COLUMNS),
    "opacification_not_assessed",
    "warnings",
    "error",
    "seconds",
    "worker",
    "model_sha256",
)

#: result.json keys a finished study must have (else it is scored again).
_REQUIRED = ("dlr_score", "probability", "risk_group", "lesion_volume_ml", "series", "model")

_SAFE_ID = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class Study:
    """One study to score: its id (the output folder's name), the path of its CT (folder,
    DICOMDIR or file), the series to analyse (``None``: the proposed one) and the raw
    clinical values (see :meth:`sinusapp.clinical.ClinicalInputs.from_dict`)."""

    case_id: str
    path: str
    series_uid: str | None = None
    clinical: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """What every worker loads once: the bundle and nomogram (``None``: the bundled ones),
    the device, torch threads per worker (``None``: torch's default) and ``fake`` (the
    deterministic :class:`~sinusapp.model.FakePredictor`, for tests and for measuring the
    orchestration alone)."""

    bundle_dir: str | None = None
    nomogram_path: str | None = None
    device: str = "cpu"
    threads: int | None = None
    fake: bool = False


@dataclass(frozen=True, slots=True)
class BatchSummary:
    """What a batch did: the summary rows, counts, the summary path, the dashboard link."""

    rows: list[dict[str, Any]]
    scored: int
    skipped: int
    failed: int
    summary_path: Path
    dashboard: str | None
    seconds: float


# --------------------------------------------------------------------------------------------
# input


def _safe_id(text: str) -> str:
    safe = _SAFE_ID.sub("_", text.strip()).strip("._")
    return safe or "study"


def _read_csv(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            return [dict(r) for r in csv.DictReader(fh)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(
            f"cannot read the CSV ({exc})", path=path, hint="give a UTF-8 CSV with a header row"
        ) from exc


def read_studies(source: str | os.PathLike[str]) -> list[Study]:
    """The studies of a batch input: a folder of studies or a CSV (see the module doc).

    Raises
    ------
    InputError
        The input does not exist, a CSV without a ``path`` column, a folder without study
        sub-folders, or two studies with the same ``case_id``.
    """
    src = Path(source)
    if src.is_dir():
        table = src / "clinical.csv"
        clinical = {r.get("case_id", ""): r for r in _read_csv(table)} if table.is_file() else {}
        folders = sorted(p for p in src.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not folders:
            raise InputError(
                "the folder holds no study sub-folder",
                path=src,
                hint="give a folder with one sub-folder per study, or a CSV with a path column",
            )
        studies = []
        for folder in folders:
            row = clinical.get(folder.name, {})
            studies.append(
                Study(
                    case_id=_safe_id(folder.name),
                    path=str(folder.resolve()),
                    series_uid=(row.get("series_uid") or "").strip() or None,
                    clinical=row,
                )
            )
    elif src.is_file():
        rows = _read_csv(src)
        if rows and "path" not in rows[0]:
            raise InputError(
                f"the CSV has no 'path' column (found {list(rows[0])})",
                path=src,
                hint="add a path column (study folder, DICOMDIR or file; relative to the CSV)",
            )
        studies = []
        for i, row in enumerate(rows, start=2):
            raw = (row.get("path") or "").strip()
            if not raw:
                raise InputError(
                    f"line {i} of the CSV has an empty path",
                    path=src,
                    hint="give every row the study's folder, DICOMDIR or file",
                )
            p = Path(raw).expanduser()
            p = p if p.is_absolute() else (src.parent / p)
            studies.append(
                Study(
                    case_id=_safe_id(row.get("case_id") or p.name),
                    path=str(p.resolve()),
                    series_uid=(row.get("series_uid") or "").strip() or None,
                    clinical=row,
                )
            )
    else:
        raise InputError(
            "the batch input does not exist",
            path=src,
            hint="give a folder of studies or a CSV of studies",
        )
    seen: dict[str, int] = {}
    for s in studies:
        seen[s.case_id] = seen.get(s.case_id, 0) + 1
    dup = sorted(k for k, n in seen.items() if n > 1)
    if dup:
        raise InputError(
            f"{len(dup)} case_id(s) occur more than once: {dup[:5]}",
            path=src,
            hint="give every study its own case_id (a case_id column in the CSV)",
        )
    return studies


# --------------------------------------------------------------------------------------------
# one study (runs on a worker)

#: The models loaded in this process (a Dask worker keeps them for its life).
_PREDICTORS: dict[ModelSpec, Any] = {}


def _predictor(spec: ModelSpec) -> Any:
    """The predictor of ``spec``, loaded once per process."""
    pred = _PREDICTORS.get(spec)
    if pred is None:
        if spec.fake:
            from sinusapp.model import FakePredictor

            pred = FakePredictor()
        else:
            import torch

            from sinusapp.model import Predictor

            if spec.threads:
                torch.set_num_threads(spec.threads)
            pred = Predictor(Path(spec.bundle_dir) if spec.bundle_dir else None, device=spec.device)
        log.info("worker %d loaded the model %s", os.getpid(), pred.model_info)
        _PREDICTORS[spec] = pred
    return pred


def completed_result(
    folder: Path, *, series_uid: str | None = None, report: bool = False
) -> dict[str, Any] | None:
    """The result.json in ``folder`` when it is present and complete (every summary field,
    the requested series, the report when one is asked for); else ``None``."""
    path = folder / "result.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict) or any(k not in data for k in _REQUIRED):
        return None
    done_series = (data.get("series") or {}).get("series_instance_uid")
    if series_uid and done_series != series_uid:
        return None
    if report and not (folder / "report.pdf").is_file():
        return None
    return data


def _num(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    return "" if value is None else value


def summary_row(
    study: Study,
    result: Mapping[str, Any] | None,
    *,
    status: str,
    error: str = "",
    seconds: float | None = None,
) -> dict[str, Any]:
    """The summary.csv row of ``study`` from its result.json content (``None``: failed)."""
    row: dict[str, Any] = {k: "" for k in SUMMARY_COLUMNS}
    row.update(case_id=study.case_id, status=status, path=study.path, error=error)
    if status != "skipped (done)":
        row["worker"] = f"{platform.node()}:{os.getpid()}"  # the process that scored it
    row["series_uid"] = study.series_uid or ""
    if seconds is not None:
        row["seconds"] = round(seconds, 2)
    if result is None:
        return row
    series = result.get("series") or {}
    patient = result.get("patient") or {}
    ci = result.get("probability_ci95") or ["", ""]
    row.update(
        patient_id=patient.get("id") or "",
        study_uid=series.get("study_instance_uid") or "",
        series_uid=series.get("series_instance_uid") or row["series_uid"],
        dlr_score=_num(result.get("dlr_score")),
        probability=_num(result.get("probability")),
        probability_ci_low=_num(ci[0]),
        probability_ci_high=_num(ci[1]),
        risk_group=result.get("risk_group") or "",
        lesion_volume_ml=_num(result.get("lesion_volume_ml")),
        lund_mackay_total=_num(result.get("lund_mackay_total")),
        lund_mackay_max=_num(result.get("lund_mackay_max")),
        # an empty opacification_pct_<sinus>: not assessed (named here), not found or absent
        opacification_not_assessed=" ".join(result.get("opacification_not_assessed") or ()),
        warnings="; ".join(
            str(w.get("code", "")) for w in result.get("warnings") or [] if isinstance(w, dict)
        ),
        model_sha256=(result.get("model") or {}).get("sha256", ""),
    )
    per_sinus = result.get("per_sinus") or {}
    for region in SINUS_COLUMNS:
        values = per_sinus.get(region) or {}
        row[f"opacification_pct_{region}"] = _num(values.get("opacification_pct"))
    return row


def score_study(
    study: Study, *, out_dir: str, spec: ModelSpec, report: bool = False
) -> dict[str, Any]:
    """Analyse one study (the headless predict path) and return its summary row.

    Never raises for a bad study: the error (type and message) goes into the row's ``error``
    column and the log, so one broken CT never stops the batch. Outputs are written
    atomically into ``out_dir/<case_id>/``.
    """
    from sinusapp.headless import run_headless

    t0 = time.perf_counter()
    folder = Path(out_dir) / study.case_id
    try:
        if not study.clinical:
            raise InputError(
                f"study {study.case_id} has no clinical factors",
                path=study.path,
                hint="add its row (case_id, asthma, allergic_rhinitis, eosinophils_per_ul) to "
                "the input's clinical.csv, or give the batch a CSV with those columns",
            )
        folder.mkdir(parents=True, exist_ok=True)
        outs = run_headless(
            study.path,
            study.clinical,
            series_uid=study.series_uid,
            json_path=folder / "result.json",
            report_path=folder / "report.pdf" if report else None,
            nomogram_path=spec.nomogram_path,
            predictor=_predictor(spec),
            overwrite=True,  # only an incomplete result is scored again
        )
        result = outs.result.to_json_dict()
        return summary_row(study, result, status="scored", seconds=time.perf_counter() - t0)
    except Exception as exc:  # one study's failure must never stop the batch
        log.warning("study %s (%s) failed: %s", study.case_id, study.path, exc, exc_info=True)
        message = f"{type(exc).__name__}: {exc}".replace("\n", " ")
        return summary_row(
            study, None, status="failed", error=message, seconds=time.perf_counter() - t0
        )


# --------------------------------------------------------------------------------------------
# the batch


def write_summary(rows: Iterable[Mapping[str, Any]], path: Path) -> Path:
    """Write summary.csv atomically (never half-written)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(SUMMARY_COLUMNS), extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    return write_text_atomic(buf.getvalue(), path, what="the batch summary")


def _check_model(spec: ModelSpec) -> None:
    """Refuse a nomogram fitted for another model before any task starts (as predict does)."""
    if spec.fake:
        return
    from sinusapp.headless import _check_nomogram_pairing
    from sinusapp.model.bundle import load_bundle
    from sinusapp.model.predictor import bundled_model_dir
    from sinusapp.nomogram import Nomogram

    bundle = load_bundle(spec.bundle_dir or bundled_model_dir(), verify_weights=False)
    info = {"name": bundle.name, "version": bundle.version, "sha256": bundle.sha256}
    _check_nomogram_pairing(
        Nomogram.load(spec.nomogram_path), info, nomogram_path=spec.nomogram_path
    )


def run_batch(
    studies: Sequence[Study],
    *,
    out_dir: str | os.PathLike[str],
    spec: ModelSpec,
    workers: int | None = None,
    scheduler: str | None = None,
    report: bool = False,
    progress: bool = True,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> BatchSummary:
    """Score ``studies`` on a Dask cluster; write ``out_dir/summary.csv``; return a summary.

    ``workers``: processes of the local cluster (default: this machine's cores; each gets
    an equal share of the cores for torch); ``scheduler``: the address of an existing Dask
    scheduler (``tcp://host:8786``) instead of a local cluster. Studies already done are
    skipped; every other study is one task.

    Raises
    ------
    InputError
        Dask is not installed, no study, a nomogram that does not belong to the bundle, a
        scheduler that cannot be reached.
    """
    t0 = time.perf_counter()
    if not studies:
        raise InputError("the batch has no study", hint="give a folder or CSV of studies")
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError as exc:
        raise InputError(
            f"sinusapp batch needs Dask ({exc})",
            hint="install it with: pip install 'sinusapp[cluster]' (dask[distributed])",
        ) from exc
    from tqdm import tqdm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary_path = out / "summary.csv"
    _check_model(spec)
    rows: dict[str, dict[str, Any]] = {}
    todo: list[Study] = []
    for s in studies:
        done = completed_result(out / s.case_id, series_uid=s.series_uid, report=report)
        if done is not None:
            rows[s.case_id] = summary_row(s, done, status="skipped (done)")
        else:
            todo.append(s)
    log.info("batch: %d studies, %d already done, %d to score", len(studies), len(rows), len(todo))
    order = [s.case_id for s in studies]

    def flush() -> None:
        write_summary([rows[c] for c in order if c in rows], summary_path)

    n_cores = os.cpu_count() or 1
    n_workers = max(1, workers or n_cores)
    if spec.threads is None and not spec.fake and scheduler is None:
        spec = ModelSpec(
            bundle_dir=spec.bundle_dir,
            nomogram_path=spec.nomogram_path,
            device=spec.device,
            threads=max(1, n_cores // n_workers),
            fake=spec.fake,
        )
    cluster = None
    client = None
    dashboard: str | None = None
    try:
        if todo:
            if scheduler:
                try:
                    client = Client(scheduler, timeout="30s")
                except OSError as exc:
                    raise InputError(
                        f"cannot reach the Dask scheduler {scheduler!r} ({exc})",
                        hint="check the address (tcp://HOST:8786) and that the scheduler runs",
                    ) from exc
            else:
                import dask

                # loopback only: nothing is reachable from the network. Workers are not
                # daemonic: reading a large series' headers starts a process pool.
                with dask.config.set({"distributed.worker.daemon": False}):
                    cluster = LocalCluster(
                        n_workers=n_workers,
                        threads_per_worker=1,
                        processes=True,
                        host="127.0.0.1",
                        dashboard_address="127.0.0.1:0",
                    )
                client = Client(cluster)
            dashboard = getattr(client, "dashboard_link", None)
            if dashboard and progress:
                log.warning("batch: the Dask dashboard is at %s", dashboard)
            futures = client.map(
                score_study,
                todo,
                out_dir=str(out),
                spec=spec,
                report=report,
                key=[f"score-{s.case_id}" for s in todo],
                pure=False,
            )
            by_key = {f.key: s for f, s in zip(futures, todo, strict=True)}
            last = 0.0
            bar = tqdm(total=len(todo), desc="studies", unit="study", disable=not progress)
            for fut in as_completed(futures):
                study = by_key[fut.key]
                try:
                    row = fut.result()
                except Exception as exc:  # noqa: BLE001 - a lost worker fails one study only
                    row = summary_row(
                        study, None, status="failed", error=f"{type(exc).__name__}: {exc}"
                    )
                rows[study.case_id] = row
                if on_row is not None:
                    on_row(row)
                bar.update(1)
                if time.monotonic() - last > 5.0:
                    flush()
                    last = time.monotonic()
            bar.close()
    finally:
        if rows:
            flush()
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    flush()
    statuses = [r["status"] for r in rows.values()]
    return BatchSummary(
        rows=[rows[c] for c in order],
        scored=statuses.count("scored"),
        skipped=statuses.count("skipped (done)"),
        failed=statuses.count("failed"),
        summary_path=summary_path,
        dashboard=dashboard,
        seconds=time.perf_counter() - t0,
    )
