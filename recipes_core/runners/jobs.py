"""Follow a job that runs elsewhere (a Beam job service, Flink, Dataflow) until it ends.

The driver polls the job's state, and its metrics where the engine reports them while the job
runs, and tells a callback of each change. Polling uses ``result.state`` (one Job API call a
poll) and sleeps in between, rather than ``wait_until_finish(duration=...)``: the portable
runner's version starts new threads on the job's message and state streams at every call, so
repeated timed waits would read those streams several times over. Once the state is terminal,
one untimed ``wait_until_finish()`` collects the job's error message and runs the runner's
clean-up (it stops the LOOPBACK workers, for instance).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from recipes_core.errors import RunnerError
from recipes_core.redact import redact_text

# Beam's PipelineState names that a job never leaves.
TERMINAL_STATES = frozenset({"DONE", "FAILED", "CANCELLED", "UPDATED", "DRAINED", "STOPPED"})
METRICS_NAMESPACE = "arco"  # recipes_core.pipeline.NAMESPACE (not imported: it pulls in Beam IO)

StateCallback = Callable[[str, dict[str, int]], None]


def state_name(state: Any) -> str:
    """``DONE`` for ``PipelineState.DONE``, ``"DONE"`` or a Job API enum's name."""
    return str(getattr(state, "name", state)).rsplit(".", 1)[-1].upper()


def live_counters(result: Any) -> dict[str, int]:
    """The bake's counters as the engine reports them now (empty where it reports none)."""
    from apache_beam.metrics.metric import MetricsFilter

    # The portable result keeps its first metrics answer for good, and a job service answers
    # with nothing until the job ends: ask afresh at every poll.
    if hasattr(result, "_metrics"):
        result._metrics = None
    counts: dict[str, int] = {}
    try:
        metrics = result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE))
    except Exception:  # some runners report no metrics (Beam's Dask); counts are a nicety
        return counts
    for counter in metrics.get("counters", []):
        value = counter.committed if counter.committed is not None else counter.attempted
        name = counter.key.metric.name
        counts[name] = counts.get(name, 0) + int(value or 0)
    return counts


def follow_job(result: Any, job_id: str | None, on_state: StateCallback | None = None, *,
               interval: float = 2.0) -> str:
    """Poll until the job reaches a terminal state; return ``DONE`` or raise a RunnerError.

    ``on_state(state, counters)`` hears every change of state and of the counters.
    """
    last: tuple[str, dict[str, int]] | None = None
    while True:
        state = state_name(result.state)
        counts = live_counters(result)
        if last is None or last[0] != state or (counts and counts != last[1]):
            if on_state:
                on_state(state, counts)
            last = (state, counts)
        if state in TERMINAL_STATES:
            break
        time.sleep(interval)
    try:
        result.wait_until_finish()
    except Exception as error:  # the engine's own account of the failure
        message = redact_text(str(error))
    else:
        message = ""
    if state != "DONE":
        raise RunnerError(
            f"job {job_id or '(no id)'} ended in state {state}"
            + (f": {message}" if message else ""),
            fix="read the engine's log for the job; re-running the bake is safe.")
    return state
