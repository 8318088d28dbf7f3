"""`python -m bench [NAME ...]`: run the benchmarks and print one table.

Each module bench/bench_<name>.py exposes ``rows() -> list[Row]``. Ratios are ours / reference measured in the
same process on the same machine (below 1.0: we are faster). Timing never fails CI.
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
from pathlib import Path

from bench.common import Row

ORDER = ["gsm7", "m3ua", "sccp", "tcap", "map", "fullstack", "dialogue_table"]


def _modules(selected: list[str]) -> list[str]:
    found = sorted(p.stem.removeprefix("bench_") for p in Path(__file__).parent.glob("bench_*.py"))
    names = [n for n in ORDER if n in found] + [n for n in found if n not in ORDER]
    return [n for n in names if not selected or n in selected]


def _fmt(us: float) -> str:
    return f"{us:.2f}" if us < 100 else f"{us:.0f}"


def render(rows: list[Row]) -> str:
    refs: list[str] = []
    for row in rows:
        refs.extend(r for r in row.refs if r not in refs)
    head = ["case", "ours µs/op", *[f"{r} µs/op (ratio)" for r in refs], "target", "met"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row.case, _fmt(row.ours_us)]
        for r in refs:
            ref = row.refs.get(r)
            cells.append(f"{_fmt(ref)} ({row.ours_us / ref:.2f})" if ref else "")
        cells += [row.target, "" if row.met is None else ("yes" if row.met else "NO")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def update_readme(table: str, readme: Path) -> None:
    """Replace the table between the bench-table markers of the README."""
    text = readme.read_text()
    start = text.index("<!-- bench-table -->") + len("<!-- bench-table -->")
    end = text.index("<!-- /bench-table -->")
    readme.write_text(text[:start] + "\n" + table + "\n" + text[end:])


def main(argv: list[str]) -> int:
    update = "--update-readme" in argv
    argv = [a for a in argv if a != "--update-readme"]
    rows: list[Row] = []
    for name in _modules(argv):
        module = importlib.import_module(f"bench.bench_{name}")
        print(f"# running bench_{name} ...", file=sys.stderr, flush=True)
        rows.extend(module.rows())
    header = f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores"
    table = render(rows)
    print(header)
    print(table)
    if update:
        update_readme(f"{header}\n\n{table}", Path(__file__).resolve().parent.parent / "README.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
