#!/usr/bin/env bash
# vgzoo on one GPU: the CUDA tests, the predicted-break checks and the headline GPU measurements, in <= 9 minutes.
#
#   bash benchmarks/gpu_check.sh                         # on the GPU machine, from the repo root
#   bash benchmarks/gpu_check.sh --device cpu --tiny --out /tmp/dry   # the dry run the test suite does
#
# Writes OUT/ (default ./gpu-out): env.json, steps.log, one log per step, JSON per measurement, summary.json, and
# the "gpu" section of RESULTS.md (benchmarks/RESULTS.md; with --tiny or a non-CUDA device OUT/RESULTS.md, so a
# dry run never touches the committed results). Every step runs under a timeout clipped to what is left of
# DEADLINE seconds (--tiny: 4x longer step limits, for a CPU dry run); a failing step is logged and the script
# goes on.
# Needs (offline): torch (CUDA build), torchvision, timm, kornia, scikit-learn (builtin:digits), pytest.
set -u
DEVICE=cuda; TINY=0; OUT=${OUT:-$PWD/gpu-out}; DEADLINE=${DEADLINE:-540}; SCALE=1
while (( $# )); do
  case $1 in
    --device) DEVICE=$2; shift 2;;
    --tiny) TINY=1; shift;;
    --out) OUT=$2; shift 2;;
    --deadline) DEADLINE=$2; shift 2;;
    -h|--help) sed -n 2,12p "$0"; exit 0;;
    *) echo "gpu_check.sh: unknown argument $1 (expected --device D, --tiny, --out DIR, --deadline S)" >&2; exit 2;;
  esac
done
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"; : >"$OUT/steps.log"
T0=$(date +%s)
log() { echo "[$(( $(date +%s) - T0 ))s] $*" | tee -a "$OUT/steps.log"; }
step() {  # step LIMIT NAME CMD...: run under timeout, clipped to what is left of DEADLINE
  local lim=$(( $1 * SCALE )) name=$2; shift 2; local left=$(( DEADLINE - ($(date +%s) - T0) ))
  if (( left < 15 )); then log "SKIP $name (no time left)"; return; fi
  (( lim > left )) && lim=$left
  log "START $name (${lim}s)"
  timeout -k 5 "$lim" "$@" >"$OUT/$name.log" 2>&1
  log "END $name rc=$?"
}
B="--device $DEVICE --threads all --no-progress"
if (( TINY )); then
  SCALE=4  # the per-step limits are sized for the GPU; a CPU dry run on a shared machine gets 4x
  ATT="--seq-lens 32,64 --repeats 1 --budget 2 --heads 2"; ATT32="--seq-lens 32 --repeats 1 --budget 1 --heads 2"
  VIT="vit_ti16_scratch --vs-timm vit_tiny_patch16_224 --img-size 32 --batch-size 2 --repeats 1 --warmup 0"
  VITT="$VIT"; SCALING="--models vit_ti16_scratch --sizes 32,64 --batch-size 1 --repeats 1 --min-repeats 1 --budget 5"
  AUG="--batch 4 --repeats 1 --workers 0"; TRANS="--sizes 64 --repeats 1 --warmup 0 --small"; TRAIN_STEPS=3
else
  ATT="--seq-lens 256,512,1024,2048,4096,8192,16384 --repeats 10 --budget 45"
  ATT32="--seq-lens 512,2048,8192 --modes forward --repeats 5 --budget 10"
  VIT="vit_b16_scratch --vs-timm vit_base_patch16_224 --batch-size 256 --repeats 20 --warmup 5"
  VITT="vit_b16_scratch --vs-timm vit_base_patch16_224 --batch-size 128 --repeats 15 --warmup 5"
  SCALING="--sizes 224,448,672,896,1120 --batch-size 16 --repeats 10 --min-repeats 3 --budget 80"
  AUG="--repeats 7"; TRANS="--sizes 256 --repeats 5"; TRAIN_STEPS=300
fi
RESULTS="$HERE/RESULTS.md"
if (( TINY )) || [[ $DEVICE != cuda* ]]; then RESULTS="$OUT/RESULTS.md"; fi

# 0. environment: the precision settings decide what every number below means
{ command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  python -c "import json, sys, torch, kornia, timm, torchvision as tv
from vgzoo.bench.report import machine_info, sdpa_backend
from vgzoo.precision import precision_settings
json.dump({'device': sys.argv[1], 'torch': torch.__version__, 'kornia': kornia.__version__, 'timm': timm.__version__,
           'torchvision': tv.__version__, 'machine': machine_info(), 'precision': precision_settings(sys.argv[1]),
           'sdpa_backend_bf16': sdpa_backend(sys.argv[1], 'bfloat16')}, open(sys.argv[2], 'w'), indent=2)" \
    "$DEVICE" "$OUT/env.json"
} >"$OUT/env.log" 2>&1
log "env rc=$? device=$DEVICE tiny=$TINY deadline=${DEADLINE}s"

# 1. the CUDA tests (they skip, with a reason, without CUDA)
step 120 test_cuda env CUBLAS_WORKSPACE_CONFIG=:4096:8 python -m pytest -q -rs -p no:cacheprovider tests/test_cuda.py
# 2. the predicted breaks: fp16 AMP overflow, resume (default kernels / deterministic), syncs, transforms, batching
step 110 checks env CUBLAS_WORKSPACE_CONFIG=:4096:8 python "$HERE/gpu_checks.py" "$OUT/checks.json" \
  --device "$DEVICE" $( (( TINY )) && echo --tiny )
# 3. attention alone: naive vs SDPA backends in bf16 up to S = 16k with memory; fp32 (flash/cuDNN skipped, with why)
step 80 attn_bf16 vgzoo bench attention $B --dtype bfloat16 $ATT --out "$OUT/attn_bf16" --json
step 25 attn_fp32 vgzoo bench attention $B --dtype float32 $ATT32 --out "$OUT/attn_fp32" --json
# 4. ViT-B/16 vs timm, bf16 autocast, alternating: batch 256 inference, 128 training
step 50 vitb_infer vgzoo bench model $VIT $B --amp --amp-dtype bfloat16 --out "$OUT/vitb_infer" --json
step 50 vitb_train vgzoo bench model $VITT $B --amp --amp-dtype bfloat16 --train --out "$OUT/vitb_train" --json
# 5. the scaling sweep past the S = 6D crossovers (543 / 768 / 1086 px) at batch 16, bf16
step 110 scaling vgzoo bench scaling $B --amp-dtype bfloat16 $SCALING --out "$OUT/scaling" --json
# 6. Kornia batched on the device vs torchvision v2 per sample in DataLoader workers on the CPU
step 60 augment python "$HERE/bench_augment.py" --device "$DEVICE" $AUG --part1-only --no-write \
  --json "$OUT/augment.json"
# 7. CycleGAN batched vs separate passes at 256 px (and bf16 vs fp32)
step 60 translation python "$HERE/bench_translation_step.py" --device "$DEVICE" $TRANS --no-pix2pix --no-write
# 8. the trainer: wall time of a cGAN run (RESULTS.md 'train' has the CPU ms/step)
S=$(date +%s)
step 60 train_cgan vgzoo train cgan_embed_digits --data builtin:digits --device "$DEVICE" --steps "$TRAIN_STEPS" \
  --out "$OUT/runs/cgan" --no-progress
echo "{\"steps\": $TRAIN_STEPS, \"wall_s\": $(( $(date +%s) - S ))}" >"$OUT/train_cgan.json"
# 9. compile: graph breaks and recompiles (skipped in the dry run)
if (( ! TINY )); then
  step 90 compile env TORCH_LOGS=recompiles,graph_breaks vgzoo train cgan_embed_digits --data builtin:digits \
    --device "$DEVICE" --steps 40 --compile --out "$OUT/runs/cgan_compile" --no-progress
fi
# 10. summary.json and the RESULTS.md section
python "$HERE/gpu_report.py" "$OUT" --results "$RESULTS" >"$OUT/report.log" 2>&1
log "report rc=$? -> $OUT/summary.json, section 'gpu' of $RESULTS"
