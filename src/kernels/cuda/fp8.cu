// FP8 (e4m3fn) quantisation with one scale per tensor, the scheme of the reference's FP8
// linears (spec §3.9), for weights at load time and for activations before every FP8 GEMM:
//   a = max|x|,  s = min(448 / max(a, 1e-12), 448),  code = e4m3(round_elem(x·s)),  kept 1/s.
// `x·s` is rounded to the input's own element type before the e4m3 cast, as torch does when a
// bf16 tensor meets a 0-d f32 scale — or to bf16 for weights (`bf16_product`), which are bf16
// in the reference whatever type this build holds them in. The scale never visits the host:
// `absmax` leaves the maximum in `scales[1]` (an atomicMax on the float's bits, which orders
// non-negative floats), and `quantize_e4m3` reads it there and writes 1/s to `scales[0]`, the
// start of the allocation, where cuBLASLt's scale pointer must point (it refuses an address
// that is only 4-byte aligned).
//
// Compiled at run time by NVRTC (src/kernels/cuda/fp8.rs) after elem.cuh, with -DELEM=0|1|2
// for bf16, f16 or f32 inputs. Needs sm_89 or later (the e4m3x2 conversions).

__device__ __forceinline__ float round_bf16(float v) {
    u16 h;
    asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(v));
    return __uint_as_float(((u32)h) << 16);
}

#define THREADS 256
// Elements per 16-byte load.
#define VEC (16 / (int)sizeof(elem))

union Pack {
    uint4 raw;
    elem e[VEC];
};

// Largest |x| over the tensor, folded into scales[1] (which the caller zeroes first).
// `vector` says the buffer is 16-byte aligned and n a multiple of VEC.
extern "C" __global__ void __launch_bounds__(THREADS)
absmax(const elem* __restrict__ x, i64 n, int vector, u32* __restrict__ scales) {
    float m = 0.f;
    const i64 stride = (i64)gridDim.x * THREADS;
    const i64 first = (i64)blockIdx.x * THREADS + threadIdx.x;
    if (vector) {
        const uint4* xv = reinterpret_cast<const uint4*>(x);
        for (i64 i = first; i < n / VEC; i += stride) {
            Pack p;
            p.raw = xv[i];
#pragma unroll
            for (int j = 0; j < VEC; ++j) m = fmaxf(m, fabsf(to_f32(p.e[j])));
        }
    } else {
        for (i64 i = first; i < n; i += stride) m = fmaxf(m, fabsf(to_f32(x[i])));
    }
    for (int offset = 16; offset > 0; offset /= 2)
        m = fmaxf(m, __shfl_xor_sync(0xffffffff, m, offset));
    __shared__ float warp_max[THREADS / 32];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (lane == 0) warp_max[warp] = m;
    __syncthreads();
    if (threadIdx.x == 0) {
        float total = 0.f;
#pragma unroll
        for (int w = 0; w < THREADS / 32; ++w) total = fmaxf(total, warp_max[w]);
        atomicMax(scales + 1, __float_as_uint(total));
    }
}

// Two e4m3fn codes (saturating, round to nearest even): `hi` in the upper byte.
__device__ __forceinline__ u16 e4m3x2(float hi, float lo) {
    u16 pair;
    asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(pair) : "f"(hi), "f"(lo));
    return pair;
}

// codes[i] = e4m3(round(x[i]·s)) with s from scales[1]; writes 1/s to scales[0]. `round` is
// to the element type, or to bf16 when `bf16_product` is set. `vector` as for `absmax` (then
// codes are written 16 or 8 at a time).
extern "C" __global__ void __launch_bounds__(THREADS)
quantize_e4m3(const elem* __restrict__ x, i64 n, int vector, int bf16_product,
              float* __restrict__ scales, unsigned char* __restrict__ codes) {
    const float a = scales[1];
    const float s = fminf(448.f / fmaxf(a, 1e-12f), 448.f);
    const i64 stride = (i64)gridDim.x * THREADS;
    const i64 first = (i64)blockIdx.x * THREADS + threadIdx.x;
    if (blockIdx.x == 0 && threadIdx.x == 0) scales[0] = 1.f / s;
    if (vector) {
        const uint4* xv = reinterpret_cast<const uint4*>(x);
        for (i64 i = first; i < n / VEC; i += stride) {
            Pack p;
            p.raw = xv[i];
            u32 words[VEC / 4];
#pragma unroll
            for (int w = 0; w < VEC / 4; ++w) {
                float v[4];
#pragma unroll
                for (int j = 0; j < 4; ++j) {
                    const float scaled = to_f32(p.e[4 * w + j]) * s;
                    v[j] = bf16_product ? round_bf16(scaled) : round_elem(scaled);
                }
                const u16 low = e4m3x2(v[1], v[0]);
                const u16 high = e4m3x2(v[3], v[2]);
                words[w] = (u32)low | ((u32)high << 16);
            }
#if ELEM == 2
            reinterpret_cast<u32*>(codes)[i] = words[0];
#else
            reinterpret_cast<uint2*>(codes)[i] = make_uint2(words[0], words[1]);
#endif
        }
    } else {
        for (i64 i = first; i < n; i += stride) {
            const float scaled = to_f32(x[i]) * s;
            const float v = bf16_product ? round_bf16(scaled) : round_elem(scaled);
            codes[i] = (unsigned char)(e4m3x2(0.f, v) & 0xff);
        }
    }
}

// out[i] = decode(codes[i]) · scales[0] in the element type: the values an FP8 operand stands
// for, for the rare layer cuBLASLt's FP8 kernels do not take.
extern "C" __global__ void __launch_bounds__(THREADS)
decode_e4m3(const unsigned char* __restrict__ codes, i64 n, const float* __restrict__ scales,
            elem* __restrict__ out) {
    const float scale_inv = scales[0];
    const i64 stride = (i64)gridDim.x * THREADS;
    for (i64 i = (i64)blockIdx.x * THREADS + threadIdx.x; i < n; i += stride) {
        const u16 code = codes[i];
        u32 halves;
        asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(halves) : "h"(code));
        float value;
        asm("{ .reg .b16 lo, hi; mov.b32 {lo, hi}, %1; cvt.f32.f16 %0, lo; }"
            : "=f"(value)
            : "r"(halves));
        out[i] = from_f32(value * scale_inv);
    }
}
