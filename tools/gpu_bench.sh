#!/usr/bin/env bash
# `avatar-studio bench` (stock burn-cuda kernels, bf16) and PyTorch's torch_dit.py in one command.
# Staging as for tools/gpu_generate.sh, plus a copy of ../shared/bench/torch_dit.py in devrun-gen/.
set -u
cd "$(dirname "$0")"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
driver=$(find /usr /lib /lib64 /opt -name 'libcuda.so.1' -not -path '*/stubs/*' 2>/dev/null | xargs -r -n1 dirname | sort -u | tr '\n' ':')
libs=$(find /usr/local/cuda-13.0 -name 'libnvrtc.so*' -not -path '*/stubs/*' 2>/dev/null | xargs -r -n1 dirname | sort -u | tr '\n' ':')
export LD_LIBRARY_PATH="${driver}${libs}${LD_LIBRARY_PATH:-}"
tar -xJf bin/all.tar.xz -C bin
export AVATAR_STUDIO_CACHE_DIR="$PWD/../target/kcache"
echo "== ours"
timeout 420 bin/avatar-studio bench --device cuda:0 --iters 10 2>&1 | grep -v "^\s\|panicked\|Caused\|Tile shape\|server is in\|unknown error\|No backtrace\|called .Result\|stack backtrace\|Task failed\|^$\|RUST_BACKTRACE"
echo "rc=$?"
echo "== pytorch"
timeout 100 python3 torch_dit.py 3168:15312,12672 10 | grep -v "block\|forward"
