"""The one way SinusApp does background work in the GUI.

A job is a plain function ``fn(progress, should_cancel) -> result`` (the signature every core
function with progress and cancel already has). :class:`JobRunner` runs it on a
:class:`QtCore.QThread` and reports back by signal, on the GUI thread:

- ``progress(fraction, text)`` while it runs,
- exactly one of ``finished(result)``, ``failed(exception)`` or ``cancelled()`` at the end.

A cancelled job never emits a result, even if its function returned one after the cancel.
A job function stops early by raising :class:`sinusapp.errors.Cancelled` (or a subclass); any
other exception raised after the cancel is logged with its traceback, then reported as
``cancelled``.
:meth:`JobRunner.shutdown` cancels every job and waits for its thread (call it on quit).
Widgets are never touched from the worker thread: handlers run on the GUI thread.

Python's cyclic garbage collector runs in whichever thread happens to allocate when a
generation fills up, so a job allocating on its worker thread would free Qt objects that live
on the GUI thread (a redrawn nomogram's old text items, a finished :class:`Job`) there, while
the GUI thread paints: a use-after-free that crashes at random (a segfault in pyqtgraph's
``TextItem.updateTransform`` on CI). :class:`GuiThreadGarbageCollector` turns automatic
collection off and collects on a timer in the GUI thread instead (pyqtgraph's
``GarbageCollector`` recipe). Every worker thread of the GUI starts here, so the first
:class:`JobRunner` installs it.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6 import QtCore

from sinusapp.errors import Cancelled

__all__ = ["GuiThreadGarbageCollector", "Job", "JobCancelled", "JobRunner"]

log = logging.getLogger(__name__)

ProgressFn = Callable[[float, str], None]
CancelFn = Callable[[], bool]
JobFn = Callable[[ProgressFn, CancelFn], Any]


class GuiThreadGarbageCollector(QtCore.QObject):
    """Cyclic garbage collection on the GUI thread only (see the module docstring).

    Automatic collection is disabled; every ``interval_ms`` a timer on the GUI thread collects
    what the automatic collector would have collected since the last tick, by the thresholds
    Python had configured: the young generation when enough allocations piled up, the middle
    one after as many young collections as CPython would have run (a busy job's tick counts
    ``allocations // threshold0`` of them), the whole heap after as many middle ones, but at
    most once per ``min_full_interval_s`` (CPython likewise defers full collections; a full
    pass over a large heap is a visible pause on the GUI thread). Reference counting (most
    frees) is untouched. Garbage waits while the GUI thread does not run its event loop.
    One instance per application, a child of the QApplication; :meth:`install` is idempotent
    and :meth:`uninstall` (connected to ``aboutToQuit``) gives collection back to Python.
    """

    def __init__(
        self,
        app: QtCore.QCoreApplication,
        *,
        interval_ms: int = 500,
        min_full_interval_s: float = 10.0,
    ) -> None:
        super().__init__(app)
        self.setObjectName(_GC_NAME)
        # thresholds as configured; gen 0 at least 1 so an empty count never collects
        t0, t1, t2 = gc.get_threshold()
        self.thresholds = (max(int(t0), 1), int(t1), int(t2))
        self.min_full_interval_s = float(min_full_interval_s)
        self.collections = 0
        self._young_runs = 0  # young collections CPython would have run since a middle one
        self._middle_runs = 0  # middle collections since a full one
        self._last_full = time.monotonic()
        self._timer = QtCore.QTimer(self)
        self._timer.setInterval(int(interval_ms))
        self._timer.timeout.connect(self.check)
        app.aboutToQuit.connect(self.uninstall)
        gc.disable()
        self._timer.start()
        log.debug("cyclic garbage collection moved to the GUI thread (every %d ms)", interval_ms)

    @classmethod
    def install(cls, *, interval_ms: int = 500) -> GuiThreadGarbageCollector | None:
        """The application's collector, created on first call; None without a Qt application.

        Call it on the GUI thread (the timer belongs to the thread that creates it)."""
        app = QtCore.QCoreApplication.instance()
        if app is None:
            return None
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError(
                "GuiThreadGarbageCollector.install() was called from the worker thread "
                f"{threading.current_thread().name!r}; call it on the GUI (main) thread"
            )
        existing = app.findChild(cls, _GC_NAME)
        if existing is not None:
            if gc.isenabled():  # somebody switched it back on: collection would leave again
                gc.disable()
            return existing
        return cls(app, interval_ms=interval_ms)

    def check(self) -> None:
        """Run the collection that is due, if any (an older generation includes the younger)."""
        t0, t1, t2 = self.thresholds
        due = gc.get_count()[0] // t0
        if due == 0:
            return
        self._young_runs += due
        generation = 0
        if self._young_runs > t1:
            self._middle_runs += self._young_runs // (t1 + 1)
            self._young_runs = 0
            generation = 1
            now = time.monotonic()
            if self._middle_runs > t2 and now - self._last_full >= self.min_full_interval_s:
                self._middle_runs = 0
                self._last_full = now
                generation = 2
        gc.collect(generation)
        self.collections += 1

    def uninstall(self) -> None:
        """Stop the timer and switch Python's automatic collection back on (at quit)."""
        self._timer.stop()
        gc.enable()
        self.setObjectName("")  # a later install() makes a fresh collector
        self.deleteLater()
        log.debug("cyclic garbage collection handed back to Python")


#: objectName that :meth:`GuiThreadGarbageCollector.install` finds the instance by
_GC_NAME = "sinusapp-gui-thread-gc"


class JobCancelled(Cancelled):
    """Raised inside a job function to stop it early.

    Any :class:`sinusapp.errors.Cancelled` (``sinusapp.model.Cancelled``, the DICOM loader's)
    works the same way; this subclass only names the GUI's own raise sites.
    """


def _is_cancel_exception(exc: BaseException) -> bool:
    """Whether ``exc`` means "stopped because cancel was asked" (not a failure)."""
    return isinstance(exc, Cancelled)


class _Thread(QtCore.QThread):
    def __init__(self, job: Job) -> None:
        super().__init__()
        self._job = job

    def run(self) -> None:  # runs on the worker thread
        self._job._execute()


class Job(QtCore.QObject):
    """One background job. Connect to its signals before :meth:`JobRunner.start` returns."""

    progress = QtCore.Signal(float, str)
    finished = QtCore.Signal(object)
    failed = QtCore.Signal(object)
    cancelled = QtCore.Signal()
    done = QtCore.Signal()  # after any of the three outcomes

    # worker-thread → GUI-thread relays (queued because the Job lives on the GUI thread)
    _relay_progress = QtCore.Signal(float, str)
    _relay_outcome = QtCore.Signal(str, object)

    def __init__(self, fn: JobFn, *, name: str, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self._fn = fn
        self._cancel = threading.Event()
        self._thread = _Thread(self)
        self._relay_progress.connect(
            self._on_relay_progress, QtCore.Qt.ConnectionType.QueuedConnection
        )
        self._relay_outcome.connect(
            self._on_relay_outcome, QtCore.Qt.ConnectionType.QueuedConnection
        )
        self.is_done = False

    # -- control (GUI thread) --------------------------------------------------------
    def cancel(self) -> None:
        """Ask the job to stop; it ends with ``cancelled`` (never ``finished``)."""
        self._cancel.set()

    @property
    def is_cancelled(self) -> bool:
        """Whether cancel was requested."""
        return self._cancel.is_set()

    def wait(self, timeout_ms: int = -1) -> bool:
        """Block until the thread has ended; returns False on timeout."""
        if timeout_ms < 0:
            return self._thread.wait()
        return self._thread.wait(QtCore.QDeadlineTimer(timeout_ms))

    def is_running(self) -> bool:
        """Whether the worker thread is still running."""
        return self._thread.isRunning()

    # -- worker thread -----------------------------------------------------------------
    def _execute(self) -> None:
        def progress(fraction: float, text: str = "") -> None:
            if not self._cancel.is_set():
                self._relay_progress.emit(float(fraction), str(text))

        try:
            result = self._fn(progress, self._cancel.is_set)
        except Exception as exc:  # reported to the GUI (failed) or logged here (after cancel)
            if _is_cancel_exception(exc):
                self._relay_outcome.emit("cancelled", None)
            elif self._cancel.is_set():
                # a real error that happened to come after the cancel: nobody waits for its
                # outcome any more, but the traceback must not be lost
                log.exception("job %s failed after it was cancelled", self.name)
                self._relay_outcome.emit("cancelled", None)
            else:
                self._relay_outcome.emit("failed", exc)
            return
        if self._cancel.is_set():
            self._relay_outcome.emit("cancelled", None)
        else:
            self._relay_outcome.emit("finished", result)

    # -- GUI thread ------------------------------------------------------------------------
    def _on_relay_progress(self, fraction: float, text: str) -> None:
        if not self._cancel.is_set():
            self.progress.emit(fraction, text)

    def _on_relay_outcome(self, kind: str, payload: object) -> None:
        self._thread.wait()
        self.is_done = True
        if kind == "finished" and self._cancel.is_set():
            kind = "cancelled"
        if kind == "finished":
            log.info("job %s finished", self.name)
            self.finished.emit(payload)
        elif kind == "failed":
            log.error("job %s failed", self.name, exc_info=payload)  # type: ignore[arg-type]
            self.failed.emit(payload)
        else:
            log.info("job %s cancelled", self.name)
            self.cancelled.emit()
        self.done.emit()


class JobRunner(QtCore.QObject):
    """Starts jobs, keeps them alive while they run, cancels and joins them on shutdown."""

    busy_changed = QtCore.Signal(bool)

    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self._jobs: list[Job] = []
        # jobs allocate on worker threads: garbage collection must not follow them there
        GuiThreadGarbageCollector.install()

    def start(
        self,
        fn: JobFn,
        *,
        name: str,
        on_finished: Callable[[Any], None] | None = None,
        on_failed: Callable[[BaseException], None] | None = None,
        on_cancelled: Callable[[], None] | None = None,
        on_progress: Callable[[float, str], None] | None = None,
    ) -> Job:
        """Run ``fn(progress, should_cancel)`` on a worker thread; handlers run on this thread."""
        job = Job(fn, name=name)  # Python-owned: freed when the runner drops it
        if on_progress is not None:
            job.progress.connect(on_progress)
        if on_finished is not None:
            job.finished.connect(on_finished)
        if on_failed is not None:
            job.failed.connect(on_failed)
        if on_cancelled is not None:
            job.cancelled.connect(on_cancelled)
        job.done.connect(lambda j=job: self._on_job_done(j))
        self._jobs.append(job)
        log.info("job %s started", name)
        job._thread.start()
        if len(self._jobs) == 1:
            self.busy_changed.emit(True)
        return job

    @property
    def jobs(self) -> tuple[Job, ...]:
        """Jobs still running or not yet reported."""
        return tuple(self._jobs)

    def _on_job_done(self, job: Job) -> None:
        if job in self._jobs:
            self._jobs.remove(job)
            if not self._jobs:
                self.busy_changed.emit(False)

    def cancel_all(self) -> None:
        """Ask every job to stop."""
        for job in self._jobs:
            job.cancel()

    def shutdown(self, *, timeout_ms: int = 10_000) -> bool:
        """Cancel every job and wait for its thread; True when all threads ended in time."""
        self.cancel_all()
        ok = True
        for job in list(self._jobs):
            if not job.wait(timeout_ms):
                log.error("job %s did not stop within %d ms", job.name, timeout_ms)
                ok = False
        return ok
