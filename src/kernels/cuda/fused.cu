// Fused pointwise and row-wise steps of a DiT block, each one pass over memory where plain burn
// launches five to ten kernels: LayerNorm with the block's modulation (or an affine LayerNorm),
// RMSNorm with its scale, RoPE on interleaved channel pairs, and the gated residual add.
// Statistics and arithmetic are in f32; each output is rounded once.
//
// Compiled at run time by NVRTC (src/kernels/cuda/fused.rs) after elem.cuh, with -DELEM=0|1|2
// for bf16, f16 or f32 elements and -DVEC=1 or the elements in 16 bytes: each thread then moves
// VEC neighbouring elements with one 16-byte access (rows, strides and addresses allowing; the
// host checks), which takes these memory-bound kernels from about a third of the GPU's
// bandwidth to most of it.

#ifndef VEC
#define VEC 1
#endif
#define ROW_THREADS 128
#define MAX_PER_THREAD 48  // rows up to 6144 wide
#define VECS_PER_THREAD (MAX_PER_THREAD / VEC)

struct __align__(sizeof(elem) * VEC) Pack {
    elem v[VEC];
};

__device__ __forceinline__ void load_vec(const elem* p, float* out) {
    const Pack pack = *reinterpret_cast<const Pack*>(p);
#pragma unroll
    for (int i = 0; i < VEC; ++i) out[i] = to_f32(pack.v[i]);
}
__device__ __forceinline__ void store_vec(elem* p, const float* in) {
    Pack pack;
#pragma unroll
    for (int i = 0; i < VEC; ++i) pack.v[i] = from_f32(in[i]);
    *reinterpret_cast<Pack*>(p) = pack;
}

// This thread's share of a row of `dim` elements in f32: the VEC elements at (thread +
// i·ROW_THREADS)·VEC into v[i·VEC ..], zeros past the row's end.
__device__ __forceinline__ void load_row(const elem* xr, int dim, float* v) {
#pragma unroll
    for (int i = 0; i < VECS_PER_THREAD; ++i) {
        const int c = (threadIdx.x + i * ROW_THREADS) * VEC;
        if (c < dim) {
            load_vec(xr + c, v + i * VEC);
        } else {
#pragma unroll
            for (int j = 0; j < VEC; ++j) v[i * VEC + j] = 0.f;
        }
    }
}

__device__ __forceinline__ float block_sum(float v, float* scratch) {
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffff, v, offset);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    float total = 0.f;
#pragma unroll
    for (int w = 0; w < ROW_THREADS / 32; ++w) total += scratch[w];
    return total;
}

// out[r] = LN(x[r]) · (1 + scale[g]) + shift[g]   (g = r / rows_per_group), or with an affine
// weight / bias instead of (or as well as) the modulation; null pointers skip a term.
extern "C" __global__ void __launch_bounds__(ROW_THREADS)
layer_norm_modulate(const elem* __restrict__ x, elem* __restrict__ out, const elem* __restrict__ scale,
                    const elem* __restrict__ shift, i64 mod_group_stride, const elem* __restrict__ weight,
                    const elem* __restrict__ bias, int dim, int rows_per_group, float eps) {
    __shared__ float scratch[ROW_THREADS / 32];
    const i64 row = blockIdx.x;
    const elem* xr = x + row * dim;
    float v[MAX_PER_THREAD];
    float sum = 0.f;
    load_row(xr, dim, v);
#pragma unroll
    for (int i = 0; i < MAX_PER_THREAD; ++i) sum += v[i];
    const float mean = block_sum(sum, scratch) / dim;
    float sq = 0.f;
#pragma unroll
    for (int i = 0; i < VECS_PER_THREAD; ++i) {
        const int c = (threadIdx.x + i * ROW_THREADS) * VEC;
#pragma unroll
        for (int j = 0; j < VEC; ++j) {
            const float d = c < dim ? v[i * VEC + j] - mean : 0.f;
            sq += d * d;
        }
    }
    const float inv = rsqrtf(block_sum(sq, scratch) / dim + eps);
    const i64 group = row / rows_per_group;
    const elem* sc = scale ? scale + group * mod_group_stride : nullptr;
    const elem* sh = shift ? shift + group * mod_group_stride : nullptr;
    elem* o = out + row * dim;
#pragma unroll
    for (int i = 0; i < VECS_PER_THREAD; ++i) {
        const int c = (threadIdx.x + i * ROW_THREADS) * VEC;
        if (c < dim) {
            float y[VEC], term[VEC];
#pragma unroll
            for (int j = 0; j < VEC; ++j) y[j] = (v[i * VEC + j] - mean) * inv;
            if (weight) {
                load_vec(weight + c, term);
#pragma unroll
                for (int j = 0; j < VEC; ++j) y[j] *= term[j];
            }
            if (bias) {
                load_vec(bias + c, term);
#pragma unroll
                for (int j = 0; j < VEC; ++j) y[j] += term[j];
            }
            if (sc) {
                load_vec(sc + c, term);
#pragma unroll
                for (int j = 0; j < VEC; ++j) y[j] *= 1.f + term[j];
            }
            if (sh) {
                load_vec(sh + c, term);
#pragma unroll
                for (int j = 0; j < VEC; ++j) y[j] += term[j];
            }
            store_vec(o + c, y);
        }
    }
}

// out[r] = x[r] · rsqrt(mean(x[r]²) + eps) · weight
extern "C" __global__ void __launch_bounds__(ROW_THREADS)
rms_norm(const elem* __restrict__ x, elem* __restrict__ out, const elem* __restrict__ weight, int dim,
         float eps) {
    __shared__ float scratch[ROW_THREADS / 32];
    const i64 row = blockIdx.x;
    const elem* xr = x + row * dim;
    float v[MAX_PER_THREAD];
    float sq = 0.f;
    load_row(xr, dim, v);
#pragma unroll
    for (int i = 0; i < MAX_PER_THREAD; ++i) sq += v[i] * v[i];
    const float inv = rsqrtf(block_sum(sq, scratch) / dim + eps);
    elem* o = out + row * dim;
#pragma unroll
    for (int i = 0; i < VECS_PER_THREAD; ++i) {
        const int c = (threadIdx.x + i * ROW_THREADS) * VEC;
        if (c < dim) {
            float w[VEC];
            load_vec(weight + c, w);
#pragma unroll
            for (int j = 0; j < VEC; ++j) w[j] *= v[i * VEC + j] * inv;
            store_vec(o + c, w);
        }
    }
}

// Rotates interleaved pairs (2k, 2k+1) of x [tokens, heads, head_dim] (strided tokens and
// heads) by the angles of cos / sin [tokens, head_dim / 2]; out is contiguous. Each thread
// rotates VEC / 2 neighbouring pairs (VEC = 1: one pair).
#define PAIRS_PER_THREAD (VEC >= 2 ? VEC / 2 : 1)
extern "C" __global__ void rope_apply(const elem* __restrict__ x, elem* __restrict__ out,
                                      const elem* __restrict__ cos_table,
                                      const elem* __restrict__ sin_table, int tokens, int heads,
                                      int pairs, i64 token_stride, i64 head_stride) {
    const i64 index = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    const int groups = pairs / PAIRS_PER_THREAD;
    const i64 total = (i64)tokens * heads * groups;
    if (index >= total) return;
    const int pair = (index % groups) * PAIRS_PER_THREAD;
    const i64 token_head = index / groups;
    const int head = token_head % heads;
    const i64 token = token_head / heads;
    const elem* xp = x + token * token_stride + head * head_stride + 2 * pair;
    elem* o = out + (token_head * pairs + pair) * 2;
#if VEC >= 2
    float v[VEC];
    load_vec(xp, v);
#pragma unroll
    for (int k = 0; k < VEC / 2; ++k) {
        const float c = load(cos_table + token * pairs + pair + k);
        const float s = load(sin_table + token * pairs + pair + k);
        const float re = v[2 * k], im = v[2 * k + 1];
        v[2 * k] = re * c - im * s;
        v[2 * k + 1] = re * s + im * c;
    }
    store_vec(o, v);
#else
    const float re = load(xp), im = load(xp + 1);
    const float c = load(cos_table + token * pairs + pair);
    const float s = load(sin_table + token * pairs + pair);
    store(o, re * c - im * s);
    store(o + 1, re * s + im * c);
#endif
}

// out = x + y · gate[g], rows of `dim`, g = row / rows_per_group; x, y and out contiguous.
// Each thread adds VEC neighbouring elements (`total` and `dim` are multiples of VEC).
extern "C" __global__ void gated_add(const elem* __restrict__ x, const elem* __restrict__ y,
                                     const elem* __restrict__ gate, i64 gate_group_stride,
                                     elem* __restrict__ out, i64 total, int dim, int rows_per_group) {
    const i64 index = ((i64)blockIdx.x * blockDim.x + threadIdx.x) * VEC;
    if (index >= total) return;
    const i64 row = index / dim;
    const int c = index % dim;
    const i64 group = row / rows_per_group;
    float a[VEC], b[VEC], g[VEC];
    load_vec(x + index, a);
    load_vec(y + index, b);
    load_vec(gate + group * gate_group_stride + c, g);
#pragma unroll
    for (int j = 0; j < VEC; ++j) a[j] += b[j] * g[j];
    store_vec(out + index, a);
}
