// The element type of the crate's pointwise CUDA sources (fused.cu, fp8.cu), prepended to each
// by the Rust side: -DELEM=0|1|2 selects bf16, f16 or f32. No CUDA headers: 16-bit elements
// travel as raw words and convert through PTX.

#ifndef ELEM
#define ELEM 0
#endif

typedef unsigned short u16;
typedef unsigned int u32;
typedef long long i64;

#if ELEM == 2
typedef float elem;
__device__ __forceinline__ float to_f32(elem v) { return v; }
__device__ __forceinline__ elem from_f32(float v) { return v; }
#else
typedef u16 elem;
__device__ __forceinline__ float to_f32(elem v) {
#if ELEM == 0
    return __uint_as_float(((u32)v) << 16);
#else
    float f;
    asm("{ .reg .b16 h; mov.b16 h, %1; cvt.f32.f16 %0, h; }" : "=f"(f) : "h"(v));
    return f;
#endif
}
// Rounds to nearest even.
__device__ __forceinline__ elem from_f32(float v) {
    u16 h;
#if ELEM == 0
    asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(v));
#else
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(v));
#endif
    return h;
}
#endif

__device__ __forceinline__ float load(const elem* p) { return to_f32(*p); }
__device__ __forceinline__ void store(elem* p, float v) { *p = from_f32(v); }
// `v` rounded to the element type (and back to f32).
__device__ __forceinline__ float round_elem(float v) { return to_f32(from_f32(v)); }
