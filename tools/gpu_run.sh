#!/usr/bin/env bash
# One call of the device tool: the parity suites built with --features cuda (strict f32
# matmuls), then, time allowing, the VAE memory probe. docs/gpu-parity.md says how the staging
# folder is filled: this script, bin/*.tar.xz (stripped test binaries and the vae_memory
# example) and fixtures/ (a copy of ../shared/fixtures). Usage: gpu_run.sh [tests|memory|all]
# [seconds]; MEM_MODES picks the vae_memory modes. Everything printed also lands under $OUT.
set -u
mode=${1:-all}
budget=${2:-570}
start=$(date +%s)
left() { echo $((budget - ($(date +%s) - start))); }
cd "$(dirname "$0")"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
driver=$(find /usr /lib /lib64 /opt -name 'libcuda.so.1' -not -path '*/stubs/*' 2>/dev/null | xargs -r -n1 dirname | sort -u | tr '\n' ':')
libs=$(find /usr/local/cuda-13.0 -name 'libnvrtc.so*' -not -path '*/stubs/*' 2>/dev/null | xargs -r -n1 dirname | sort -u | tr '\n' ':')
export LD_LIBRARY_PATH="${driver}${libs}${LD_LIBRARY_PATH:-}"
echo "driver dirs: $driver / nvrtc dirs: $libs" | tee -a "$OUT/gpu.txt"
mkdir -p /tmp/bins
for a in bin/*.tar.xz; do tar -xJf "$a" -C /tmp/bins; done
chmod +x /tmp/bins/* 2>/dev/null
ls -la /tmp/bins | tee -a "$OUT/gpu.txt"
export FIXTURES_DIR="$PWD/fixtures"
log="$OUT/gpu_tests.log"
if [ "$mode" != memory ]; then
  for t in sampler_parity lora_merge checkpoint_loading dit_debug dit_parity t5_parity wav2vec_parity vae_parity vae_e2e; do
    [ -x "/tmp/bins/$t" ] || { echo "== $t: no binary" | tee -a "$log"; continue; }
    l=$(left); [ "$l" -gt 20 ] || { echo "== $t: not run, no time left" | tee -a "$log"; continue; }
    echo "== $t (timeout ${l}s)" | tee -a "$log"
    t0=$(date +%s)
    timeout "$l" "/tmp/bins/$t" --test-threads=1 --nocapture >"/tmp/$t.log" 2>&1
    rc=$?
    grep -v '^\s*$' "/tmp/$t.log" | tail -80 | tee -a "$log"
    echo "== $t rc=$rc wall=$(( $(date +%s) - t0 ))s" | tee -a "$log"
  done
fi
if [ "$mode" != tests ] && [ -x /tmp/bins/vae_memory ]; then
  modes=${MEM_MODES:-f32-strict bf16}
  last=${modes##* }
  for dtype in $modes; do
    l=$(left); [ "$l" -gt 30 ] || { echo "vae_memory $dtype: not run, no time left" | tee -a "$OUT/vae_memory.log"; continue; }
    # Cold autotune can take minutes: cap all but the last so the ones after still get a turn.
    cap=${MEM_CAP:-200}; [ "$dtype" != "$last" ] && [ "$l" -gt "$cap" ] && l=$cap
    echo "== vae_memory $dtype (timeout ${l}s)" | tee -a "$OUT/vae_memory.log"
    t0=$(date +%s)
    timeout "$l" /tmp/bins/vae_memory $dtype 2>&1 | tail -20 | tee -a "$OUT/vae_memory.log"
    echo "== vae_memory $dtype rc=${PIPESTATUS[0]} wall=$(( $(date +%s) - t0 ))s" | tee -a "$OUT/vae_memory.log"
  done
fi
