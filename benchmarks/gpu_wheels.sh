#!/usr/bin/env bash
# Fill a wheel folder with what the offline GPU image lacks for benchmarks/gpu_check.sh. Run where the network is.
#
#   bash benchmarks/gpu_wheels.sh                        # -> ./gpu-wheels (carry it to the GPU machine)
#   bash benchmarks/gpu_wheels.sh --out DIR --python-version 3.12   # binary wheels for the image's Python
#   bash benchmarks/gpu_wheels.sh --from-installed       # no network: wheels of this machine's installed copies
#
# The folder gets: vgzoo and every plugin package under plugins/ (each folder with a pyproject.toml, found by glob,
# so a plugin added later is carried too) built as wheels from this tree; the third-party distributions the image
# lacks (benchmarks/gpu_image.py missing: kornia and its deps, click, requests, ...) at the versions installed here;
# requirements.txt naming those (unpinned: the image's own copies win where it has them) and gpu-wheels.txt (what
# was built, from which commit). gpu_check.sh installs from it with pip --no-index.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(dirname "$HERE")
OUT=$ROOT/gpu-wheels; FROM_INSTALLED=0; PYVER=""; PLATFORM=manylinux2014_x86_64
while (( $# )); do
  case $1 in
    --out) OUT=$2; shift 2;;
    --from-installed) FROM_INSTALLED=1; shift;;
    --python-version) PYVER=$2; shift 2;;
    --platform) PLATFORM=$2; shift 2;;
    -h|--help) sed -n 2,14p "$0"; exit 0;;
    *) echo "gpu_wheels.sh: unknown argument $1 (expected --out DIR, --from-installed, --python-version X.Y," \
            "--platform TAG)" >&2; exit 2;;
  esac
done
PY=${PYTHON:-python}
if [[ -e $OUT && ! -f $OUT/gpu-wheels.txt && -n $(ls -A "$OUT") ]]; then
  echo "gpu_wheels.sh: $OUT exists and is not a wheel folder this script made (no gpu-wheels.txt); pick another" \
       "--out or empty it" >&2; exit 2
fi
TMP=$(mktemp -d "${OUT%/}.tmp.XXXXXX"); trap 'rm -rf "$TMP"' EXIT

# 1. vgzoo and every plugin package, from this tree (no dependencies: the image's torch may be a local build whose
#    version no specifier matches, so gpu_check.sh installs these with --no-deps)
PKGS=("$ROOT")
for p in "$ROOT"/plugins/*/pyproject.toml; do [[ -f $p ]] && PKGS+=("$(dirname "$p")"); done
for p in "$ROOT"/plugins/*/; do
  [[ -f $p/pyproject.toml ]] || echo "gpu_wheels.sh: skipping $p (no pyproject.toml: not a package yet)" >&2
done
"$PY" -m pip wheel --no-deps --no-build-isolation --no-index -q -w "$TMP" "${PKGS[@]}"
# 2. the third-party distributions the image lacks, at the versions installed here (those this tree was tested with)
NEED_TXT=$("$PY" "$HERE/gpu_image.py" missing "$TMP")
NEED=($NEED_TXT)
OURS=$(cd "$TMP" && ls -- *.whl | cut -d- -f1 | tr '\n' ' ')
if (( FROM_INSTALLED )); then
  "$PY" "$HERE/gpu_image.py" repack "${NEED[@]}" -d "$TMP" >/dev/null
else
  PINNED=()
  for n in "${NEED[@]}"; do
    v=$("$PY" -c "import importlib.metadata as m, sys
try: print(m.version(sys.argv[1]))
except m.PackageNotFoundError: pass" "$n")
    PINNED+=("$n${v:+==$v}")
  done
  TARGET=()
  [[ -n $PYVER ]] && TARGET=(--python-version "$PYVER" --platform "$PLATFORM" --platform manylinux_2_28_x86_64)
  "$PY" -m pip download -q --no-deps --only-binary=:all: "${TARGET[@]}" -d "$TMP" "${PINNED[@]}"
fi
printf '%s\n' "${NEED[@]}" >"$TMP/requirements.txt"
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)
{ echo "# made by benchmarks/gpu_wheels.sh $(date -u +%FT%TZ) from $COMMIT" \
       "$( ((FROM_INSTALLED)) && echo '(repacked from installed distributions)')"
  echo "# ours (install with --no-deps): $OURS"
  (cd "$TMP" && sha256sum -- *.whl)
} >"$TMP/gpu-wheels.txt"
rm -rf "$OUT"; mv "$TMP" "$OUT"; trap - EXIT
echo "wrote $OUT: $(ls "$OUT" | grep -c '\.whl$') wheels ($(echo $OURS | wc -w) of vgzoo's, ${#NEED[@]} third-party);" \
     "carry it to the GPU machine and run: bash benchmarks/gpu_check.sh --wheels $OUT"
