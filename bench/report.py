"""The benchmark's outputs: the results table, the JSON record and the throughput chart."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.limits import Limits

MiB = 1 << 20


@dataclass
class RunResult:
    runner: str  # xarray, direct-1, direct-2, dask-1, dask-2
    codec: str
    nbytes: int  # uncompressed bytes of the data variables
    seconds: float = 0.0  # the timed part: recipe to finished store (imports excluded)
    pipeline_seconds: float = 0.0  # arco: the Beam graphs only (no admission, no catalogue)
    process_seconds: float = 0.0  # the whole subprocess, interpreter start-up included
    peak_rss: int = 0  # bytes, summed over the process tree
    largest_process_rss: int = 0
    peak_processes: int = 0
    cpu_seconds: float = 0.0
    other_cpu_seconds: float = 0.0  # other processes on the machine during the run
    steal_seconds: float = 0.0  # CPU the hypervisor took for other guests during the run
    attempts_mb_s: list[float] = field(default_factory=list)  # every attempt with --repeat
    # arco: seconds from the start of the timed part to the first/last source staged and
    # chunk written (from the live progress counts, polled every 0.25 s)
    milestones: dict[str, float] = field(default_factory=dict)
    verified: bool | None = None  # None: not verified (the run failed first)
    verify_note: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and self.verified is True

    @property
    def mb_s(self) -> float:
        return self.nbytes / 1e6 / self.seconds if self.seconds and not self.error else 0.0

    @property
    def cores_used(self) -> float:
        return self.cpu_seconds / self.process_seconds if self.process_seconds else 0.0

    @property
    def noise_cores(self) -> float:
        """Cores taken by other processes or other guests meanwhile (~0 on a quiet machine)."""
        return ((self.other_cpu_seconds + self.steal_seconds) / self.process_seconds
                if self.process_seconds else 0.0)

    @property
    def other_cores(self) -> float:
        """Cores the rest of the machine kept busy meanwhile (noise when well above 0)."""
        return self.other_cpu_seconds / self.process_seconds if self.process_seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"mb_s": self.mb_s, "ok": self.ok, "cores_used": self.cores_used,
                                "other_cores": self.other_cores,
                                "noise_cores": self.noise_cores}


def baseline(results: Sequence[RunResult], codec: str) -> RunResult | None:
    return next((r for r in results if r.runner == "xarray" and r.codec == codec and r.ok), None)


def scaling(results: Sequence[RunResult], codec: str, engine: str) -> float | None:
    """MB/s with 2 workers over MB/s with 1, for one engine and codec."""
    one = next((r for r in results if r.runner == f"{engine}-1" and r.codec == codec), None)
    two = next((r for r in results if r.runner == f"{engine}-2" and r.codec == codec), None)
    if one is None or two is None or not (one.ok and two.ok):
        return None
    return two.mb_s / one.mb_s


def table_rows(results: Sequence[RunResult], limits: dict[str, Limits]) -> list[list[str]]:
    rows = []
    for r in results:
        base = baseline(results, r.codec)
        limit = limits.get(r.codec)
        status = ("FAILED" if r.error or r.verified is False else
                  "yes" if r.verified else "no")
        rows.append([
            r.runner, r.codec,
            f"{r.mb_s:.1f}" if r.mb_s else "-",
            (f"{min(r.attempts_mb_s):.0f}-{max(r.attempts_mb_s):.0f}"
             if len(r.attempts_mb_s) > 1 else "-"),
            f"{r.seconds:.1f}",
            f"{r.pipeline_seconds:.1f}",
            f"{r.process_seconds:.1f}",
            f"{r.milestones['first_chunk_written']:.1f}" if "first_chunk_written" in r.milestones
            else "-",
            f"{r.mb_s / base.mb_s:.2f}" if base and r.mb_s else "-",
            f"{100 * r.mb_s / limit.limit_mb_s:.0f}%" if limit and r.mb_s else "-",
            f"{r.peak_rss / MiB:.0f}",
            f"{r.largest_process_rss / MiB:.0f}",
            f"{r.cores_used:.2f}",
            f"{r.noise_cores:.2f}",
            status,
        ])
    return rows


HEADERS = ["runner", "codec", "MB/s", "range", "wall s", "pipeline s", "process s", "1st write s",
           "x xarray", "of limit", "peak RSS MiB", "largest proc MiB", "cores", "noise cores",
           "verified"]


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for header in headers:
        table.add_column(header, justify="left" if header in ("runner", "codec") else "right")
    for row in rows:
        table.add_row(*row)
    Console(width=200).print(table)


def limits_rows(limits: dict[str, Limits]) -> list[list[str]]:
    return [[lim.codec, f"{lim.read_mb_s:.0f}", f"{lim.compress_mb_s:.0f}", f"{lim.ratio:.3f}",
             f"{lim.disk_mb_s:.0f}", f"{lim.sha256_mb_s:.0f}", f"{lim.per_core_mb_s:.0f}",
             str(lim.cores), f"{lim.limit_mb_s:.0f}", f"{lim.limit_with_hash_mb_s:.0f}"]
            for lim in limits.values()]


LIMITS_HEADERS = ["codec", "read MB/s/core", "compress MB/s/core", "ratio", "disk MB/s",
                  "sha256 MB/s/core", "per core MB/s", "cores", "limit MB/s",
                  "limit + hash MB/s"]


def write_json(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1, default=str))


def chart(path: Path, results: Sequence[RunResult], limits: dict[str, Limits],
          title: str) -> None:
    """MB/s per run, one panel per codec, with the xarray and machine-limit lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    codecs = list(dict.fromkeys(r.codec for r in results))
    fig, axes = plt.subplots(1, len(codecs), figsize=(6 * len(codecs), 4.8), squeeze=False)
    for ax, codec in zip(axes[0], codecs, strict=True):
        runs = [r for r in results if r.codec == codec]
        colours = ["#888888" if r.runner == "xarray" else "#d62728" if not r.ok else "#1f77b4"
                   for r in runs]
        bars = ax.bar([r.runner for r in runs], [r.mb_s for r in runs], color=colours)
        for bar, r in zip(bars, runs, strict=True):
            label = f"{r.mb_s:.0f}" if r.ok else "FAILED"
            ax.annotate(label, (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=8)
        base = baseline(results, codec)
        if base:
            ax.axhline(base.mb_s, color="#555555", linestyle="--",
                       label=f"xarray {base.mb_s:.0f} MB/s")
        if codec in limits:
            lim = limits[codec]
            ax.axhline(lim.limit_mb_s, color="#2ca02c", linestyle=":",
                       label=f"machine limit {lim.limit_mb_s:.0f} MB/s")
            ax.axhline(lim.limit_with_hash_mb_s, color="#98df8a", linestyle=":",
                       label=f"limit incl. sha256 {lim.limit_with_hash_mb_s:.0f} MB/s")
        notes = [f"{engine} 2 vs 1: x{s:.2f}" for engine in ("dask", "direct", "dasksync")
                 if (s := scaling(results, codec, engine)) is not None]
        ax.set_title(f"{codec}" + (f"\n({'; '.join(notes)})" if notes else ""), fontsize=10)
        ax.set_ylabel("MB/s of uncompressed data")
        top = max([r.mb_s for r in runs] + [limits[codec].limit_mb_s if codec in limits else 0])
        ax.set_ylim(0, top * 1.15 or 1)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="upper right")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
