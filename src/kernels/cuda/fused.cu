// Fused pointwise and row-wise steps of a DiT block, each one pass over memory where plain burn
// launches five to ten kernels: LayerNorm with the block's modulation (or an affine LayerNorm),
// RMSNorm with its scale, RoPE on interleaved channel pairs, and the gated residual add.
// Statistics and arithmetic are in f32; each output is rounded once.
//
// Compiled at run time by NVRTC (src/kernels/cuda/fused.rs) after elem.cuh, with -DELEM=0|1|2
// for bf16, f16 or f32 elements.

#define ROW_THREADS 128
#define MAX_PER_THREAD 48  // rows up to 6144 wide

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
#pragma unroll
    for (int i = 0; i < MAX_PER_THREAD; ++i) {
        const int c = threadIdx.x + i * ROW_THREADS;
        v[i] = c < dim ? load(xr + c) : 0.f;
        sum += v[i];
    }
    const float mean = block_sum(sum, scratch) / dim;
    float sq = 0.f;
#pragma unroll
    for (int i = 0; i < MAX_PER_THREAD; ++i) {
        const int c = threadIdx.x + i * ROW_THREADS;
        const float d = c < dim ? v[i] - mean : 0.f;
        sq += d * d;
    }
    const float inv = rsqrtf(block_sum(sq, scratch) / dim + eps);
    const i64 group = row / rows_per_group;
    const elem* sc = scale ? scale + group * mod_group_stride : nullptr;
    const elem* sh = shift ? shift + group * mod_group_stride : nullptr;
    elem* o = out + row * dim;
#pragma unroll
    for (int i = 0; i < MAX_PER_THREAD; ++i) {
        const int c = threadIdx.x + i * ROW_THREADS;
        if (c < dim) {
            float y = (v[i] - mean) * inv;
            if (weight) y *= load(weight + c);
            if (bias) y += load(bias + c);
            if (sc) y *= 1.f + load(sc + c);
            if (sh) y += load(sh + c);
            store(o + c, y);
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
#pragma unroll
    for (int i = 0; i < MAX_PER_THREAD; ++i) {
        const int c = threadIdx.x + i * ROW_THREADS;
        v[i] = c < dim ? load(xr + c) : 0.f;
        sq += v[i] * v[i];
    }
    const float inv = rsqrtf(block_sum(sq, scratch) / dim + eps);
    elem* o = out + row * dim;
#pragma unroll
    for (int i = 0; i < MAX_PER_THREAD; ++i) {
        const int c = threadIdx.x + i * ROW_THREADS;
        if (c < dim) store(o + c, v[i] * inv * load(weight + c));
    }
}

// Rotates interleaved pairs (2k, 2k+1) of x [tokens, heads, head_dim] (strided tokens and
// heads) by the angles of cos / sin [tokens, head_dim / 2]; out is contiguous.
extern "C" __global__ void rope_apply(const elem* __restrict__ x, elem* __restrict__ out,
                                      const elem* __restrict__ cos_table,
                                      const elem* __restrict__ sin_table, int tokens, int heads,
                                      int pairs, i64 token_stride, i64 head_stride) {
    const i64 index = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    const i64 total = (i64)tokens * heads * pairs;
    if (index >= total) return;
    const int pair = index % pairs;
    const i64 token_head = index / pairs;
    const int head = token_head % heads;
    const i64 token = token_head / heads;
    const elem* xp = x + token * token_stride + head * head_stride + 2 * pair;
    const float re = load(xp), im = load(xp + 1);
    const float c = load(cos_table + token * pairs + pair);
    const float s = load(sin_table + token * pairs + pair);
    elem* o = out + index * 2;
    store(o, re * c - im * s);
    store(o + 1, re * s + im * c);
}

// out = x + y · gate[g], rows of `dim`, g = row / rows_per_group; x, y and out contiguous.
extern "C" __global__ void gated_add(const elem* __restrict__ x, const elem* __restrict__ y,
                                     const elem* __restrict__ gate, i64 gate_group_stride,
                                     elem* __restrict__ out, i64 total, int dim, int rows_per_group) {
    const i64 index = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= total) return;
    const i64 row = index / dim;
    const int c = index % dim;
    const i64 group = row / rows_per_group;
    store(out + index, load(x + index) + load(y + index) * load(gate + group * gate_group_stride + c));
}
