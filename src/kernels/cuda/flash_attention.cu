// Flash attention forward for the DiT: softmax(Q·Kᵀ·scale)·V without a mask, bf16 or f16 in and
// out, f32 accumulation and an online softmax in f32, never materialising the score matrix.
//
// Compiled at run time by NVRTC (src/kernels/cuda/flash.rs), after flash_common.cuh, with:
//   -DHEAD_DIM=32|64|128   width of one head
//   -DELEM_F16=0|1         element type: bf16 (0) or f16 (1)
//   -DWARP_M_TILES=1|2     16-row query tiles per warp (2 reuses each K/V fragment twice)
//   -DWARPS=4|8            warps per block
//   -DBLOCK_N=64|128       keys per tile
// No CUDA headers: elements travel as raw 16-bit words and the tensor-core work is inline PTX
// (mma.sync m16n8k16, ldmatrix, cp.async), which every NVIDIA GPU from sm_80 runs.
//
// Layout: a block of WARPS warps owns BLOCK_M = 16·WARP_M_TILES·WARPS query rows of one (batch,
// head) and walks the keys in tiles of BLOCK_N, double-buffering K and V tiles in shared memory with
// cp.async so the next tile loads while the current one is multiplied. Shared rows are stored
// with their 16-byte chunks XOR-swizzled by the row (HEAD_DIM ≥ 64) so that ldmatrix reads are
// free of bank conflicts.

#ifndef HEAD_DIM
#error "HEAD_DIM must be defined"
#endif
#ifndef WARP_M_TILES
#define WARP_M_TILES 2
#endif
#ifndef WARPS
#define WARPS 4
#endif
#ifndef BLOCK_N
#define BLOCK_N 64
#endif
#define THREADS (WARPS * 32)
#define BLOCK_M (16 * WARP_M_TILES * WARPS)
#define CHUNKS (HEAD_DIM / 8)          // 16-byte chunks per row
#define K_STEPS (HEAD_DIM / 16)        // k16 steps over the head width
#define D_TILES (HEAD_DIM / 8)         // n8 output tiles over the head width
#define N_TILES (BLOCK_N / 8)          // n8 score tiles per key tile

__device__ __forceinline__ int swizzle(int row, int chunk) {
#if CHUNKS >= 8
    return chunk ^ (row & 7);
#else
    return chunk;
#endif
}

// Copies 16 bytes global → shared, or writes zeros when `valid` is false (rows past the end).
__device__ __forceinline__ void cp_async16(u32 dst, const void* src, bool valid) {
    int bytes = valid ? 16 : 0;
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void ldmatrix_x4(u32& r0, u32& r1, u32& r2, u32& r3, u32 addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x4_trans(u32& r0, u32& r1, u32& r2, u32& r3, u32 addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(addr));
}

// D (16×8, f32) += A (16×16) · B (16×8).
__device__ __forceinline__ void mma16816(float* d, const u32* a, u32 b0, u32 b1) {
#if ELEM_F16
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
}

// Loads `rows` rows (of HEAD_DIM elements, `row_stride` apart in global memory) into a swizzled
// shared tile; rows at or past `valid_rows` are zero-filled.
__device__ __forceinline__ void load_tile(u16* tile, const u16* src, long long row_stride, int rows,
                                          int valid_rows) {
    for (int i = threadIdx.x; i < rows * CHUNKS; i += THREADS) {
        int row = i / CHUNKS;
        int chunk = i % CHUNKS;
        bool valid = row < valid_rows;
        const u16* g = src + (valid ? (long long)row * row_stride : 0) + chunk * 8;
        u16* s = tile + row * HEAD_DIM + swizzle(row, chunk) * 8;
        cp_async16(smem_addr(s), g, valid);
    }
}

// Key (or value) rows first..first+rows of a sequence made of two segments — `len1` rows from
// `src1`, then `len2` from `src2` — into a swizzled shared tile (zeros past the end), so the
// ring cache and the cond tokens are attended without first being copied side by side.
__device__ __forceinline__ void load_keys(u16* tile, const u16* src1, long long stride1, int len1,
                                          const u16* src2, long long stride2, int len2, int first) {
    for (int i = threadIdx.x; i < BLOCK_N * CHUNKS; i += THREADS) {
        int row = i / CHUNKS;
        int chunk = i % CHUNKS;
        int key = first + row;
        bool valid = key < len1 + len2;
        const u16* g = key < len1 ? src1 + (long long)key * stride1
                                  : (valid ? src2 + (long long)(key - len1) * stride2 : src1);
        u16* s = tile + row * HEAD_DIM + swizzle(row, chunk) * 8;
        cp_async16(smem_addr(s), g + chunk * 8, valid);
    }
}

// Keys and values come in two segments (k/v: len_k1 rows, k2/v2: len_k2 rows; len_k2 may be 0),
// attended as one sequence.
extern "C" __global__ void __launch_bounds__(THREADS)
flash_attention_forward(const u16* __restrict__ q, const u16* __restrict__ k,
                        const u16* __restrict__ v, u16* __restrict__ out, int len_q, int len_k1,
                        int heads, long long q_batch, long long q_token, long long q_head,
                        long long k_batch, long long k_token, long long k_head, long long v_batch,
                        long long v_token, long long v_head, float scale_log2,
                        const u16* __restrict__ k2, const u16* __restrict__ v2, int len_k2,
                        long long k2_batch, long long k2_token, long long k2_head,
                        long long v2_batch, long long v2_token, long long v2_head) {
    const int len_k = len_k1 + len_k2;
    extern __shared__ __align__(128) u16 shared[];
    u16* sq = shared;                                 // [BLOCK_M][HEAD_DIM]
    u16* sk = sq + BLOCK_M * HEAD_DIM;                // [2][BLOCK_N][HEAD_DIM]
    u16* sv = sk + 2 * BLOCK_N * HEAD_DIM;            // [2][BLOCK_N][HEAD_DIM]

    const int q0 = blockIdx.x * BLOCK_M;
    const int head = blockIdx.y;
    const int batch = blockIdx.z;
    const int warp = threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    const int g = lane / 4;  // accumulator row within a 16-row tile (and g + 8)
    const int t = lane % 4;  // accumulator column pair

    const u16* q_base = q + batch * q_batch + head * q_head + (long long)q0 * q_token;
    const u16* k_base = k + batch * k_batch + head * k_head;
    const u16* v_base = v + batch * v_batch + head * v_head;
    const u16* k2_base = k2 + batch * k2_batch + head * k2_head;
    const u16* v2_base = v2 + batch * v2_batch + head * v2_head;

    load_tile(sq, q_base, q_token, BLOCK_M, len_q - q0);
    load_keys(sk, k_base, k_token, len_k1, k2_base, k2_token, len_k2, 0);
    load_keys(sv, v_base, v_token, len_k1, v2_base, v2_token, len_k2, 0);
    cp_async_commit();

    float acc[WARP_M_TILES][D_TILES][4];
    float row_max[WARP_M_TILES][2];
    float row_sum[WARP_M_TILES][2];
#pragma unroll
    for (int m = 0; m < WARP_M_TILES; ++m) {
#pragma unroll
        for (int j = 0; j < D_TILES; ++j) acc[m][j][0] = acc[m][j][1] = acc[m][j][2] = acc[m][j][3] = 0.f;
        row_max[m][0] = row_max[m][1] = NEG_INF;
        row_sum[m][0] = row_sum[m][1] = 0.f;
    }

    const int key_tiles = (len_k + BLOCK_N - 1) / BLOCK_N;
    // ldmatrix lane roles: which 8×8 matrix this lane addresses, and which row of it.
    const int mat = lane / 8;
    const int mrow = lane % 8;

    for (int tile = 0; tile < key_tiles; ++tile) {
        const int buf = tile & 1;
        if (tile + 1 < key_tiles) {
            const int next = (tile + 1) * BLOCK_N;
            load_keys(sk + (buf ^ 1) * BLOCK_N * HEAD_DIM, k_base, k_token, len_k1, k2_base, k2_token,
                      len_k2, next);
            load_keys(sv + (buf ^ 1) * BLOCK_N * HEAD_DIM, v_base, v_token, len_k1, v2_base, v2_token,
                      len_k2, next);
            cp_async_commit();
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();

        const u16* tk = sk + buf * BLOCK_N * HEAD_DIM;
        const u16* tv = sv + buf * BLOCK_N * HEAD_DIM;

        // S = Q·Kᵀ for this warp's rows against the tile's 64 keys.
        float s[WARP_M_TILES][N_TILES][4];
#pragma unroll
        for (int m = 0; m < WARP_M_TILES; ++m)
#pragma unroll
            for (int n = 0; n < N_TILES; ++n) s[m][n][0] = s[m][n][1] = s[m][n][2] = s[m][n][3] = 0.f;

#pragma unroll
        for (int kk = 0; kk < K_STEPS; ++kk) {
            u32 a[WARP_M_TILES][4];
#pragma unroll
            for (int m = 0; m < WARP_M_TILES; ++m) {
                const int row = (warp * WARP_M_TILES + m) * 16 + mrow + (mat & 1) * 8;
                const int chunk = kk * 2 + (mat >> 1);
                ldmatrix_x4(a[m][0], a[m][1], a[m][2], a[m][3],
                            smem_addr(sq + row * HEAD_DIM + swizzle(row, chunk) * 8));
            }
#pragma unroll
            for (int n = 0; n < N_TILES; n += 2) {
                const int key = n * 8 + mrow + (mat >> 1) * 8;
                const int chunk = kk * 2 + (mat & 1);
                u32 b0, b1, b2, b3;
                ldmatrix_x4(b0, b1, b2, b3, smem_addr(tk + key * HEAD_DIM + swizzle(key, chunk) * 8));
#pragma unroll
                for (int m = 0; m < WARP_M_TILES; ++m) {
                    mma16816(s[m][n], a[m], b0, b1);
                    mma16816(s[m][n + 1], a[m], b2, b3);
                }
            }
        }

        const int valid_keys = len_k - tile * BLOCK_N;
        if (valid_keys < BLOCK_N) {
#pragma unroll
            for (int m = 0; m < WARP_M_TILES; ++m)
#pragma unroll
                for (int n = 0; n < N_TILES; ++n) {
                    const int key = n * 8 + 2 * t;
                    if (key >= valid_keys) s[m][n][0] = s[m][n][2] = NEG_INF;
                    if (key + 1 >= valid_keys) s[m][n][1] = s[m][n][3] = NEG_INF;
                }
        }

        // Online softmax: new running max per row, rescale what was accumulated, exponentiate.
        u32 p[WARP_M_TILES][N_TILES / 2][4];
#pragma unroll
        for (int m = 0; m < WARP_M_TILES; ++m) {
#pragma unroll
            for (int half = 0; half < 2; ++half) {
                float mx = row_max[m][half];
#pragma unroll
                for (int n = 0; n < N_TILES; ++n)
                    mx = fmaxf(mx, fmaxf(s[m][n][2 * half], s[m][n][2 * half + 1]));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffff, mx, 1));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffff, mx, 2));
                const float correction = fast_exp2((row_max[m][half] - mx) * scale_log2);
                row_max[m][half] = mx;
                const float offset = mx * scale_log2;
                float sum = 0.f;
#pragma unroll
                for (int n = 0; n < N_TILES; ++n) {
                    const float e0 = fast_exp2(s[m][n][2 * half] * scale_log2 - offset);
                    const float e1 = fast_exp2(s[m][n][2 * half + 1] * scale_log2 - offset);
                    s[m][n][2 * half] = e0;
                    s[m][n][2 * half + 1] = e1;
                    sum += e0 + e1;
                }
                row_sum[m][half] = row_sum[m][half] * correction + sum;
#pragma unroll
                for (int j = 0; j < D_TILES; ++j) {
                    acc[m][j][2 * half] *= correction;
                    acc[m][j][2 * half + 1] *= correction;
                }
            }
            // The accumulator layout of two neighbouring n8 score tiles is the A-operand
            // layout of one k16 step, so the probabilities feed the next product from registers.
#pragma unroll
            for (int kk = 0; kk < N_TILES / 2; ++kk) {
                p[m][kk][0] = pack2(s[m][2 * kk][0], s[m][2 * kk][1]);
                p[m][kk][1] = pack2(s[m][2 * kk][2], s[m][2 * kk][3]);
                p[m][kk][2] = pack2(s[m][2 * kk + 1][0], s[m][2 * kk + 1][1]);
                p[m][kk][3] = pack2(s[m][2 * kk + 1][2], s[m][2 * kk + 1][3]);
            }
        }

        // O += P·V.
#pragma unroll
        for (int kk = 0; kk < N_TILES / 2; ++kk) {
#pragma unroll
            for (int j = 0; j < D_TILES; j += 2) {
                const int key = kk * 16 + mrow + (mat & 1) * 8;
                const int chunk = j + (mat >> 1);
                u32 b0, b1, b2, b3;
                ldmatrix_x4_trans(b0, b1, b2, b3, smem_addr(tv + key * HEAD_DIM + swizzle(key, chunk) * 8));
#pragma unroll
                for (int m = 0; m < WARP_M_TILES; ++m) {
                    mma16816(acc[m][j], p[m][kk], b0, b1);
                    mma16816(acc[m][j + 1], p[m][kk], b2, b3);
                }
            }
        }
        // The buffer just read is the one the next iteration's copies overwrite.
        __syncthreads();
    }

    // Normalise and store [batch, len_q, heads, HEAD_DIM].
#pragma unroll
    for (int m = 0; m < WARP_M_TILES; ++m) {
#pragma unroll
        for (int half = 0; half < 2; ++half) {
            float sum = row_sum[m][half];
            sum += __shfl_xor_sync(0xffffffff, sum, 1);
            sum += __shfl_xor_sync(0xffffffff, sum, 2);
            const float inv = 1.f / sum;
            const int row = q0 + (warp * WARP_M_TILES + m) * 16 + g + half * 8;
            if (row < len_q) {
                u16* o = out + (((long long)batch * len_q + row) * heads + head) * HEAD_DIM;
#pragma unroll
                for (int j = 0; j < D_TILES; ++j) {
                    const u32 packed = pack2(acc[m][j][2 * half] * inv, acc[m][j][2 * half + 1] * inv);
                    *reinterpret_cast<u32*>(o + j * 8 + 2 * t) = packed;
                }
            }
        }
    }
}
