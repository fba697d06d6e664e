"""Elapsed time that leaves out the stretches the process was stopped.

A run stopped with Ctrl-Z or ``kill -STOP`` and continued hours later would otherwise report
the stop in its ``wall_s``, and the results table's wall time with it. No clock of the
operating system tells a process how long it was stopped, but a stopped process runs none of
its threads: a daemon thread that wakes every ``tick_s`` seconds and finds that more than
``tick_s + gap_s`` seconds have passed since its last wake-up counts the excess as stopped
time. ``gap_s`` keeps ordinary delays out (a thread waits for the interpreter lock a few
milliseconds at a time); stops shorter than it are counted as running time.

The runner times every network, SVM fold and final model with a :class:`Stopwatch`:
``wall_s`` leaves the stops out and ``stopped_s`` (written only where a stop was seen)
says how long they were.

Examples
--------
>>> watch = Stopwatch()
>>> record = watch.record()
>>> 0.0 <= record["wall_s"] < 1.0, "stopped_s" in record
(True, False)
"""

import os
import threading
import time

from keras_ser.errors import ParameterError


class ActiveClock:
    """Monotonic seconds minus the seconds the process was seen stopped.

    Parameters
    ----------
    tick_s : float
        How often the watching thread wakes.
    gap_s : float
        How much later than ``tick_s`` a wake-up must come to count as a stop.
    """

    def __init__(self, tick_s=1.0, gap_s=10.0):
        if not tick_s > 0 or not gap_s > 0:
            raise ParameterError(f"ActiveClock: tick_s and gap_s must be > 0, got {tick_s}, {gap_s}")
        self.tick_s, self.gap_s = float(tick_s), float(gap_s)
        self._lock = threading.Lock()
        self._last = time.monotonic()
        self._stopped = 0.0
        threading.Thread(target=self._watch, name="keras_ser-active-clock", daemon=True).start()

    def now(self):
        """Seconds on a monotonic clock that stands still while the process is stopped."""
        with self._lock:
            self._count_pending_stop()
            return time.monotonic() - self._stopped

    @property
    def stopped_s(self):
        """Seconds the process has been seen stopped since this clock began."""
        with self._lock:
            self._count_pending_stop()
            return self._stopped

    def _watch(self):
        while True:
            time.sleep(self.tick_s)
            with self._lock:
                self._wake()

    def _wake(self):
        """Count the time since the last wake-up beyond ``tick_s + gap_s`` as stopped (lock held)."""
        now = time.monotonic()
        late = now - self._last - self.tick_s
        if late > self.gap_s:
            self._stopped += late
        self._last = now

    def _count_pending_stop(self):
        # A reading taken right after a stop ends, before the thread has woken, counts the stop
        # (and the thread's own wake-up then finds nothing late).
        if time.monotonic() - self._last - self.tick_s > self.gap_s:
            self._wake()


_CLOCK = {}


def active_clock():
    """The process's :class:`ActiveClock` (started on first use, one per process)."""
    pid = os.getpid()
    if pid not in _CLOCK:
        # A forked child has no watching thread: it starts its own.
        _CLOCK.clear()
        _CLOCK[pid] = ActiveClock()
    return _CLOCK[pid]


class Stopwatch:
    """Seconds since it was made on the process's :class:`ActiveClock`, and the stops left out."""

    def __init__(self):
        self._clock = active_clock()
        self._start, self._stopped = self._clock.now(), self._clock.stopped_s

    def record(self, earlier_s=0.0):
        """``{"wall_s": ...}`` (plus ``earlier_s``, time spent before a resume), with ``stopped_s`` if any."""
        record = {"wall_s": round(self._clock.now() - self._start + earlier_s, 2)}
        stopped = round(self._clock.stopped_s - self._stopped, 2)
        if stopped > 0:
            record["stopped_s"] = stopped
        return record
