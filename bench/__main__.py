"""Run the benchmarks and print a markdown table (written to bench/results/)."""

from __future__ import annotations

import argparse
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def header() -> str:
    import celery
    import langchain_core
    import langgraph  # noqa: F401 - reference implementation, benchmark only
    from importlib.metadata import version

    return (
        f"machine: {platform.machine()} {platform.processor() or ''}, {__import__('os').cpu_count()} cores, "
        f"Python {platform.python_version()}; lgdist {version('lgdist')}, langgraph {version('langgraph')}, "
        f"celery {celery.__version__}, langchain-core {langchain_core.__version__}; "
        f"{datetime.now(timezone.utc).isoformat(timespec='seconds')}"
    )


def met(r: dict) -> str:
    """Whether a row meets its target: ratio <= target, or >= target for rows
    marked ``higher_is_better`` (speedups); "-" for rows without a target."""
    ratio = r["lgdist"] / r["reference"] if r["reference"] else float("nan")
    if r.get("target") is None or ratio != ratio:
        return "-"
    return "yes" if (ratio >= r["target"] if r.get("higher_is_better") else ratio <= r["target"]) else "no"


def table(rows: list[dict]) -> str:
    lines = ["| workload | lgdist | reference | ratio | target | met |", "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        ratio = r["lgdist"] / r["reference"] if r["reference"] else float("nan")
        reference = f"{r['reference']:.3f} {r['unit']}" if r["reference"] == r["reference"] else "-"
        target = "-" if r.get("target") is None else f"{'>=' if r.get('higher_is_better') else '<='} {r['target']}x"
        lines.append(
            f"| {r['workload']} | {r['lgdist']:.3f} {r['unit']} | {reference} | "
            f"{'-' if ratio != ratio else f'{ratio:.2f}x'} | {target} | {met(r)} |"
        )
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    rows = [r for r in rows if met(r) != "-"]
    fig, ax = plt.subplots(figsize=(10, 0.5 * len(rows) + 1.5))
    names = [r["workload"] for r in rows]
    ratios = [r["lgdist"] / r["reference"] for r in rows]
    ax.barh(names, ratios, color=["tab:green" if met(r) == "yes" else "tab:red" for r in rows])
    for r, y in zip(rows, range(len(rows))):
        ax.plot([r["target"], r["target"]], [y - 0.4, y + 0.4], color="black")
    ax.set_xlabel("lgdist / reference (lower is better, speedups higher; black line = target)")
    fig.tight_layout()
    fig.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    from bench import conversation, distributed, growing_state, local, round_trips, server

    rows: list[dict] = []
    for module in (local, round_trips, distributed, growing_state, conversation, server):
        t0 = time.perf_counter()
        rows += module.run(args.quick)
        print(f"[bench] {module.__name__}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    text = f"# lgdist benchmarks{' (quick)' if args.quick else ''}\n\n{header()}\n\n{table(rows)}\n"
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "quick" if args.quick else "full"
    (RESULTS / f"{name}.md").write_text(text)
    plot(rows, RESULTS / f"{name}.png")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
