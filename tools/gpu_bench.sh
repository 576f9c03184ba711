#!/usr/bin/env bash
# `tools/gpu_bench.sh pair`: PyTorch's torch_dit.py in bf16 and with FP8 linears, then
# `avatar-studio bench --fp8` (cuBLASLt bf16 and FP8 linears, flash attention, fused steps;
# random 14B weights), in one command, for the ratios of docs/gpu-fast-path.md.
# `tools/gpu_bench.sh check`: the GPU kernel suite (tests/gpu_kernels.rs), then `bench --fp8`.
# (Each fits the device's 10-minute limit on its own; together they may not.)
# Staging (a git-ignored devrun-gen/ folder of the checkout, carried to the GPU machine):
#   devrun-gen/torch_dit.py       a copy of ../shared/bench/torch_dit.py
#   devrun-gen/bin/kern.tar.xz    avatar-studio and the gpu_kernels test binary, stripped, from
#     CUDARC_CUDA_VERSION=13000 CARGO_PROFILE_DEV_DEBUG=0 cargo build --no-default-features \
#       --features cuda --bin avatar-studio --config 'profile.dev.package.avatar-studio.opt-level=2'
#     (and `cargo test --no-run` of --test gpu_kernels with the same flags)
# Results: docs/gpu-fast-path.md.
set -u
cd "$(dirname "$0")"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
driver=$(find /usr /lib /lib64 /opt -name 'libcuda.so.1' -not -path '*/stubs/*' 2>/dev/null | xargs -r -n1 dirname | sort -u | tr '\n' ':')
libs=$(find /usr/local/cuda-13.0 -name 'libnvrtc.so*' -not -path '*/stubs/*' 2>/dev/null | xargs -r -n1 dirname | sort -u | tr '\n' ':')
blas=$(find /usr/local/cuda-13.0 -name 'libcublasLt.so*' -not -path '*/stubs/*' 2>/dev/null | xargs -r -n1 dirname | sort -u | tr '\n' ':')
export LD_LIBRARY_PATH="${driver}${libs}${blas}${LD_LIBRARY_PATH:-}"
mkdir -p bin/k && tar -xJf bin/kern.tar.xz -C bin/k
export AVATAR_STUDIO_CACHE_DIR="$PWD/../target/kcache"
filter() { grep -v "^\s\|panicked\|Caused\|Tile shape\|server is in\|unknown error\|No backtrace\|called .Result\|stack backtrace\|Task failed\|^$\|RUST_BACKTRACE"; }
mode=${1:-pair}
if [ "$mode" = check ]; then
  echo "== gpu_kernels"
  timeout 200 bin/k/gpu_kernels --test-threads=1 --nocapture 2>&1 | grep -v "^$" | grep -v "^linear \|^attention d\|^modulated\|^affine\|^rms\|^gated\|^rope" | tail -40
else
  echo "== pytorch bf16"
  timeout 100 python3 torch_dit.py 3168:15312,12672 10
  echo "== pytorch fp8"
  timeout 100 python3 torch_dit.py 3168:15312 10 fp8 | grep -v "^gemm\|^attn"
fi
echo "== ours --fp8"
timeout 380 bin/k/avatar-studio bench --device cuda:0 --iters 10 --fp8 2>&1 | filter
