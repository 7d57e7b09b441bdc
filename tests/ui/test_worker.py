"""The background-work runner: result, error, progress, cancel, shutdown."""

from __future__ import annotations

import threading
import time

import pytest

from sinusapp.ui.worker import JobCancelled, JobRunner


@pytest.fixture
def runner(qapp):
    r = JobRunner()
    yield r
    r.shutdown()


def test_result_and_progress_arrive_on_gui_thread(qtbot, runner):
    main = threading.get_ident()
    seen_threads = []
    progress = []

    def fn(report, should_cancel):
        seen_threads.append(threading.get_ident())
        report(0.5, "half")
        return 42

    def on_progress(f, text):
        progress.append((f, text, threading.get_ident()))

    job = runner.start(fn, name="t", on_progress=on_progress)
    with qtbot.waitSignal(job.finished, timeout=5000) as blocker:
        pass
    assert blocker.args == [42]
    assert seen_threads and seen_threads[0] != main
    assert progress == [(0.5, "half", main)]
    qtbot.waitUntil(lambda: not runner.jobs)


def test_error_is_reported_not_raised(qtbot, runner):
    def fn(report, should_cancel):
        raise ValueError("boom")

    job = runner.start(fn, name="t")
    with qtbot.waitSignal(job.failed, timeout=5000) as blocker:
        pass
    assert isinstance(blocker.args[0], ValueError)


def test_cancelled_job_never_emits_a_result(qtbot, runner):
    started = threading.Event()
    results = []

    def fn(report, should_cancel):
        started.set()
        while not should_cancel():
            time.sleep(0.005)
        return "too late"  # returned after cancel: must not be delivered

    job = runner.start(fn, name="t", on_finished=results.append)
    started.wait(5)
    with qtbot.waitSignal(job.cancelled, timeout=5000):
        job.cancel()
    assert results == []


def test_cancel_exception_counts_as_cancelled(qtbot, runner):
    def fn(report, should_cancel):
        raise JobCancelled()

    job = runner.start(fn, name="t")
    with qtbot.waitSignal(job.cancelled, timeout=5000):
        pass


def test_shutdown_cancels_and_joins(qapp):
    runner = JobRunner()
    started = threading.Event()

    def fn(report, should_cancel):
        started.set()
        while not should_cancel():
            time.sleep(0.005)

    job = runner.start(fn, name="t")
    started.wait(5)
    assert runner.shutdown(timeout_ms=5000)
    assert not job.is_running()


@pytest.mark.parametrize("kind", ["errors", "model", "job"])
def test_every_cancelled_subclass_counts_as_cancelled(qtbot, runner, kind):
    from sinusapp import errors, model

    exc = {"errors": errors.Cancelled, "model": model.Cancelled, "job": JobCancelled}[kind]

    def fn(report, should_cancel):
        raise exc("stopped")

    job = runner.start(fn, name="t")
    with qtbot.waitSignal(job.cancelled, timeout=5000):
        pass


def test_an_exception_merely_named_cancelled_is_a_failure(qtbot, runner):
    class Cancelled(Exception):  # noqa: N818 - the name alone must not matter
        pass

    def fn(report, should_cancel):
        raise Cancelled("not ours")

    job = runner.start(fn, name="t")
    with qtbot.waitSignal(job.failed, timeout=5000):
        pass


def test_error_after_cancel_is_logged_with_traceback(qtbot, runner, caplog):
    import logging

    started = threading.Event()

    def fn(report, should_cancel):
        started.set()
        while not should_cancel():
            time.sleep(0.005)
        raise ValueError("broke while stopping")

    caplog.set_level(logging.ERROR, logger="sinusapp.ui.worker")
    job = runner.start(fn, name="t")
    started.wait(5)
    with qtbot.waitSignal(job.cancelled, timeout=5000):
        job.cancel()
    logged = [r for r in caplog.records if r.exc_info and r.exc_info[0] is ValueError]
    assert logged and "after it was cancelled" in logged[0].getMessage()


class _Cycle:
    """A self-referencing object that records the thread its finaliser runs on."""

    def __init__(self, seen: list[int]) -> None:
        self.me = self
        self._seen = seen

    def __del__(self) -> None:
        self._seen.append(threading.get_ident())


def test_garbage_made_by_a_job_is_collected_on_the_gui_thread(qtbot, runner):
    """Cyclic garbage left by a job is freed on the GUI thread, never on the worker: a cycle
    holding Qt objects freed there crashes the GUI (the CI segfault in pyqtgraph). Without
    the GUI-thread collector the job's own allocations trigger collections on its thread."""
    import gc

    from sinusapp.ui.worker import GuiThreadGarbageCollector

    assert not gc.isenabled()
    collector = GuiThreadGarbageCollector.install()
    assert collector is GuiThreadGarbageCollector.install()  # one per application
    main = threading.get_ident()
    finalised: list[int] = []
    n = 20 * gc.get_threshold()[0]  # far more than one generation-0 fill

    def fn(report, should_cancel):
        for _ in range(n):
            _Cycle(finalised)
        return threading.get_ident()

    job = runner.start(fn, name="garbage")
    with qtbot.waitSignal(job.finished, timeout=10_000) as blocker:
        pass
    worker = blocker.args[0]
    assert worker != main
    # nothing was freed on the worker; the timer collects on this thread
    assert set(finalised) <= {main}, "garbage was collected on the worker thread"
    qtbot.waitUntil(lambda: collector.collections > 0 and len(finalised) > 0, timeout=10_000)
    # a cycle still under construction at a tick moved to an older generation: collect it
    gc.collect()
    assert len(finalised) == n
    assert set(finalised) == {main}, "garbage was collected on the worker thread"


def test_collector_collects_older_generations_and_hands_back_at_quit(qapp):
    """A busy tick counts as the young collections CPython would have run, so the middle
    generation is not starved (after one young collection Python's middle count would be
    non-zero; a middle collection resets it); uninstall gives collection back to Python."""
    import gc

    from sinusapp.ui.worker import GuiThreadGarbageCollector

    c = GuiThreadGarbageCollector(qapp, interval_ms=60_000, min_full_interval_s=3600.0)
    try:
        t0, t1, _ = c.thresholds
        gc.collect()
        keep = [[] for _ in range(t0 * (t1 + 2))]  # past t1 + 1 young thresholds at once
        c.check()
        assert gc.get_count()[1] == 0, "the busy tick ran a young-only collection"
        assert gc.get_count()[2] >= 1  # a middle one (a full one resets this too)
        assert c.collections == 1 and len(keep) == t0 * (t1 + 2)
    finally:
        c.uninstall()
    assert gc.isenabled()
    GuiThreadGarbageCollector.install()  # the suite's own collector, back in place
    assert not gc.isenabled()
