"""Run every harness for FUZZ_SECONDS (default 60) each, FUZZ_JOBS (default 2) at a time, and report.

Environment: FUZZ_SECONDS per harness, FUZZ_JOBS harnesses in parallel, FUZZ_HARNESSES (comma-separated names,
default all), FUZZ_SEED (libFuzzer's -seed: the same mutation sequence every run; CI sets it). Each harness starts
from its seeds (fuzz/corpus/<name>) and crashers (fuzz/crashers/<name>) plus what earlier runs found
(fuzz/.work/<name>, not committed); a crash, a failed check or a slow input (over 10 s) is written to
fuzz/artifacts/<name>/ with the harness' log. Prints the executions per harness and in total; exits 1 when any
harness found something.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

from fuzz.driver import HARNESSES

FUZZ = Path(__file__).resolve().parent
ROOT = FUZZ.parent
_EXECS = re.compile(r"stat::number_of_executed_units:\s*(\d+)|Done (\d+) runs")


class Result(NamedTuple):
    name: str
    executions: int
    seconds: float
    findings: list[Path]
    returncode: int


def run(name: str, seconds: int) -> Result:
    artifacts = FUZZ / "artifacts" / name
    artifacts.mkdir(parents=True, exist_ok=True)
    work = FUZZ / ".work" / name
    work.mkdir(parents=True, exist_ok=True)
    before = set(artifacts.glob("*-*"))
    corpora = [work, FUZZ / "corpus" / name]
    if (FUZZ / "crashers" / name).is_dir():
        corpora.append(FUZZ / "crashers" / name)
    cmd = [sys.executable, "-m", "fuzz.driver", name, f"-max_len={HARNESSES[name]}", f"-max_total_time={seconds}",
           "-timeout=10", "-rss_limit_mb=2048", "-print_final_stats=1", f"-artifact_prefix={artifacts}/",
           *map(str, corpora)]  # fmt: skip
    if os.environ.get("FUZZ_SEED"):  # CI: the same mutations every run, so a red run is a regression, not luck
        cmd.insert(4, f"-seed={os.environ['FUZZ_SEED']}")
    start = time.monotonic()
    with open(artifacts / "log.txt", "w") as log:
        proc = subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=False)
    elapsed = time.monotonic() - start
    text = (artifacts / "log.txt").read_text(errors="replace")
    counts = [int(a or b) for a, b in _EXECS.findall(text)]
    findings = sorted(set(artifacts.glob("*-*")) - before)
    return Result(name, max(counts, default=0), elapsed, findings, proc.returncode)


def main() -> int:
    seconds = int(os.environ.get("FUZZ_SECONDS", "60"))
    jobs = int(os.environ.get("FUZZ_JOBS", "2"))
    names = [n for n in os.environ.get("FUZZ_HARNESSES", ",".join(HARNESSES)).split(",") if n]
    unknown = set(names) - set(HARNESSES)
    if unknown:
        print(f"unknown harnesses: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    print(f"fuzzing {len(names)} harnesses for {seconds} s each, {jobs} at a time", flush=True)
    failed = False
    total = 0
    with ThreadPoolExecutor(jobs) as pool:
        for r in pool.map(lambda n: run(n, seconds), names):
            total += r.executions
            bad = r.returncode != 0 or bool(r.findings)
            failed |= bad
            verdict = "FOUND " + ", ".join(str(p.relative_to(ROOT)) for p in r.findings) if bad else "ok"
            if bad and not r.findings:
                verdict += f"exit status {r.returncode}, see fuzz/artifacts/{r.name}/log.txt"
            print(f"{r.name:13} {r.executions:>12,} executions in {r.seconds:6.1f} s  "
                  f"({r.executions / max(r.seconds, 1e-9):8,.0f}/s)  {verdict}", flush=True)  # fmt: skip
    print(f"{'total':13} {total:>12,} executions", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
