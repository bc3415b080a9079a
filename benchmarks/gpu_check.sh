#!/usr/bin/env bash
# vgzoo on one offline GPU machine: install from a wheel folder, then the CUDA tests, the predicted-break checks and
# the headline GPU measurements, all within DEADLINE seconds (540).
#
#   bash benchmarks/gpu_wheels.sh                        # first, where the network is: fills ./gpu-wheels
#   bash benchmarks/gpu_check.sh                         # on the GPU machine, from the repo root (./gpu-wheels)
#   bash benchmarks/gpu_check.sh --plan                  # the steps and their time caps; runs nothing
#   bash benchmarks/gpu_check.sh --device cpu --tiny --no-install --out /tmp/dry   # the test suite's dry run
#
# Options: --wheels DIR (default ./gpu-wheels), --no-install (vgzoo is installed already), --install-only, --out DIR
# (default ./gpu-out), --deadline S, --device D, --tiny (dry-run sizes, 4x longer caps for a loaded CPU).
# The install is pip --no-index --no-deps from the wheel folder into the current Python (the GPU image): the
# third-party wheels named by requirements.txt (a package the image has is kept), then vgzoo and the plugins
# (--force-reinstall). No dependency resolution: gpu_wheels.sh carried every dependency the image lacks, and
# resolving kornia's would re-resolve the image's own torch (a local build, CUDA libraries outside pip) and fail.
# Writes OUT/: env.json, steps.log, one log per step, JSON per measurement, summary.json, and the "gpu" section of
# RESULTS.md (benchmarks/RESULTS.md; with --tiny or a non-CUDA device OUT/RESULTS.md, so a dry run never touches the
# committed results). Each step has a cap, the caps add up to at most the deadline, and a step is asked to stop
# (SIGINT: the benches and the trainer keep what they measured, gpu_checks.py rewrites its JSON after every check)
# GRACE seconds (a quarter of a short cap) before its cap and killed at it. A failing step is logged, the script
# goes on.
set -u
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(dirname "$HERE")
DEVICE=cuda; TINY=0; OUT=${OUT:-$PWD/gpu-out}; DEADLINE=${DEADLINE:-540}; SCALE=1; GRACE=8
WHEELS=$ROOT/gpu-wheels; INSTALL=1; INSTALL_ONLY=0; PLAN=0
while (( $# )); do
  case $1 in
    --device) DEVICE=$2; shift 2;;
    --tiny) TINY=1; SCALE=4; shift;;
    --out) OUT=$2; shift 2;;
    --deadline) DEADLINE=$2; shift 2;;
    --wheels) WHEELS=$2; shift 2;;
    --no-install) INSTALL=0; shift;;
    --install-only) INSTALL_ONLY=1; shift;;
    --plan) PLAN=1; shift;;
    -h|--help) sed -n 2,21p "$0"; exit 0;;
    *) echo "gpu_check.sh: unknown argument $1 (expected --device D, --tiny, --out DIR, --deadline S, --wheels DIR," \
            "--no-install, --install-only, --plan)" >&2; exit 2;;
  esac
done
PY=${PYTHON:-python}
export PY WHEELS OUT DEVICE  # read by the functions that step runs in a child bash
VG="$PY -m vgzoo"  # not the `vgzoo` script: the image's scripts folder need not be on PATH

# The steps: name, cap in seconds (GPU sizes; --tiny multiplies by SCALE). The sum must fit the deadline.
CAPS=(install 40  env 20  test_cuda 90  checks 60  attn_bf16 45  attn_fp32 15  vitb_infer 30  vitb_train 35
      scaling 55  augment 30  translation 30  train_cgan 35  compile 40  report 15)
TOTAL=0; for (( i = 1; i < ${#CAPS[@]}; i += 2 )); do TOTAL=$(( TOTAL + CAPS[i] * SCALE )); done
cap() {  # cap NAME: the step's cap in seconds
  local i
  for (( i = 0; i < ${#CAPS[@]}; i += 2 )); do
    [[ ${CAPS[i]} == "$1" ]] && { echo $(( CAPS[i+1] * SCALE )); return; }
  done
}
if (( PLAN )); then
  for (( i = 0; i < ${#CAPS[@]}; i += 2 )); do echo "${CAPS[i]} $(( CAPS[i+1] * SCALE ))"; done
  echo "total $TOTAL deadline $DEADLINE"; exit 0
fi
if (( TOTAL > DEADLINE )); then
  echo "gpu_check.sh: the step caps add up to ${TOTAL}s, past the ${DEADLINE}s deadline; raise --deadline" >&2; exit 2
fi

mkdir -p "$OUT"; : >"$OUT/steps.log"
T0=$(date +%s)
log() { echo "[$(( $(date +%s) - T0 ))s] $*" | tee -a "$OUT/steps.log"; }
RC=0
step() {  # step NAME CMD...: run under its cap (clipped to what is left of DEADLINE); RC holds its exit code
  local name=$1; shift; local lim; lim=$(cap "$name"); local left=$(( DEADLINE - ($(date +%s) - T0) ))
  RC=124
  if (( left < 10 )); then log "SKIP $name (no time left)"; return; fi
  (( lim > left )) && lim=$left
  local grace=$(( lim / 4 < GRACE ? lim / 4 : GRACE ))  # a short step keeps most of its cap
  log "START $name (${lim}s)"
  if declare -F "$1" >/dev/null; then set -- bash -c "$(declare -f "$1"); $1"; fi  # a function of this script
  timeout -s INT -k "$grace" $(( lim - grace )) "$@" >"$OUT/$name.log" 2>&1
  RC=$?
  log "END $name rc=$RC$( ((RC == 124 || RC == 137)) && echo ' (time limit: partial results kept)')"
}

# 0. install what the image lacks, offline, from the wheel folder gpu_wheels.sh filled
install() {
  if [[ ! -f $WHEELS/requirements.txt ]]; then
    echo "no wheel folder at $WHEELS (requirements.txt missing): run 'bash benchmarks/gpu_wheels.sh' where the" \
         "network is and bring the folder along (or pass --wheels DIR, or --no-install where vgzoo is installed)"
    return 2
  fi
  local ours=("$WHEELS"/vgzoo-*.whl "$WHEELS"/vgzoo_*.whl)
  "$PY" -m pip install --no-index --no-deps --find-links "$WHEELS" -r "$WHEELS/requirements.txt" &&
  "$PY" -m pip install --no-index --no-deps --force-reinstall "${ours[@]}" || return
  "$PY" -m pip check || echo "(pip check: the lines above are for the record; the imports below decide)"
  "$PY" -c "import kornia, vgzoo
print('vgzoo', vgzoo.__version__, 'kornia', kornia.__version__, 'models', len(vgzoo.list_models()))"
}
if (( INSTALL )); then
  step install install
  if (( RC != 0 )); then
    tail -n 3 "$OUT/install.log" >&2; log "install failed (see $OUT/install.log): every vgzoo step would fail"; exit 1
  fi
fi
(( INSTALL_ONLY )) && { log "installed; --install-only: done"; exit 0; }

B="--device $DEVICE --threads all --no-progress"
if (( TINY )); then
  ATT="--seq-lens 32,64 --repeats 1 --budget 2 --heads 2"; ATT32="--seq-lens 32 --repeats 1 --budget 1 --heads 2"
  VIT="vit_ti16_scratch --vs-timm vit_tiny_patch16_224 --img-size 32 --batch-size 2 --repeats 1 --warmup 0"
  VITT="$VIT"; SCALING="--models vit_ti16_scratch --sizes 32,64 --batch-size 1 --repeats 1 --min-repeats 1 --budget 5"
  AUG="--batch 4 --repeats 1 --workers 0"; TRANS="--sizes 64 --repeats 1 --warmup 0 --small"; TRAIN_STEPS=3
else  # inner budgets about two thirds of each cap: start-up and the last point fit in the rest
  ATT="--seq-lens 256,512,1024,2048,4096,8192,16384 --repeats 10 --budget 25"
  ATT32="--seq-lens 512,2048,8192 --modes forward --repeats 5 --budget 5"
  VIT="vit_b16_scratch --vs-timm vit_base_patch16_224 --batch-size 256 --repeats 10 --warmup 3"
  VITT="vit_b16_scratch --vs-timm vit_base_patch16_224 --batch-size 128 --repeats 8 --warmup 3"
  SCALING="--sizes 224,448,672,896,1120 --batch-size 16 --repeats 10 --min-repeats 3 --budget 35"
  AUG="--repeats 5"; TRANS="--sizes 256 --repeats 5"; TRAIN_STEPS=300
fi
RESULTS="$HERE/RESULTS.md"
if (( TINY )) || [[ $DEVICE != cuda* ]]; then RESULTS="$OUT/RESULTS.md"; fi

# 1. environment: the precision settings decide what every number below means
env_json() {
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  "$PY" -c "import json, sys, torch, kornia, timm, torchvision as tv
from vgzoo.bench.envelope import machine_info, sdpa_backend
from vgzoo.precision import precision_settings
json.dump({'device': sys.argv[1], 'torch': torch.__version__, 'kornia': kornia.__version__, 'timm': timm.__version__,
           'torchvision': tv.__version__, 'machine': machine_info(), 'precision': precision_settings(sys.argv[1]),
           'sdpa_backend_bf16': sdpa_backend(sys.argv[1], 'bfloat16')}, open(sys.argv[2], 'w'), indent=2)" \
    "$DEVICE" "$OUT/env.json"
}
step env env_json
# 2. the CUDA tests (they skip, with a reason, without CUDA)
step test_cuda env CUBLAS_WORKSPACE_CONFIG=:4096:8 "$PY" -m pytest -q -rs -p no:cacheprovider tests/test_cuda.py
# 3. the predicted breaks: fp16 AMP overflow, resume (default kernels / deterministic), syncs, transforms, batching
step checks env CUBLAS_WORKSPACE_CONFIG=:4096:8 "$PY" "$HERE/gpu_checks.py" "$OUT/checks.json" \
  --device "$DEVICE" $( (( TINY )) && echo --tiny )
# 4. attention alone: naive vs SDPA backends in bf16 up to S = 16k with memory; fp32 (flash/cuDNN skipped, with why)
step attn_bf16 $VG bench attention $B --dtype bfloat16 $ATT --out "$OUT/attn_bf16" --json
step attn_fp32 $VG bench attention $B --dtype float32 $ATT32 --out "$OUT/attn_fp32" --json
# 5. ViT-B/16 vs timm, bf16 autocast, alternating: batch 256 inference, 128 training
step vitb_infer $VG bench model $VIT $B --amp --amp-dtype bfloat16 --out "$OUT/vitb_infer" --json
step vitb_train $VG bench model $VITT $B --amp --amp-dtype bfloat16 --train --out "$OUT/vitb_train" --json
# 6. the scaling sweep past the S = 6D crossovers (543 / 768 / 1086 px) at batch 16, bf16
step scaling $VG bench scaling $B --amp-dtype bfloat16 $SCALING --out "$OUT/scaling" --json
# 7. Kornia batched on the device vs torchvision v2 per sample in DataLoader workers on the CPU
step augment "$PY" "$HERE/bench_augment.py" --device "$DEVICE" $AUG --part1-only --no-write --json "$OUT/augment.json"
# 8. CycleGAN batched vs separate passes at 256 px (and bf16 vs fp32)
step translation "$PY" "$HERE/bench_translation_step.py" --device "$DEVICE" $TRANS --no-pix2pix --no-write
# 9. the trainer (its defaults on this device: amp auto, TF32, fused Adam): wall time of a cGAN run; the result file
#    only when the run finished
S=$(date +%s)
step train_cgan $VG train cgan_embed_digits --data builtin:digits --device "$DEVICE" --steps "$TRAIN_STEPS" \
  --out "$OUT/runs/cgan" --overwrite --no-progress
if (( RC == 0 )); then
  echo "{\"steps\": $TRAIN_STEPS, \"wall_s\": $(( $(date +%s) - S ))}" >"$OUT/train_cgan.json"
else
  rm -f "$OUT/train_cgan.json"
fi
# 10. compile: graph breaks and recompiles of a compiled cGAN run (skipped in the dry run: inductor on a CPU is slow)
if (( ! TINY )); then
  step compile env TORCH_LOGS=recompiles,graph_breaks $VG train cgan_embed_digits --data builtin:digits \
    --device "$DEVICE" --steps 20 --compile --out "$OUT/runs/cgan_compile" --overwrite --no-progress
fi
# 11. summary.json and the RESULTS.md section (whatever the steps left, missing ones marked)
step report "$PY" "$HERE/gpu_report.py" "$OUT" --results "$RESULTS"
log "done in $(( $(date +%s) - T0 ))s of ${DEADLINE}s; summary: $OUT/summary.json, section 'gpu' of $RESULTS"
