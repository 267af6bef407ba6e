"""The benchmark's figures: what BENCHMARKS.md's tables say, as bars and lines, drawn by
the same run (`python -m bench`) into PNG files beside the report.

1. rows per second of every connector's default path against its raw loop, and crm
   `parties` as shipped against dlt's own `rest_api_source` (the peer);
2. peak memory against rows loaded, 100,000 and 1,000,000, per connector.

`series` turns the run's results into the numbers plotted (tested without matplotlib);
`draw` plots them with matplotlib, a dependency of the `bench` extra only (`make bench`
installs it), imported when it draws.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.report import ConnectorResult, Peer

#: the files written beside the report `<stem>.md`: `<stem>-<suffix>.png`
SUFFIXES = ("rows-per-second", "peak-memory")


@dataclass
class Series:
    """The numbers behind the figures; a connector whose variant failed is left out of
    the plot it has no number for."""

    #: connector -> (default path rows/s, raw loop rows/s)
    throughput: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: (label, rows/s) of crm `parties` as shipped and through dlt's `rest_api_source`
    peer: list[tuple[str, float]] = field(default_factory=list)
    #: connector -> [(rows, peak RSS MB)] in ascending rows
    memory: dict[str, list[tuple[int, float]]] = field(default_factory=dict)


def series(results: list[ConnectorResult], peer: Peer | str) -> Series:
    """The plotted numbers of one bench run."""
    out = Series()
    for result in results:
        if result.default is not None and result.raw is not None:
            out.throughput[result.connector] = (
                result.default.rows_per_second,
                result.raw.rows_per_second,
            )
        points = []
        if result.rss_small is not None:
            points.append((result.rows, result.rss_small))
        if result.large is not None:
            points.append((result.large_rows, result.large.peak_rss_mb))
        if points:
            out.memory[result.connector] = points
    if isinstance(peer, Peer):
        out.peer = [
            (f"crm {peer.resource}, as shipped", peer.ours.rows_per_second),
            (f"crm {peer.resource}, dlt rest_api_source", peer.peer.rows_per_second),
        ]
    return out


def figure_paths(report: Path) -> list[Path]:
    """The PNG files written beside `report`."""
    return [report.with_name(f"{report.stem}-{suffix}.png") for suffix in SUFFIXES]


def draw(data: Series, report: Path) -> list[Path]:
    """Plot `data` into the PNG files beside `report`; return their paths."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    throughput_png, memory_png = figure_paths(report)

    widths = [max(len(data.throughput), 1), max(len(data.peer), 1)]
    figure, (bars, peer_bars) = plt.subplots(
        1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": widths}
    )
    names = list(data.throughput)
    positions = range(len(names))
    default = [data.throughput[name][0] for name in names]
    raw = [data.throughput[name][1] for name in names]
    bars.bar([p - 0.2 for p in positions], default, width=0.4, label="default path")
    bars.bar([p + 0.2 for p in positions], raw, width=0.4, label="raw loop")
    bars.set_xticks(list(positions), names, rotation=20, ha="right")
    bars.set_ylabel("rows per second")
    bars.set_title("default path against the raw loop")
    bars.legend()
    if data.peer:
        labels = [label for label, _ in data.peer]
        peer_bars.bar(range(len(labels)), [value for _, value in data.peer], color=["C0", "C2"])
        peer_bars.set_xticks(range(len(labels)), [label.replace(", ", ",\n") for label in labels])
    peer_bars.set_title("the peer: dlt's own REST source")
    peer_bars.set_ylabel("rows per second")
    figure.tight_layout()
    figure.savefig(throughput_png, dpi=100)
    plt.close(figure)

    figure, axes = plt.subplots(figsize=(7, 4.2))
    for name, points in data.memory.items():
        axes.plot([rows for rows, _ in points], [mb for _, mb in points], marker="o", label=name)
    axes.set_xscale("log")
    axes.set_xlabel("rows loaded")
    axes.set_ylabel("peak RSS, MB")
    axes.set_ylim(bottom=0)
    axes.set_title("peak memory against rows loaded")
    axes.legend()
    figure.tight_layout()
    figure.savefig(memory_png, dpi=100)
    plt.close(figure)
    return [throughput_png, memory_png]


def markdown(report: Path) -> list[str]:
    """The report's lines showing the figures (relative links, beside it)."""
    throughput_png, memory_png = figure_paths(report)
    return [
        "## Figures",
        "",
        f"![rows per second: default path, raw loop and the peer]({throughput_png.name})",
        "",
        f"![peak memory against rows loaded]({memory_png.name})",
        "",
    ]
