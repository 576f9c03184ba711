#!/usr/bin/env bash
# PyTorch's torch_dit.py, `avatar-studio bench` (cuBLASLt, flash attention, fused steps; bf16,
# random 14B weights) and the GPU kernel suite (tests/gpu_kernels.rs), in one command.
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
echo "== pytorch"
timeout 100 python3 torch_dit.py 3168:15312,12672 10
echo "== ours"
timeout 300 bin/k/avatar-studio bench --device cuda:0 --iters 10 2>&1 | filter
echo "== gpu_kernels"
timeout 200 bin/k/gpu_kernels --test-threads=1 --nocapture 2>&1 | grep -v "^$" | grep -v "^linear \|^attention d\|^modulated\|^affine\|^rms\|^gated\|^rope" | tail -30
