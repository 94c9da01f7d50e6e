"""Where a bake's time goes: a py-spy profile of one run, summarised into hotspots.

py-spy samples the child from outside (no change to the code, every thread, subprocesses
too), which is what we want for a Beam pipeline whose codecs run in zarr's worker threads. Its
raw output has one line per distinct stack, ``frame;frame;...;leaf count``, root first, each
frame ``function (path:line)``. Samples of the child's untimed imports are dropped so the
profile covers what the run's seconds cover.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

_PROCESS = re.compile(r"^process \d+:")  # py-spy's marker of the process a stack belongs to
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")
# The phases of a bake, each given by the functions that mark it (old and new pipeline
# layouts both, so the summary survives refactors); a phase counts the samples of the outermost.
PHASES: dict[str, tuple[str, ...]] = {
    # Local sources are hashed by the write tasks on a thread of their own since 2f0559a
    # (before: by the Stage step); either way sha256_file marks the samples.
    "hash local sources (stage or write tasks)": ("Stager.stage", "sha256_file",
                                                  "hash_sources"),
    "schema survey (open + schema_of)": ("read_schema", "survey_source"),
    "write tasks / split": ("split", "WriteFn.process", "run_write_task", "fill_write_task",
                            "UnitWrite.__call__"),
    "  zarr array write": ("Array.__setitem__", "Array.set_basic_selection",
                           "Array.set_orthogonal_selection"),
    "    codec encode (zarr threads)": ("_encode_sync",),
    "    store set (file write)": ("LocalStore.set", "_put"),
    "finalise (consolidate)": ("finalise_target", "consolidate_metadata"),
    "publish (STAC, thumbnail)": ("publish",),
    "across phases: xarray open of a source": ("open_source",),
    "across phases: netCDF4 value reads": ("NetCDF4ArrayWrapper.__getitem__",),
    "across phases: encode_zarr_variable": ("encode_zarr_variable",),
    "across phases: Beam coders (pickle)": ("apache_beam/coders",),
}


# Leaves where a thread blocks in C without py-spy noticing it is idle (thread pools waiting for
# work, event loops, gRPC spinners of Beam's workers, process pipes): waiting, not working.
IDLE_LEAVES = frozenset({
    "Condition.wait", "EpollSelector.select", "PollSelector.select", "_worker", "Thread.run",
    "_serve", "_run_channel_spin_thread.<locals>.channel_spin", "Connection._recv",
    "Connection._poll", "Popen.poll", "Event.wait", "Queue.get", "Thread.join", "wait",
    "select", "sleep", "_wait_for_tstate_lock",
})


@dataclass
class Profile:
    samples: int = 0
    idle: int = 0  # samples of threads blocked in IDLE_LEAVES, left out of everything else
    self_time: Counter[str] = field(default_factory=Counter)
    inclusive: Counter[str] = field(default_factory=Counter)
    packages: Counter[str] = field(default_factory=Counter)
    packages_inclusive: Counter[str] = field(default_factory=Counter)  # by package/module
    # per process (the innermost "process PID" frame): busy, importing, in write tasks
    processes: dict[str, Counter[str]] = field(default_factory=dict)

    def top(self, counter: Counter[str], n: int) -> list[tuple[str, int, float]]:
        return [(name, count, 100.0 * count / max(1, self.samples))
                for name, count in counter.most_common(n)]

    def phases(self) -> list[tuple[str, int, float]]:
        out = []
        for label, needles in PHASES.items():
            counts = [self.packages_inclusive.get(n, 0) if "/" in n else
                      max((c for name, c in self.inclusive.items() if _is(name, n)),
                          default=0) for n in needles]
            count = max(counts, default=0)
            out.append((label, count, 100.0 * count / max(1, self.samples)))
        return out


def _is(name: str, function: str) -> bool:
    """``BloscCodec._encode_sync (zarr/...)`` is ``_encode_sync``; py-spy qualifies methods."""
    func = name.split(" (")[0]
    return func == function or func.endswith("." + function)


def _frame(text: str) -> tuple[str, str]:
    match = _FRAME.match(text)
    if not match:
        return text, ""
    return match["func"], match["file"]


def _package(path: str) -> str:
    """``zarr/core/array.py`` -> ``zarr``; stdlib modules and ``<frozen ...>`` keep their name."""
    if path.startswith("<"):
        return "python (frozen)"
    return path.split("/")[0].removesuffix(".py")


def parse(raw: Path, timed_function: str = "run_arco") -> Profile:
    profile = Profile()
    for line in raw.read_text().splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        all_frames = stack_text.split(";")
        # With --subprocesses a worker's stack starts with the root's and its own process frame.
        owners = [f.split(":")[0] for f in all_frames if _PROCESS.match(f)]
        frames = [f for f in all_frames if not _PROCESS.match(f)]
        parsed = [_frame(f) for f in frames]
        if not parsed:
            continue
        names = [func for func, _ in parsed]
        if "_run_module_as_main" in names:  # the main thread: keep the timed part only
            if timed_function not in names:
                continue
            after = names.index(timed_function) + 1
            if after >= len(names) or names[after].startswith("_find_and_load"):
                continue  # the untimed imports at the top of the run
        func, path = parsed[-1]
        if func in IDLE_LEAVES or not path:  # no path: a process caught in C start-up code
            profile.idle += count
            continue
        profile.samples += count
        per = profile.processes.setdefault(
            (owners[-1] if owners else "process ?") + (" (root)" if len(owners) == 1 else ""),
            Counter())
        per["busy"] += count
        per["importing"] += count if "_find_and_load" in names else 0
        per["write tasks"] += count if {"run_write_task", "fill_write_task", "UnitWrite.__call__",
                                        "split"} & set(names) else 0
        profile.self_time[f"{func} ({path})"] += count
        profile.packages[_package(path)] += count
        for name in {f"{f} ({p})" for f, p in parsed}:
            profile.inclusive[name] += count
        for package in {"/".join(p.split("/")[:2]) for _, p in parsed}:
            profile.packages_inclusive[package] += count
    return profile


def record(command: Sequence[str], raw: Path, *, rate: int = 100, cwd: Path | None = None,
           log: Path | None = None) -> bool:
    """Run ``command`` under ``py-spy record``; False when py-spy is missing or not allowed."""
    spy = shutil.which("py-spy") or str(Path(command[0]).with_name("py-spy"))
    if not Path(spy).exists():
        return False
    args = [spy, "record", "--format", "raw", "--rate", str(rate), "--subprocesses",
            "--output", str(raw), "--", *command]
    with open(log or "/dev/null", "wb") as out:
        done = subprocess.run(args, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, check=False)
    return done.returncode == 0 and raw.exists()


def summary(profile: Profile, top: int = 15) -> dict[str, object]:
    return {
        "samples": profile.samples,
        "idle": profile.idle,
        "phases": profile.phases(),
        "self": profile.top(profile.self_time, top),
        "packages": profile.top(profile.packages, 10),
        "processes": [(f"{pid}: {c['importing']} importing, {c['write tasks']} in write tasks",
                       c["busy"], 100.0 * c["busy"] / max(1, profile.samples))
                      for pid, c in sorted(profile.processes.items(),
                                           key=lambda item: -item[1]["busy"])][:8],
        "inclusive_recipes_core": [
            row for row in profile.top(profile.inclusive, 400) if "recipes_core/" in row[0]
        ][:top],
    }


def format_summary(data: dict[str, object]) -> str:
    lines = [f"samples: {data['samples']} busy (100 Hz, every thread of every process; the "
             f"untimed imports and {data['idle']} samples of waiting threads left out)", "",
             "phases (inclusive):"]
    rows: list[tuple[str, int, float]]
    for title, key in (("", "phases"), ("top self time (leaf Python frame):", "self"),
                       ("self time by package:", "packages"),
                       ("busy samples by process:", "processes"),
                       ("top recipes_core functions (inclusive):", "inclusive_recipes_core")):
        if title:
            lines += ["", title]
        rows = data[key]  # type: ignore[assignment]
        lines += [f"  {pct:5.1f}%  {count:6d}  {name}" for name, count, pct in rows]
    return "\n".join(lines)
