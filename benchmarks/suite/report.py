"""The report: a Markdown table, a JSON file of the raw numbers, and two PNG charts (matplotlib, Agg).

``suite.md`` has a summary (one line per workload and size: iterabledata
sequential, iterable_dask's best, the fastest peer, and who won) and every
contender's median; ``suite.json`` every round's time; ``suite.png`` each
workload's speed-ups over iterabledata sequential; ``scaling.png`` time
against size for the workloads run at three sizes.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from typing import Any

__all__ = ["write_report"]

COLOURS = {"baseline": "#7f7f7f", "iterabledata": "#bcbd22", "iterable_dask": "#1f77b4", "peer": "#ff7f0e"}


def _groups(rows: list[dict]) -> dict[tuple[str, str], list[dict]]:
    """Rows by (workload key, size), in the order they ran."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in rows:
        groups[(row["key"], row["size"])].append(row)
    return groups


def _fastest(rows: list[dict], kind: str | None = None) -> dict | None:
    timed = [r for r in rows if r["median"] is not None and (kind is None or r["kind"] == kind)]
    return min(timed, key=lambda r: r["median"]) if timed else None


def _s(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.3f}" if seconds < 10 else f"{seconds:.1f}"


def _x(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}x"


def summary_rows(rows: list[dict]) -> list[dict[str, Any]]:
    """Per workload and size: the baseline, iterable_dask's fastest, the fastest peer, and the winner."""
    out = []
    for (_, size), group in _groups(rows).items():
        base, ours, peer, best = group[0], _fastest(group, "iterable_dask"), _fastest(group, "peer"), _fastest(group)
        out.append(
            {
                "workload": base["workload"],
                "size": size,
                "baseline": base["median"],
                "ours": ours,
                "peer": peer,
                "ours_vs_peer": peer["median"] / ours["median"] if ours and peer else None,
                "winner": best,
            }
        )
    return out


def markdown(payload: dict[str, Any]) -> str:
    """The report as Markdown."""
    m, rows = payload["machine"], payload["rows"]
    v = m["versions"]
    lines = [
        f"# Benchmark suite: iterable_dask against the tools you would use instead ({payload['size']} size)",
        "",
        f"Machine: {m['cores']} cores ({m['cpu'] or 'unknown CPU'}), {m['memory']} memory, {m['system']}, "
        f"Python {m['python']}; iterable-dask {v['iterable-dask']}, iterabledata {v['iterabledata']}, "
        f"dask {v['dask']}, pyarrow {v['pyarrow']}, duckdb {v['duckdb']}, pandas {v['pandas']}. "
        "iterable_dask and the dask peers share one LocalCluster of 2 worker processes x 1 thread on 127.0.0.1 "
        "(started before the timings); DuckDB and pyarrow run in the caller with 2 threads. "
        f"Load average (1 min) {payload['load'][0]:.2f} at the start, {payload['load'][1]:.2f} at the end; "
        "the machine is shared, so every figure is a median of interleaved rounds.",
        "",
        f"Each median is of {payload['rounds']} interleaved rounds after one untimed run whose output was checked "
        "against iterabledata's sequential output (record for record; typed engines by rows and values as strings). "
        "**speed-up** is iterabledata sequential's median over the contender's: above 1 is faster. "
        "A contender whose output differs is listed with no time; one more than 5x slower than the baseline "
        "in its checked run (and over 5 s) is timed once (its rounds column shows one time). "
        "*caller peak RSS* is the resident memory of the process that ran the job, sampled every 10 ms during "
        "the timed rounds: the suite's own process (which also holds the scheduler), or for the jobs run in a "
        "fresh process, that process.",
        "",
        "## Summary",
        "",
        "| workload | size | iterabledata sequential (s) | iterable_dask, fastest | speed-up | fastest peer | "
        "iterable_dask vs that peer | fastest of all |",
        "| --- | --- | ---: | --- | ---: | --- | ---: | --- |",
    ]
    for s in summary_rows(rows):
        ours, peer, win = s["ours"], s["peer"], s["winner"]
        ours_cell = f"{ours['contender']}: {_s(ours['median'])} s" if ours else "-"
        peer_cell = f"{peer['contender']}: {_s(peer['median'])} s" if peer else "- (not run at this size)"
        who = win["contender"] if win else "-"
        if win and win["kind"] == "peer":
            who = f"**peer wins: {who}**"
        vs = _x(s["ours_vs_peer"])
        lines.append(
            f"| {s['workload']} | {s['size']} | {_s(s['baseline'])} | {ours_cell} | {_x(ours and ours['ratio'])} "
            f"| {peer_cell} | {vs} | {who} |"
        )
    lines += [
        "",
        "## Every contender",
        "",
        "| workload | size | contender | median (s) | speed-up | caller peak RSS (MiB) | rounds (s) "
        "| load before/after |",
        "| --- | --- | --- | ---: | ---: | ---: | --- | --- |",
    ]
    notes: list[str] = []
    for group in _groups(rows).values():
        best = _fastest(group)
        for r in group:
            name = f"**{r['contender']}** (fastest)" if r is best else r["contender"]
            if r["median"] is None:
                median, ratio = r["status"], "-"
            else:
                median, ratio = _s(r["median"]), _x(r["ratio"])
            times = ", ".join(f"{t:.2f}" for t in r["times"])
            load = f"{r['load'][0]:.2f} / {r['load'][1]:.2f}"
            rss = "-" if r.get("peak_rss_mib") is None else f"{r['peak_rss_mib']:.0f}"
            lines.append(f"| {r['workload']} | {r['size']} | {name} | {median} | {ratio} | {rss} | {times} | {load} |")
        for note in group[0]["notes"]:
            entry = f"{group[0]['workload']}: {note}"
            if entry not in notes:
                notes.append(entry)
    if notes:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def _short(name: str) -> str:
    return name.replace("read_text+map+", "")


def _plain_log_axis(axis: Any, unit: str = "") -> None:
    """Log scale ticks as plain numbers (``0.5x``, ``2x``; ``1,000``), no minor labels."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _: (f"{v:,.0f}" if v >= 100 else f"{v:g}") + unit))
    axis.set_minor_formatter(NullFormatter())


def charts(payload: dict[str, Any], folder: str) -> list[str]:
    """Draw ``suite.png`` (speed-ups per workload, largest size) and ``scaling.png``; their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = _groups(payload["rows"])
    largest: dict[str, list[dict]] = {}
    for (key, _), group in groups.items():
        if key not in largest or group[0]["scale"] > largest[key][0]["scale"]:
            largest[key] = group
    cols = 3
    nrows = (len(largest) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(18, 3.2 * nrows), squeeze=False)
    for ax, group in zip(axes.flat, largest.values(), strict=False):
        timed = [r for r in group if r["ratio"] is not None]
        names = [_short(r["contender"]) for r in timed][::-1]
        ratios = [r["ratio"] for r in timed][::-1]
        ax.barh(names, ratios, color=[COLOURS[r["kind"]] for r in timed][::-1])
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.set_xscale("log")
        for y, ratio in enumerate(ratios):
            ax.annotate(f"{ratio:.2f}x", (ratio, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=7)
        ax.set_title(f"{group[0]['workload']}\n{group[0]['size']}", fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
        ax.tick_params(axis="x", labelsize=7)
        ax.set_xlim(min([*ratios, 1.0]) / 2, max([*ratios, 1.0]) * 3)
        _plain_log_axis(ax.xaxis, "x")
    for ax in list(axes.flat)[len(largest) :]:
        ax.axis("off")
    m = payload["machine"]
    fig.suptitle(
        f"Speed-up over iterabledata sequential (median of {payload['rounds']} rounds; log scale; right of 1 = faster)"
        f" - {m['cores']} cores, {m['memory']}; grey baseline, yellow iterabledata, blue iterable_dask, orange peers",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    suite = os.path.join(folder, "suite.png")
    fig.savefig(suite, dpi=90)
    plt.close(fig)

    scaled = defaultdict(list)
    for (key, _), group in groups.items():
        scaled[key].append(group)
    scaled = {k: v for k, v in scaled.items() if len(v) > 1}
    fig, axes = plt.subplots(1, max(1, len(scaled)), figsize=(7 * max(1, len(scaled)), 4.5), squeeze=False)
    for ax, sizes in zip(axes.flat, scaled.values(), strict=False):
        by_name: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
        for group in sizes:
            for r in group:
                if r["median"] is not None:
                    by_name[r["contender"]].append((r["scale"], r["median"], r["kind"]))
        others = iter(["#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"])
        for name, points in by_name.items():
            points.sort()
            kind = points[0][2]
            main = kind in ("baseline", "iterable_dask")
            colour = COLOURS[kind] if main else next(others)
            style = {"linewidth": 2.5 if main else 1.0, "linestyle": "-" if main else "--", "color": colour}
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=_short(name), **style)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks([g[0]["scale"] for g in sizes])
        _plain_log_axis(ax.xaxis)
        _plain_log_axis(ax.yaxis, " s")
        unit = "files" if sizes[0][0]["key"] == "small-files" else "rows (all files)"
        ax.set_xlabel(unit)
        ax.set_ylabel("median seconds")
        ax.set_title(sizes[0][0]["workload"], fontsize=10)
        ax.legend(fontsize=7)
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle("How cost grows with size (log-log)", fontsize=10)
    fig.tight_layout()
    scaling = os.path.join(folder, "scaling.png")
    fig.savefig(scaling, dpi=90)
    plt.close(fig)
    return [suite, scaling]


def write_report(payload: dict[str, Any], folder: str) -> list[str]:
    """Write ``suite.md``, ``suite.json``, ``suite.png`` and ``scaling.png`` into ``folder``; their paths."""
    os.makedirs(folder, exist_ok=True)
    md, js = os.path.join(folder, "suite.md"), os.path.join(folder, "suite.json")
    with open(md, "w", encoding="utf-8") as f:
        f.write(markdown(payload))
    with open(js, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=1)
    return [md, js, *charts(payload, folder)]
