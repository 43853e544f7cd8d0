"""Pack run folders into a few size-capped tar.gz files (to bring runs back from a borrowed machine).

    python scripts/pack_runs.py RUNS OUT [--max-mib 15] [--max-files 6]

Finished runs (no ``state.pt`` left) go first, then interrupted ones (with their ``state.pt``, so that
``snnta train`` resumes them elsewhere), most epochs first.  Each archive holds paths relative to RUNS'
parent and stays under ``--max-mib``; what does not fit in ``--max-files`` archives is listed in
``OUT/packed.json`` as left behind.  Unpack with ``tar xzf OUT/runs_0.tar.gz -C <parent of runs>``.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tarfile
from pathlib import Path


def run_folders(runs: Path) -> list[Path]:
    return sorted({p.parent for p in runs.rglob("config.yaml")})


def epochs(folder: Path) -> int:
    try:
        return len(json.loads((folder / "history.json").read_text()))
    except (OSError, ValueError):
        return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--max-mib", type=float, default=15.0)
    p.add_argument("--max-files", type=int, default=6)
    a = p.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    folders = run_folders(a.runs)
    finished = [f for f in folders if not (f / "state.pt").exists() and (f / "metrics.json").exists()]
    partial = sorted((f for f in folders if f not in finished), key=epochs, reverse=True)
    limit = int(a.max_mib * 2**20)
    archives: list[list[Path]] = [[]]
    sizes = [0]
    report = {"packed": {}, "left_behind": []}
    for folder in finished + partial:
        blob = io.BytesIO()
        with tarfile.open(fileobj=blob, mode="w:gz") as tar:
            tar.add(folder, arcname=str(folder.relative_to(a.runs.parent)))
        size = blob.tell()
        if archives[-1] and sizes[-1] + size > limit:
            if len(archives) == a.max_files:
                report["left_behind"].append(str(folder.relative_to(a.runs.parent)))
                continue
            archives.append([])
            sizes.append(0)
        archives[-1].append(folder)
        sizes[-1] += size
    for i, group in enumerate(archives):
        if not group:
            continue
        name = f"runs_{i}.tar.gz"
        with tarfile.open(a.out / name, "w:gz") as tar:
            for folder in group:
                tar.add(folder, arcname=str(folder.relative_to(a.runs.parent)))
        report["packed"][name] = [str(f.relative_to(a.runs.parent)) + ("" if f in finished else " (partial)")
                                  for f in group]
    (a.out / "packed.json").write_text(json.dumps(report, indent=1))
    packed = {f for group in archives for f in group}
    print(f"packed {len(packed & set(finished))} finished and {len(packed & set(partial))} partial runs into "
          f"{sum(bool(g) for g in archives)} archives; left behind: {len(report['left_behind'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
