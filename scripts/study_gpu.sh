#!/usr/bin/env bash
# The study's trainings on a borrowed GPU machine within one fixed time limit (issue 14).
#
#   bash scripts/study_gpu.sh JOBS DATA_ARCHIVE [TOTAL_S] [GPU_SLOTS] [CPU_SLOTS]
#
# JOBS: a job list for scripts/study_burst.py (e.g. scripts/study/spoken_digits_jobs.txt); DATA_ARCHIVE: a
# tar.xz of the built dataset folder(s) relative to the data root (`cd data && tar cJf X
# spoken_digits/spoken_digits-<key>`).  The machine needs python3 with torch (CUDA), Triton, numpy, h5py,
# pandas, matplotlib, tqdm, numba; Hydra, OmegaConf and the joblib launcher come from the wheels in
# .study_carry/ (or .wheels/) beside the tree, installed into a private folder.  GPU slots train with
# device=cuda (snnta's fused Triton kernels), CPU slots with one thread each.  The trainings stop at
# TOTAL_S (default 540) minus 75 s; runs come back as size-capped archives (scripts/pack_runs.py) in $OUT
# (else results/study_gpu/): finished runs first, then interrupted ones with their state.pt, which
# `snnta train` (or the experiment's sweep) resumes on any machine.
#   Prepare (here, once):  echo /.study_carry/ >> .git/info/exclude; mkdir -p .study_carry
#     cp .wheels/{hydra_core,omegaconf,antlr4,hydra_joblib}*.whl .study_carry/     # see bench_gpu.sh for .wheels
#     (cd data && tar cf - spoken_digits/spoken_digits-<key> | xz -T2 > ../.study_carry/spoken_digits.tar.xz)
#   Call it through the device tool with carry [".study_carry"] (64 MiB with the tree: one dataset per call).
#   Unpack here:  for f in OUT/runs_*.tar.gz; do tar xzf $f -C .; done     (into ./runs/study/...)
set -u

cd "$(dirname "$0")/.."
ROOT=$(pwd)
START=$(date +%s)
JOBS=$1
ARCHIVE=$2
TOTAL=${3:-540}
GPU_SLOTS=${4:-6}
CPU_SLOTS=${5:-9}
OUT_DIR=${OUT:-$ROOT/results/study_gpu}
mkdir -p "$OUT_DIR"
PY=${PYTHON:-python3}
SITE=/tmp/snnta_site
RUNS=/tmp/snnta/runs
LOGS=/tmp/burst_logs
exec > >(tee -a "$OUT_DIR/study_gpu.log") 2>&1

echo "== machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
nproc
"$PY" -c 'import sys, torch, triton, numpy, numba; print("python", sys.version.split()[0], "torch", torch.__version__,
"triton", triton.__version__, "numpy", numpy.__version__, "numba", numba.__version__, "cuda", torch.cuda.is_available())'

echo "== wheels"
WHEELS=$(ls .study_carry/*.whl 2>/dev/null || ls .wheels/{hydra_core,omegaconf,antlr4,hydra_joblib}*.whl)
"$PY" -m pip install -q --no-index --no-deps --no-compile --disable-pip-version-check --target "$SITE" $WHEELS
export PYTHONPATH="$ROOT:$SITE"
export PYTHONDONTWRITEBYTECODE=1

echo "== data"
mkdir -p data && tar xJf "$ARCHIVE" -C data && find data -name manifest.json
unset SNNTA_DATA   # paths.data = data (relative), as on the machine that made the archive

echo "== smoke: one training step on the GPU"
if "$PY" - <<'EOF'
import time, torch
from snnta.core.model import ModelConfig, SNNClassifier
t = time.time()
m = SNNClassifier(ModelConfig(700, 20, (256,), neuron="adlif", w_in_gain=20.0)).cuda()
x = (torch.rand(8, 250, 700, device="cuda") < 0.01).float()
logits = m(x, m.step_params(4e-3))
logits.sum().backward()
torch.cuda.synchronize()
print(f"ok: adlif step on cuda in {time.time() - t:.1f}s (first call, kernels compiled)")
EOF
then GPU_DEVICE=cuda; else GPU_DEVICE=cpu; echo "smoke failed: the GPU slots train on the CPU"; fi

echo "== trainings"
ELAPSED=$(( $(date +%s) - START ))
DEADLINE=$(( TOTAL - ELAPSED - 75 ))
echo "deadline in ${DEADLINE}s; ${GPU_SLOTS} GPU slots, ${CPU_SLOTS} CPU slots"
"$PY" scripts/study_burst.py "$JOBS" --runs "$RUNS" --logs "$LOGS" --deadline-s "$DEADLINE" \
    --gpu-slots "$GPU_SLOTS" --cpu-slots "$CPU_SLOTS" --gpu-device "$GPU_DEVICE" --grace-s 20 \
    ${STUDY_EXTRA:+--extra $STUDY_EXTRA}
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader || true

echo "== pack"
"$PY" scripts/pack_runs.py "$RUNS" "$OUT_DIR" --max-mib 12 --max-files 5
tar czf "$OUT_DIR/burst_logs.tar.gz" -C /tmp burst_logs
echo "done in $(( $(date +%s) - START ))s"
