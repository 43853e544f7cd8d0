#!/usr/bin/env bash
# GPU measurement in one go, on a bare GPU machine without network (issue 13):
#   1. install what the benchmark needs from the wheel files beside the tree (.wheels/, git-ignored;
#      filled with `pip download --no-deps`, see below) into a private folder (.bench_site/), never into
#      the machine's Python: its torch and Triton stay as they are;
#   2. the Triton kernel's tests and the CUDA scan tests on the GPU;
#   3. scripts/bench_triton_configs.py: the kernel's launch configurations (tf32 tensor cores or plain fp32
#      FMAs, chunk sizes, warps) timed on one population; the fastest is exported (SNNTA_TRITON_*) for the
#      rest, and one training step is profiled under it;
#   4. scripts/bench.py --device cuda for snnta and the peers ($PEERS, default: the clean loop, snnTorch and
#      SpikingJelly) at batch 64 and 256, T = 250 and 1000, all at ~30 Hz per hidden layer;
#   5. results/bench/cuda.md (the stages, the test summary, both batches) in the output folder.
# Every stage has a time limit, and all of them together at most TOTAL_S seconds (default 470: the script
# ends within 8 minutes); each writes its own log; a failing stage or peer is reported in cuda.md, not fatal.  Usage (from the repository root):
#
#   bash scripts/bench_gpu.sh [OUT_DIR]        # OUT_DIR: $1, else $OUT, else results/bench
#   PEERS=clean BENCH_T=1000 bash scripts/bench_gpu.sh   # only the clean loop beside snnta, T = 1000 (shorter)
#
# Refill the wheels (on a machine with network, same Python minor version for pyyaml):
#   pip download --no-deps -d .wheels hydra-core omegaconf snntorch==1.0.0 spikingjelly==2.0.0 loguru tqdm \
#       pytest pluggy iniconfig packaging exceptiongroup
#   pip wheel --no-deps -w .wheels antlr4-python3-runtime==4.9.3       # sdist only on PyPI: build it here
#   pip download --no-deps --only-binary=:all: --python-version 3.X --platform manylinux2014_x86_64 -d .wheels pyyaml
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT_DIR=${1:-${OUT:-$ROOT/results/bench}}
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
LOGS=$OUT_DIR/cuda_logs
mkdir -p "$LOGS"
PY=${PYTHON:-python3}
SITE=$ROOT/.bench_site
START=$(date +%s)
STATUS=$LOGS/status.txt
: > "$STATUS"

TOTAL=${TOTAL_S:-470}  # the whole run's budget (s): no stage runs past it, so the script ends within 8 minutes
stage() {  # stage NAME SECONDS CMD...: run with a time limit, log to $LOGS/NAME.log, record the outcome
  local name=$1 limit=$2; shift 2
  local t0=$(date +%s) rc=0
  local left=$(( START + TOTAL - t0 ))
  if [ "$left" -lt 5 ]; then echo "$name: skipped (the ${TOTAL}s budget is spent)" | tee -a "$STATUS"; return 0; fi
  if [ "$limit" -gt "$left" ]; then limit=$left; fi
  echo "== $name (limit ${limit}s): $*" | tee -a "$LOGS/$name.log"
  timeout --kill-after=10 "$limit" "$@" >> "$LOGS/$name.log" 2>&1 || rc=$?
  local dt=$(( $(date +%s) - t0 ))
  local what=ok
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then what="timed out after ${limit}s"; elif [ $rc -ne 0 ]; then what="failed (exit $rc)"; fi
  echo "$name: $what in ${dt}s" | tee -a "$STATUS"
  tail -n 5 "$LOGS/$name.log" | sed 's/^/    /'
  return 0
}

# --- 0. the machine
stage env 30 "$PY" -c '
import sys, torch
print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda)
assert torch.cuda.is_available(), "no CUDA device"
print("device", torch.cuda.get_device_name(0))
import triton; print("triton", triton.__version__)
'
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >> "$LOGS/env.log" 2>&1 || true

# --- 1. wheels -> .bench_site (no index, no dependencies resolved: exactly the files given)
rm -rf "$SITE"; mkdir -p "$SITE"
install_wheels() {  # one wheel at a time: a wheel for another Python (pyyaml) or a broken one skips only itself
  local w n=0
  for w in "$ROOT"/.wheels/*.whl; do
    if "$PY" -m pip install --no-index --no-deps --disable-pip-version-check --quiet --upgrade --target "$SITE" "$w"; then
      n=$((n + 1)); echo "installed $(basename "$w")"
    else
      echo "skipped $(basename "$w")"
    fi
  done
  echo "$n wheels installed into $SITE"
}
if [ -d "$ROOT/.wheels" ]; then
  export -f install_wheels; export PY ROOT SITE
  stage install 60 bash -c install_wheels
else
  echo "install: no .wheels/ folder beside the tree; peers and pytest only if the machine has them" | tee -a "$STATUS"
fi
export PYTHONPATH="$ROOT:$SITE${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1

# --- 2. the kernel tests on the GPU (and the CUDA-vs-CPU scan test)
stage tests 90 "$PY" -m pytest -p no:cacheprovider tests/core/test_triton_scan.py \
    "tests/core/test_scan.py::test_cuda_training_step_matches_cpu" -rs

# --- 3. the kernel's launch configurations; the fastest one is used from here on
stage configs 120 "$PY" scripts/bench_triton_configs.py --budget 75 --partial "$OUT_DIR/triton_configs_partial.md" \
    --out "$OUT_DIR/triton_configs.md"
BEST=$(grep -h '^BEST_ENV: ' "$LOGS/configs.log" | tail -n 1 | cut -d' ' -f2- || true)
if [ -n "$BEST" ]; then
  for kv in $BEST; do export "$kv"; done
  echo "configs: using $BEST" | tee -a "$STATUS"
else
  echo "configs: no fastest configuration found; the kernel's defaults" | tee -a "$STATUS"
fi
stage precision 30 "$PY" scripts/grad_precision.py --device cuda
stage profile 30 "$PY" scripts/bench_triton_configs.py --no-sweep --profile --out "$OUT_DIR/profile.md"

# --- 4. the benchmark: batch 64 then 256, each configuration in its own process, ~30 Hz per hidden layer
read -r -a PEER_LIST <<< "${PEERS:-clean snntorch spikingjelly}"
read -r -a T_LIST <<< "${BENCH_T:-250 1000}"
BENCH=(scripts/bench.py --device cuda --T "${T_LIST[@]}" --neurons lif adlif --peers "${PEER_LIST[@]}"
       --rates 30 --reps 3 --warmup 1 --timeout 60 --tune-tol 0.08)
stage bench_b64 ${LIMIT_B64:-150} "$PY" "${BENCH[@]}" --batch 64 --out "$OUT_DIR/cuda_b64.md"
stage bench_b256 ${LIMIT_B256:-100} "$PY" "${BENCH[@]}" --batch 256 --out "$OUT_DIR/cuda_b256.md"

# --- 4. one table file
"$PY" - "$OUT_DIR" "$STATUS" "$START" <<'EOF' || echo "merge failed" | tee -a "$STATUS"
import pathlib, sys, time
out, status, start = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), int(sys.argv[3])
parts = ["# snnta benchmark (cuda)", "",
         "Written by `scripts/bench_gpu.sh`: kernel tests on the GPU, the kernel's launch configurations "
         "(`scripts/bench_triton_configs.py`; the fastest one ran the benchmark), then `scripts/bench.py --device cuda` "
         "at batch 64 and 256 (each section below is that run's own table; GPU memory = "
         "`torch.cuda.max_memory_allocated`).", "",
         "## Stages", "", *[f"- {line}" for line in status.read_text().splitlines()],
         f"- total {time.time() - start:.0f} s", ""]
tests = out / "cuda_logs" / "tests.log"
if tests.exists():
    summary = [l for l in tests.read_text().splitlines() if " passed" in l or " failed" in l or "error" in l.lower()]
    parts += ["Kernel tests: " + (summary[-1].strip("= ") if summary else "no summary (see cuda_logs/tests.log)"), ""]
prec = out / "cuda_logs" / "precision.log"
if prec.exists():
    lines = [l for l in prec.read_text().splitlines() if "relative error" in l]
    parts += ["Float32 gradients in the kernel against a float64 CPU run (`python scripts/grad_precision.py "
              "--device cuda`, T = 1000, batch 32, 64 neurons; the CPU's float32 gives about 1e-5):", "", *[f"- {l}" for l in lines], ""]
for name, title in (("triton_configs.md", "Launch configurations"), ("profile.md", "Profile of one training step")):
    f = out / name
    if not f.exists() and name == "triton_configs.md" and (out / "triton_configs_partial.md").exists():
        f = out / "triton_configs_partial.md"
    if f.exists():
        body = f.read_text().splitlines()
        parts += [f"## {title}", "", *[("#" + l if l.startswith("#") else l) for l in body[1:]], ""]
for b in (64, 256):
    f = out / f"cuda_b{b}.md"
    if f.exists():
        body = f.read_text().splitlines()
        parts += [f"## Batch {b}", "", *[("#" + l if l.startswith("#") else l) for l in body[1:]], ""]
    else:
        parts += [f"## Batch {b}", "", "not measured (see cuda_logs/)", ""]
(out / "cuda.md").write_text("\n".join(parts))
print("wrote", out / "cuda.md")
EOF
echo "bench_gpu: done in $(( $(date +%s) - START ))s; $OUT_DIR/cuda.md, logs in $LOGS"
cat "$STATUS"
