#!/usr/bin/env bash
# `tools/gpu_profile.sh`: Nsight Compute over the timed calls of one bench measurement ($WHAT,
# default the FP8 40-layer call; run with --iters 1), every kernel's duration summed by kernel
# name. Staged like tools/gpu_bench.sh (bin/kern.tar.xz beside it).
set -u
cd "$(dirname "$0")"
driver=$(find /usr /lib /lib64 /opt -name 'libcuda.so.1' -not -path '*/stubs/*' 2>/dev/null | xargs -r -n1 dirname | sort -u | tr '\n' ':')
libs=$(find /usr/local/cuda-13.0 /usr/local/cuda -name 'libnvrtc.so*' -not -path '*/stubs/*' 2>/dev/null | xargs -r -n1 dirname | sort -u | tr '\n' ':')
blas=$(find /usr/local/cuda-13.0 /usr/local/cuda /usr/lib/x86_64-linux-gnu -name 'libcublasLt.so*' -not -path '*/stubs/*' 2>/dev/null | xargs -r -n1 dirname | sort -u | tr '\n' ':')
export LD_LIBRARY_PATH="${driver}${libs}${blas}${LD_LIBRARY_PATH:-}"
mkdir -p bin/k && tar -xJf bin/kern.tar.xz -C bin/k
export AVATAR_STUDIO_CACHE_DIR="$PWD/../target/kcache"
NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
AVATAR_STUDIO_PROFILE="${WHAT:-forward40_3168:15312_fp8}" timeout 500 "$NCU" --profile-from-start off --csv --metrics gpu__time_duration.sum \
  bin/k/avatar-studio bench --device cuda:0 --iters 1 ${ARGS:---fp8} > /tmp/ncu.csv 2>/tmp/ncu.err
tail -3 /tmp/ncu.err
python3 - <<'PY'
import csv, collections
rows = [r for r in csv.reader(open('/tmp/ncu.csv')) if len(r) > 10]
head = rows[0]; rows = rows[1:]
ki = head.index('Kernel Name'); vi = head.index('Metric Value'); ui = head.index('Metric Unit'); gi = head.index('Grid Size') if 'Grid Size' in head else None
tot = collections.defaultdict(float); cnt = collections.Counter()
for r in rows:
    v = float(r[vi].replace(',', ''))
    v = v / 1e6 if r[ui] == 'nsecond' else (v / 1e3 if r[ui] == 'usecond' else v)
    name = r[ki][:70] + ('' if gi is None else ' ' + r[gi])
    tot[name] += v; cnt[name] += 1
s = sum(tot.values())
print(f"kernels {sum(cnt.values())}, total {s:.2f} ms")
for n, v in sorted(tot.items(), key=lambda x: -x[1])[:45]:
    print(f"{v:8.3f} ms {cnt[n]:5d}x  {n}")
PY
