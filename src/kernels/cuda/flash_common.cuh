// What both flash-attention sources share (flash_attention.cu, flash_attention_sm90.cu): the
// element type, the 16/32/64-bit words, and the small PTX helpers of the online softmax.
// src/kernels/cuda/flash.rs prepends it to each. -DELEM_F16=0|1 selects bf16 or f16.

#ifndef ELEM_F16
#define ELEM_F16 0
#endif

#define NEG_INF __int_as_float(0xff800000)

typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;

__device__ __forceinline__ u32 smem_addr(const void* p) {
    return (u32)__cvta_generic_to_shared(p);
}

// Two f32 → one packed pair (low half = `lo`), rounded to nearest even.
__device__ __forceinline__ u32 pack2(float lo, float hi) {
    u32 r;
#if ELEM_F16
    asm("cvt.rn.f16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
#else
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
#endif
    return r;
}

__device__ __forceinline__ float fast_exp2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

