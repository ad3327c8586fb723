"""Print the figures of bench/results/*.json as the Markdown tables of docs/BENCHMARKS.md."""

from __future__ import annotations

import json

from common import RESULTS, SIZES


def _load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _cpu(run: dict, part: str = "workers") -> str:
    cpu = run.get("cpu_ms_per_transition")
    return f"{cpu[part]:.2f}" if cpu and cpu.get(part) else "–"


def transitions() -> list[str]:
    """Engine against floor per backend, size and client count."""
    lines = [
        "| backend | requests | clients | engine /s | p50 ms | p95 ms | p99 ms | floor /s "
        "| floor p95 ms | engine ÷ floor | worker CPU ms/transition (engine · floor) "
        "| PostgreSQL CPU ms/transition (engine · floor) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for backend in ("sqlite", "postgres"):
        for size in SIZES:
            data = _load(f"http_{backend}_{size}")
            if not data:
                continue
            for clients, row in data["transitions"].items():
                e, f = row["engine"], row["floor"]
                lines.append(
                    f"| {backend} | {data['requests']:,} | {clients} | {e['per_second']:.0f} "
                    f"| {e['p50_ms']:.1f} | {e['p95_ms']:.1f} | {e['p99_ms']:.1f} "
                    f"| {f['per_second']:.0f} | {f['p95_ms']:.1f} "
                    f"| {row['engine_over_floor']:.2f} | {_cpu(e)} · {_cpu(f)} "
                    f"| {_cpu(e, 'postgres')} · {_cpu(f, 'postgres')} |"
                )
    return lines


def lists() -> list[str]:
    """List and search p95 per size, with the ratio to the smallest size."""
    lines = ["| backend | query (as) | " + " | ".join(f"p95 at {s}" for s in SIZES) + " | ratio |"]
    lines.append("|---|---|" + "---|" * len(SIZES) + "---|")
    for backend in ("sqlite", "postgres"):
        runs = {s: _load(f"http_{backend}_{s}") for s in SIZES}
        runs = {s: r for s, r in runs.items() if r}
        if not runs:
            continue
        first, last = next(iter(runs.values())), list(runs.values())[-1]
        for name in first["lists"]:
            cells = [f"{runs[s]['lists'][name]['p95_ms']:.1f}" if s in runs else "–" for s in SIZES]
            ratio = last["lists"][name]["p95_ms"] / first["lists"][name]["p95_ms"]
            lines.append(f"| {backend} | {name} | " + " | ".join(cells) + f" | {ratio:.2f} |")
    return lines


def list_growth() -> list[str]:
    """List and search p95 at the smallest and largest size, measured side by side."""
    lines = ["| backend | query (as) | smaller | p95 ms | larger | p95 ms | ratio |"]
    lines.append("|---|---|---|---|---|---|---|")
    for path in sorted(RESULTS.glob("list_growth_*.json")):
        data = json.loads(path.read_text())
        small, large = data["sizes"]
        for name, row in data["lists"].items():
            lines.append(
                f"| {data['backend']} | {name} | {small} | {row[small]['p95_ms']:.1f} "
                f"| {large} | {row[large]['p95_ms']:.1f} | {row['p95_ratio']:.2f} |"
            )
    return lines


def memory() -> list[str]:
    """Worker memory after the runs."""
    lines = ["| backend | requests | worker RSS MiB (after load) | peak MiB |", "|---|---|---|---|"]
    for backend in ("sqlite", "postgres"):
        for size in SIZES:
            data = _load(f"http_{backend}_{size}")
            if data:
                rss = " / ".join(f"{w['rss_mib']:.0f}" for w in data["memory_after"])
                peak = " / ".join(f"{w['peak_rss_mib']:.0f}" for w in data["memory_after"])
                lines.append(f"| {backend} | {data['requests']:,} | {rss} | {peak} |")
    return lines


def audit() -> list[str]:
    """audit verify against its floors (medians; each run's ratio where several were made)."""
    lines = [
        "| backend | entries | verify /s | raw sha256 /s | verify ÷ raw | each run's verify ÷ raw "
        "| read+hash /s | verify ÷ read+hash |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for backend in ("sqlite", "postgres"):
        for size in SIZES:
            d = _load(f"audit_verify_{backend}_{size}")
            if d:
                lines.append(
                    f"| {backend} | {d['entries']:,} | {d['verify_entries_per_second']:,} "
                    f"| {d['raw_sha256_entries_per_second']:,} | {d['verify_over_raw']:.3f} "
                    f"| {' · '.join(f'{r:.2f}' for r in d.get('verify_over_raw_runs', [])) or '–'} "
                    f"| {d['read_and_hash_entries_per_second']:,} "
                    f"| {d['verify_over_read_and_hash']:.2f} |"
                )
    return lines


def micro() -> list[str]:
    """Quota and available_events against ledger and history size."""
    lines = []
    for backend in ("sqlite", "postgres"):
        d = _load(f"engine_micro_{backend}")
        if not d:
            continue
        lines += [
            f"{backend}:",
            "",
            "| ledger entries | quota overview µs (ratio) | decide µs (ratio) "
            "| available_events µs (ratio) |",
            "|---|---|---|---|",
        ]
        for r in d["ledger"]:
            lines.append(
                f"| {r['entries']:,} | {r['overview_us']:.0f} ({r['overview_ratio']}) "
                f"| {r['decide_us']:.0f} ({r['decide_ratio']}) "
                f"| {r['available_events_us']:.0f} ({r['available_events_ratio']}) |"
            )
        lines += ["", "| history entries | available_events µs (ratio) |", "|---|---|"]
        for r in d["history"]:
            lines.append(
                f"| {r['entries']:,} | {r['available_events_us']:.0f} "
                f"({r['available_events_ratio']}) |"
            )
        lines.append("")
    return lines


def main() -> None:
    """Print every table."""
    for title, table in (
        ("Transitions", transitions()),
        ("Lists and search", lists()),
        ("Lists and search, both sizes side by side", list_growth()),
        ("Memory", memory()),
        ("Audit verify", audit()),
        ("Quota and available events", micro()),
    ):
        print(f"\n### {title}\n")
        print("\n".join(table))


if __name__ == "__main__":
    main()
