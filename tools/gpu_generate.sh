#!/usr/bin/env bash
# Staging: a git-ignored devrun-gen/ with bin/all.tar.xz (the stripped `cuda` build of the binary,
# `cargo build --no-default-features --features cuda --bin avatar-studio`) and fixtures/; carried
# to the device tool, run as `bash devrun-gen/run.sh`.
# generate and the end-to-end pipeline parity on the GPU (cuda build, demo weights).
set -u
cd "$(dirname "$0")"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
driver=$(find /usr /lib /lib64 /opt -name 'libcuda.so.1' -not -path '*/stubs/*' 2>/dev/null | xargs -r -n1 dirname | sort -u | tr '\n' ':')
libs=$(find /usr/local/cuda-13.0 -name 'libnvrtc.so*' -not -path '*/stubs/*' 2>/dev/null | xargs -r -n1 dirname | sort -u | tr '\n' ':')
export LD_LIBRARY_PATH="${driver}${libs}${LD_LIBRARY_PATH:-}"
tar -xJf bin/all.tar.xz -C bin
export FIXTURES_DIR="$PWD/fixtures"
echo "== generate on cuda:0 (demo weights, sample assets, 2 clips)" | tee -a "$OUT/log.txt"
start=$(date +%s%N)
timeout 300 bin/avatar-studio generate --image ../assets/sample-portrait.png --audio ../assets/sample-voice.wav \
  --num-clip 2 --size 384*256 --device cuda:0 --seed 5 --png-dir "$OUT/frames" --json > "$OUT/events.jsonl" 2> "$OUT/generate.err"
echo "rc=$? wall_ms=$(( ($(date +%s%N) - start) / 1000000 ))" | tee -a "$OUT/log.txt"
grep -E '"planned"|"finished"|"failed"|"cancelled"' "$OUT/events.jsonl" | cut -c1-400 | tee -a "$OUT/log.txt"
tail -5 "$OUT/generate.err" | tee -a "$OUT/log.txt"
ls "$OUT/frames" | wc -l | tee -a "$OUT/log.txt"
echo "== second run, same seed (warm autotune cache on disk)" | tee -a "$OUT/log.txt"
start=$(date +%s%N)
timeout 200 bin/avatar-studio generate --image ../assets/sample-portrait.png --audio ../assets/sample-voice.wav \
  --num-clip 2 --size 384*256 --device cuda:0 --seed 5 --png-dir "$OUT/frames2" --json > "$OUT/events2.jsonl" 2>&1
echo "rc=$? wall_ms=$(( ($(date +%s%N) - start) / 1000000 ))" | tee -a "$OUT/log.txt"
grep -E '"finished"|"failed"' "$OUT/events2.jsonl" | cut -c1-300 | tee -a "$OUT/log.txt"
if cmp -s <(cat "$OUT"/frames/*.png | md5sum) <(cat "$OUT"/frames2/*.png | md5sum); then echo "same seed: identical PNGs" | tee -a "$OUT/log.txt"; else echo "same seed: PNGs differ" | tee -a "$OUT/log.txt"; fi
rm -rf "$OUT/frames2"
if [ -x bin/pipeline_e2e ]; then
  echo "== pipeline_e2e (f32 strict)" | tee -a "$OUT/log.txt"
  timeout 200 bin/pipeline_e2e --test-threads=1 --nocapture 2>&1 | grep -E "max abs|test result|panicked" | tee -a "$OUT/log.txt"
fi
