#!/usr/bin/env bash
# Staging: a git-ignored devrun-gen/ with bin/all.tar.xz (the stripped `cuda` build of the binary) and
# this script; carried to the device tool and run as `bash devrun-gen/run.sh cold`, then `warm`.
# generate on the GPU (cuda build, demo weights) with the on-disk kernel cache; $1 = cold|warm
set -u
cd "$(dirname "$0")"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
driver=$(find /usr /lib /lib64 /opt -name 'libcuda.so.1' -not -path '*/stubs/*' 2>/dev/null | xargs -r -n1 dirname | sort -u | tr '\n' ':')
libs=$(find /usr/local/cuda-13.0 -name 'libnvrtc.so*' -not -path '*/stubs/*' 2>/dev/null | xargs -r -n1 dirname | sort -u | tr '\n' ':')
# cuBLASLt for the DiT's linears (without it they fall back to burn's matmul, with a note).
blas=$(find /usr/local/cuda-13.0 -name 'libcublasLt.so*' -not -path '*/stubs/*' 2>/dev/null | xargs -r -n1 dirname | sort -u | tr '\n' ':')
export LD_LIBRARY_PATH="${driver}${libs}${blas}${LD_LIBRARY_PATH:-}"
tar -xJf bin/all.tar.xz -C bin
export AVATAR_STUDIO_CACHE_DIR="$PWD/../target/kcache"
mkdir -p ../target
echo "cache before: $(du -sh "$AVATAR_STUDIO_CACHE_DIR" 2>/dev/null)" | tee -a "$OUT/log.txt"
run() { # name clips timeout
  echo "== $1: generate on cuda:0 (demo weights, sample assets, $2 clips)" | tee -a "$OUT/log.txt"
  start=$(date +%s%N)
  CUBECL_DEBUG_LOG="$OUT/cubecl-$1.log" timeout "$3" bin/avatar-studio generate --image ../assets/sample-portrait.png --audio ../assets/sample-voice.wav \
    --num-clip "$2" --size 384*256 --device cuda:0 --seed 5 --png-dir "$OUT/frames-$1" --json > "$OUT/events-$1.jsonl" 2> "$OUT/generate-$1.err"
  echo "rc=$? wall_ms=$(( ($(date +%s%N) - start) / 1000000 ))" | tee -a "$OUT/log.txt"
  grep -E '"finished"|"failed"|"cancelled"|"notice"' "$OUT/events-$1.jsonl" | cut -c1-400 | tee -a "$OUT/log.txt"
  grep -E '"progress"' "$OUT/events-$1.jsonl" | tail -2 | cut -c1-300 | tee -a "$OUT/log.txt"
  tail -3 "$OUT/generate-$1.err" | tee -a "$OUT/log.txt"
  echo "frames: $(ls "$OUT/frames-$1" 2>/dev/null | wc -l)" | tee -a "$OUT/log.txt"
  echo "cache after: $(du -sh "$AVATAR_STUDIO_CACHE_DIR" 2>/dev/null); files $(find "$AVATAR_STUDIO_CACHE_DIR" -type f 2>/dev/null | wc -l)" | tee -a "$OUT/log.txt"
  gzip -f "$OUT/cubecl-$1.log" 2>/dev/null
}
if [ "${1:-cold}" = cold ]; then
  run cold 1 560
else
  run warm1 2 280
  run warm2 2 250
  if cmp -s <(cat "$OUT"/frames-warm1/*.png | md5sum) <(cat "$OUT"/frames-warm2/*.png | md5sum); then echo "same seed: identical PNGs" | tee -a "$OUT/log.txt"; else echo "same seed: PNGs differ" | tee -a "$OUT/log.txt"; fi
  rm -rf "$OUT/frames-warm2"
fi
