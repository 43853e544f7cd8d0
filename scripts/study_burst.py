"""Run a list of the study's training jobs on one machine's GPU and CPU cores until a deadline.

    python scripts/study_burst.py JOBS --runs RUNS --logs LOGS --deadline-s 470 [--gpu-slots 4] [--cpu-slots 10]

Made for a borrowed GPU machine with a fixed time limit (scripts/study_gpu.sh calls it), usable anywhere.
``JOBS`` has one job per line, ``<queue> <snnta train overrides...>`` with queue ``gpu`` or ``cpu``
(``#`` starts a comment); each job runs as its own process

    python -m snnta.cli train -m hydra/launcher=basic <overrides> paths.runs=RUNS device=<dev> threads=1

so it writes the same run folder as the experiment's sweep (``RUNS/study/<dataset>/train/<run_name>``): the
sweep run later on another machine reports it finished, or resumes it from its last complete epoch.
GPU slots take ``gpu`` jobs in file order, then ``cpu`` jobs; CPU slots take only ``cpu`` jobs.  At the
deadline every running job gets SIGTERM (snnta keeps the last complete epoch in ``state.pt``), then SIGKILL
after ``--grace-s``.  ``LOGS/burst.json`` records each job: queue, device, start, end, exit status.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def read_jobs(path: Path) -> list[tuple[str, list[str]]]:
    jobs = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        queue, *args = shlex.split(line)
        if queue not in ("gpu", "cpu"):
            raise SystemExit(f"{path}:{n}: queue must be gpu or cpu, not {queue!r}")
        jobs.append((queue, args))
    return jobs


def job_name(args: list[str]) -> str:
    return "_".join(a.split("=", 1)[1].replace("/", "-").replace("[", "").replace("]", "").replace(",", "-")
                    for a in args if "=" in a)[:120]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("jobs", type=Path)
    p.add_argument("--runs", type=Path, required=True)
    p.add_argument("--logs", type=Path, required=True)
    p.add_argument("--deadline-s", type=float, required=True, help="seconds from now until SIGTERM")
    p.add_argument("--gpu-slots", type=int, default=4)
    p.add_argument("--cpu-slots", type=int, default=10)
    p.add_argument("--gpu-device", default="cuda", help="device of the GPU slots (cpu for a dry run)")
    p.add_argument("--grace-s", type=float, default=25.0)
    p.add_argument("--extra", nargs="*", default=[], help="overrides appended to every job (dry runs)")
    a = p.parse_args(argv)
    t0 = time.monotonic()
    a.logs.mkdir(parents=True, exist_ok=True)
    queues = {"gpu": [], "cpu": []}
    for i, (queue, args) in enumerate(read_jobs(a.jobs)):
        queues[queue].append({"id": i, "queue": queue, "args": args, "name": f"{i:02d}_{job_name(args)}"})
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    running: dict[int, tuple[subprocess.Popen, dict]] = {}
    records: list[dict] = []
    slots = {"gpu": a.gpu_slots, "cpu": a.cpu_slots}

    def start(job: dict, slot: str) -> None:
        device = a.gpu_device if slot == "gpu" else "cpu"
        cmd = [sys.executable, "-m", "snnta.cli", "train", "-m", "hydra/launcher=basic", *job["args"],
               f"paths.runs={a.runs}", f"device={device}", "threads=1", "progress=false", *a.extra]
        log = open(a.logs / f"{job['name']}.log", "w")
        print("$ " + shlex.join(cmd[2:]), file=log, flush=True)
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        job.update(slot=slot, device=device, start_s=round(time.monotonic() - t0, 1))
        running[proc.pid] = (proc, job)
        print(f"[{time.monotonic() - t0:6.0f}s] start {job['name']} on {device}", flush=True)

    def write() -> None:
        tmp = a.logs / "burst.json.tmp"
        tmp.write_text(json.dumps({"records": records, "running": [j for _, j in running.values()],
                                   "pending": queues["gpu"] + queues["cpu"]}, indent=1))
        tmp.replace(a.logs / "burst.json")

    stopping = False
    while True:
        now = time.monotonic() - t0
        for pid, (proc, job) in list(running.items()):
            rc = proc.poll()
            if rc is not None:
                del running[pid]
                job.update(end_s=round(now, 1), rc=rc, stopped=stopping)
                records.append(job)
                print(f"[{now:6.0f}s] end {job['name']} rc={rc} after {now - job['start_s']:.0f}s", flush=True)
        if not stopping and now >= a.deadline_s:
            stopping = True
            print(f"[{now:6.0f}s] deadline: SIGTERM to {len(running)} jobs", flush=True)
            for proc, _ in running.values():
                os.killpg(proc.pid, signal.SIGTERM)
        if stopping:
            if not running:
                break
            if now >= a.deadline_s + a.grace_s:
                for proc, _ in running.values():
                    os.killpg(proc.pid, signal.SIGKILL)
        else:
            busy = {"gpu": 0, "cpu": 0}
            for _, job in running.values():
                busy[job["slot"]] += 1
            for slot in ("gpu", "cpu"):
                while busy[slot] < slots[slot]:
                    source = queues["gpu"] or queues["cpu"] if slot == "gpu" else queues["cpu"]
                    if not source:
                        break
                    start(source.pop(0), slot)
                    busy[slot] += 1
            if not running and not queues["gpu"] and not queues["cpu"]:
                break
        write()
        time.sleep(1.0)
    write()
    done = sum(r["rc"] == 0 and not r["stopped"] for r in records)
    print(f"[{time.monotonic() - t0:6.0f}s] {done} jobs finished, {len(records) - done} stopped or failed, "
          f"{len(queues['gpu']) + len(queues['cpu'])} not started", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
