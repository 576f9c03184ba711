// Flash attention forward for Hopper (sm_90a): softmax(Q·Kᵀ·scale)·V without a mask, bf16 or f16
// in and out, f32 accumulation and an online softmax in f32, keys and values in up to two
// segments, head width 128 — the computation of flash_attention.cu, organised as
// FlashAttention-3 organises it:
//
// - Warp specialisation. A block has three warpgroups. The first is the producer: one of its
//   threads has the tensor memory accelerator (TMA) copy the block's 128 query rows once, then K
//   and V tiles of 128 keys into a two-stage ring in shared memory, each stage guarded by a
//   "full" and an "empty" mbarrier; the warpgroup gives most of its registers to the two
//   consumer warpgroups (setmaxnreg), which own 64 query rows each. The TMA writes the tiles in
//   the 128-byte-swizzled layout the MMA reads and fills rows past a tensor's end with zeros.
//   (Copying with cp.async from the producer's 128 threads instead ran the kernel at 44 % of the
//   speed it reaches with the copies left out; through the TMA it stays within a few percent.)
// - Warpgroup MMA. S = Q·Kᵀ reads both operands from shared memory (wgmma, 128-byte-swizzled
//   tiles described by matrix descriptors); O += P·V takes P from registers and V from shared
//   memory as an MN-major operand.
// - Overlap inside a warpgroup. Each key tile's step issues S_j = Q·K_jᵀ and O += P_{j-1}·V_{j-1}
//   together; the softmax of S_j runs while the second product is still in flight.
// - No ping-pong between the two consumer warpgroups. FlashAttention-3 also hands the tensor
//   cores from one warpgroup to the other each turn with two named barriers; here that was
//   slower (on an H100, 523 against 647 TFLOP/s at 3168:15312 without it): the overlap inside
//   each warpgroup and the hardware's own interleaving of the two already keep the tensor
//   cores busy.
//
// Keys come in up to two segments (the ring cache, then the cond tokens), each with its own
// tensor map: tiles never straddle the two, so a segment's last tile may be partial and is
// masked. Tensor maps (built on the host by cuTensorMapEncodeTiled) describe a tensor
// [batch, tokens, heads, 128] with dimensions ordered (head width, heads, tokens, batch); a box
// is 64 columns × 1 head × 128 tokens, one half of a tile.
//
// Compiled at run time by NVRTC (src/kernels/cuda/flash.rs) for compute_90a with
// -DELEM_F16=0|1, after flash_common.cuh. No CUDA headers: inline PTX throughout.

#if ELEM_F16
#define WG_TYPE "f16"
#else
#define WG_TYPE "bf16"
#endif

#define HEAD_DIM 128
#define BLOCK_M 128                       // two consumer warpgroups of 64 rows
#define BLOCK_N 128                       // keys per tile
#define STAGES 2
#define THREADS 384
#define K_STEPS (HEAD_DIM / 16)           // k16 steps of S = Q·Kᵀ
#define P_STEPS (BLOCK_N / 16)            // k16 steps of O += P·V
#define TILE_BYTES (BLOCK_N * HEAD_DIM * 2)
#define HALF_BYTES (BLOCK_N * 128)        // one 64-column half of a K or V tile
#define Q_HALF_BYTES (BLOCK_M * 128)
#define Q_OFFSET 0
#define K_OFFSET (BLOCK_M * HEAD_DIM * 2)
#define V_OFFSET (K_OFFSET + STAGES * TILE_BYTES)
#define BAR_OFFSET (V_OFFSET + STAGES * TILE_BYTES)
// mbarriers, 8 bytes each: Q, then per stage K full, K empty, V full, V empty.
#define BAR_Q 0
#define BAR_K_FULL(s) (1 + 4 * (s))
#define BAR_K_EMPTY(s) (2 + 4 * (s))
#define BAR_V_FULL(s) (3 + 4 * (s))
#define BAR_V_EMPTY(s) (4 + 4 * (s))
#define CONSUMER_WARPS 8
#define PRODUCER_REGISTERS 24
#define CONSUMER_REGISTERS 240
#define BOX_BYTES (BLOCK_N * 64 * 2)      // one TMA box: 64 columns of 128 rows

// Byte offset of 16-byte chunk `chunk` of row `row` in a tile stored as two 64-column halves
// of `half_bytes` each, rows of 128 bytes with their chunks XOR-swizzled by the row: the layout
// of wgmma's 128-byte swizzle (the tile starts 1024-byte aligned).
__device__ __forceinline__ u32 swizzled(int row, int chunk, u32 half_bytes) {
    return (chunk >> 3) * half_bytes + row * 128 + (((chunk & 7) ^ (row & 7)) << 4);
}

// A CUtensorMap, opaque here; passed by value as a __grid_constant__ parameter so the TMA
// reads it in place.
struct __align__(64) TensorMap {
    u64 opaque[16];
};

// One box (64 columns × 1 head × 128 tokens from token `token`) into shared memory at `dst`,
// completing `bytes` of the transaction the mbarrier `bar` expects.
__device__ __forceinline__ void tma_load(u32 dst, const TensorMap* map, int column, int head,
                                         int token, int batch, u32 bar) {
    asm volatile(
        "cp.async.bulk.tensor.4d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, "
        "{%2, %3, %4, %5}], [%6];\n" ::"r"(dst),
        "l"((u64)map), "r"(column), "r"(head), "r"(token), "r"(batch), "r"(bar)
        : "memory");
}

// --- mbarriers ---------------------------------------------------------------------------

__device__ __forceinline__ void bar_init(u32 bar, u32 count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
// Arrives, and sets the bytes of asynchronous copies the barrier's phase also waits for.
__device__ __forceinline__ void bar_expect_bytes(u32 bar, u32 bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes)
                 : "memory");
}
__device__ __forceinline__ void bar_arrive(u32 bar) {
    asm volatile("{\n.reg .b64 state;\nmbarrier.arrive.shared::cta.b64 state, [%0];\n}\n" ::"r"(bar)
                 : "memory");
}
// Waits until the barrier's phase of parity `parity` has completed.
__device__ __forceinline__ void bar_wait(u32 bar, u32 parity) {
    u32 done;
    do {
        asm volatile(
            "{\n.reg .pred p;\n"
            "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
            "selp.u32 %0, 1, 0, p;\n}\n"
            : "=r"(done)
            : "r"(bar), "r"(parity)
            : "memory");
    } while (!done);
}

// --- warpgroup MMA -----------------------------------------------------------------------

// A shared-memory matrix descriptor with 128-byte swizzling: `lead` and `stride` are the byte
// offsets the layout takes along its leading and strided dimensions.
__device__ __forceinline__ u64 descriptor(u32 address, u32 lead, u32 stride) {
    return (u64)((address & 0x3FFFF) >> 4) | ((u64)((lead >> 4) & 0x3FFF) << 16) |
           ((u64)((stride >> 4) & 0x3FFF) << 32) | (1ull << 62);
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() {
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
template <int N>
__device__ __forceinline__ void wgmma_wait() {
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
// Keeps the compiler from moving reads or writes of registers an asynchronous wgmma owns
// across the points where it is issued and waited for.
__device__ __forceinline__ void fence_registers(float* r) {
#pragma unroll
    for (int i = 0; i < 64; ++i) asm volatile("" : "+f"(r[i])::"memory");
}
__device__ __forceinline__ void fence_registers(u32* r, int n) {
#pragma unroll
    for (int i = 0; i < n; ++i) asm volatile("" : "+r"(r[i])::"memory");
}

#define ACC_LIST                                                                                    \
    "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, " \
    "%20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, "  \
    "%38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, "  \
    "%56, %57, %58, %59, %60, %61, %62, %63}"
#define ACC_OPERANDS(d)                                                                             \
    "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]),           \
        "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]),   \
        "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]),             \
        "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]),             \
        "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),             \
        "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]),             \
        "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]),             \
        "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]),             \
        "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),             \
        "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]),             \
        "+f"(d[62]), "+f"(d[63])

// D (64×128, f32) (+)= A·B, both K-major from shared memory; `accumulate` = 0 overwrites D.
__device__ __forceinline__ void wgmma_ss(float* d, u64 a, u64 b, int accumulate) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n128k16.f32." WG_TYPE "." WG_TYPE " " ACC_LIST
                 ", %64, %65, p, 1, 1, 0, 0;\n}\n"
                 : ACC_OPERANDS(d)
                 : "l"(a), "l"(b), "r"(accumulate));
}

// D (64×128, f32) += A·B, A (this warp's 16×16 slice) from registers, B MN-major from shared
// memory.
__device__ __forceinline__ void wgmma_rs_mn(float* d, const u32* a, u64 b) {
    asm volatile("wgmma.mma_async.sync.aligned.m64n128k16.f32." WG_TYPE "." WG_TYPE " " ACC_LIST
                 ", {%64, %65, %66, %67}, %68, 1, 1, 1, 1;\n"
                 : ACC_OPERANDS(d)
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b));
}

// O += P·V for one key tile at `tile` (shared address).
__device__ __forceinline__ void issue_pv(float* o, u32 (*p)[4], u32 tile) {
    // MN-major V: 64 head columns per 128-byte row, the other 64 one half further (the leading
    // offset), the next 8 keys 1024 bytes further (the stride offset).
#pragma unroll
    for (int kk = 0; kk < P_STEPS; ++kk)
        wgmma_rs_mn(o, p[kk], descriptor(tile + kk * 16 * 128, HALF_BYTES, 1024));
}

// S = Q·Kᵀ for this warpgroup's 64 rows (`q` already offset to them) against the tile at `k`.
__device__ __forceinline__ void issue_qk(float* s, u32 q, u32 k) {
#pragma unroll
    for (int kk = 0; kk < K_STEPS; ++kk) {
        const u32 step = (kk & 3) * 32;
        wgmma_ss(s, descriptor(q + (kk >> 2) * Q_HALF_BYTES + step, 16, 1024),
                 descriptor(k + (kk >> 2) * HALF_BYTES + step, 16, 1024), kk > 0);
    }
}

// Arrives on an "empty" mbarrier once per warp (the warpgroup's wgmma reading the stage has
// completed when any of its warps returns from the wait).
__device__ __forceinline__ void release(u32 bar, int lane) {
    __syncwarp();
    if (lane == 0) bar_arrive(bar);
}

// The online softmax of one tile of scores, in place: masks keys at or past `valid_keys`, moves
// each row's running maximum and sum, and leaves exp2(s·scale − max) in `s` and the factor the
// accumulated output must be scaled by in `correction`.
__device__ __forceinline__ void softmax(float* s, float* row_max, float* row_sum, float* correction,
                                        int valid_keys, float scale_log2, int t) {
    if (valid_keys < BLOCK_N) {
#pragma unroll
        for (int n = 0; n < BLOCK_N / 8; ++n) {
            const int key = n * 8 + 2 * t;
            if (key >= valid_keys) s[4 * n] = s[4 * n + 2] = NEG_INF;
            if (key + 1 >= valid_keys) s[4 * n + 1] = s[4 * n + 3] = NEG_INF;
        }
    }
#pragma unroll
    for (int half = 0; half < 2; ++half) {
        float mx = row_max[half];
#pragma unroll
        for (int n = 0; n < BLOCK_N / 8; ++n)
            mx = fmaxf(mx, fmaxf(s[4 * n + 2 * half], s[4 * n + 2 * half + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffff, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffff, mx, 2));
        correction[half] = fast_exp2((row_max[half] - mx) * scale_log2);
        row_max[half] = mx;
        const float offset = mx * scale_log2;
        float sum = 0.f;
#pragma unroll
        for (int n = 0; n < BLOCK_N / 8; ++n) {
            const float e0 = fast_exp2(s[4 * n + 2 * half] * scale_log2 - offset);
            const float e1 = fast_exp2(s[4 * n + 2 * half + 1] * scale_log2 - offset);
            s[4 * n + 2 * half] = e0;
            s[4 * n + 2 * half + 1] = e1;
            sum += e0 + e1;
        }
        row_sum[half] = row_sum[half] * correction[half] + sum;
    }
}

__device__ __forceinline__ void rescale(float* o, const float* correction) {
#pragma unroll
    for (int j = 0; j < HEAD_DIM / 8; ++j) {
        o[4 * j] *= correction[0];
        o[4 * j + 1] *= correction[0];
        o[4 * j + 2] *= correction[1];
        o[4 * j + 3] *= correction[1];
    }
}

// The accumulator layout of two neighbouring n8 score tiles is the A-fragment layout of one k16
// step, so P feeds the next product from registers.
__device__ __forceinline__ void to_probabilities(u32 (*p)[4], const float* s) {
#pragma unroll
    for (int kk = 0; kk < P_STEPS; ++kk) {
        p[kk][0] = pack2(s[8 * kk], s[8 * kk + 1]);
        p[kk][1] = pack2(s[8 * kk + 2], s[8 * kk + 3]);
        p[kk][2] = pack2(s[8 * kk + 4], s[8 * kk + 5]);
        p[kk][3] = pack2(s[8 * kk + 6], s[8 * kk + 7]);
    }
}

// The key tile `tile` of the sequence: its segment's tensor maps, first token and valid rows.
struct KeyTile {
    const TensorMap* k;
    const TensorMap* v;
    int first;
    int valid;
};

__device__ __forceinline__ KeyTile key_tile(int tile, int tiles1, const TensorMap* k1,
                                            const TensorMap* v1, int len_k1, const TensorMap* k2,
                                            const TensorMap* v2, int len_k2) {
    if (tile < tiles1) return KeyTile{k1, v1, tile * BLOCK_N, min(BLOCK_N, len_k1 - tile * BLOCK_N)};
    const int first = (tile - tiles1) * BLOCK_N;
    return KeyTile{k2, v2, first, min(BLOCK_N, len_k2 - first)};
}

extern "C" __global__ void __launch_bounds__(THREADS, 1)
flash_attention_forward(const __grid_constant__ TensorMap q_map,
                        const __grid_constant__ TensorMap k1_map,
                        const __grid_constant__ TensorMap v1_map,
                        const __grid_constant__ TensorMap k2_map,
                        const __grid_constant__ TensorMap v2_map, u16* __restrict__ out, int len_q,
                        int len_k1, int len_k2, int heads, float scale_log2) {
    extern __shared__ __align__(1024) unsigned char shared_raw[];
    // The swizzle is a function of the address bits, so the tiles start 1024-byte aligned
    // whatever alignment the dynamic shared memory has (the launch adds 1 KB for this).
    const u32 base = (smem_addr(shared_raw) + 1023) & ~1023u;
    const u32 bars = base + BAR_OFFSET;
    const int tiles1 = (len_k1 + BLOCK_N - 1) / BLOCK_N;
    const int key_tiles = tiles1 + (len_k2 + BLOCK_N - 1) / BLOCK_N;
    const int q0 = blockIdx.x * BLOCK_M;
    const int head = blockIdx.y;
    const int batch = blockIdx.z;
    const int warpgroup = threadIdx.x / 128;

    if (threadIdx.x == 0) {
        bar_init(bars + 8 * BAR_Q, 1);
        for (int s = 0; s < STAGES; ++s) {
            bar_init(bars + 8 * BAR_K_FULL(s), 1);
            bar_init(bars + 8 * BAR_V_FULL(s), 1);
            bar_init(bars + 8 * BAR_K_EMPTY(s), CONSUMER_WARPS);
            bar_init(bars + 8 * BAR_V_EMPTY(s), CONSUMER_WARPS);
        }
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    __syncthreads();

    if (warpgroup == 0) {
        // Producer: one thread issues every copy.
        asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(PRODUCER_REGISTERS));
        if (threadIdx.x != 0) return;
        bar_expect_bytes(bars + 8 * BAR_Q, 2 * BOX_BYTES);
        tma_load(base + Q_OFFSET, &q_map, 0, head, q0, batch, bars + 8 * BAR_Q);
        tma_load(base + Q_OFFSET + Q_HALF_BYTES, &q_map, 64, head, q0, batch, bars + 8 * BAR_Q);
        for (int tile = 0; tile < key_tiles; ++tile) {
            const int stage = tile % STAGES;
            const u32 parity = ((tile / STAGES) & 1) ^ 1;
            const KeyTile keys =
                key_tile(tile, tiles1, &k1_map, &v1_map, len_k1, &k2_map, &v2_map, len_k2);
            const u32 k_tile = base + K_OFFSET + stage * TILE_BYTES;
            const u32 v_tile = base + V_OFFSET + stage * TILE_BYTES;
            bar_wait(bars + 8 * BAR_K_EMPTY(stage), parity);
            bar_expect_bytes(bars + 8 * BAR_K_FULL(stage), 2 * BOX_BYTES);
            tma_load(k_tile, keys.k, 0, head, keys.first, batch, bars + 8 * BAR_K_FULL(stage));
            tma_load(k_tile + HALF_BYTES, keys.k, 64, head, keys.first, batch,
                     bars + 8 * BAR_K_FULL(stage));
            bar_wait(bars + 8 * BAR_V_EMPTY(stage), parity);
            bar_expect_bytes(bars + 8 * BAR_V_FULL(stage), 2 * BOX_BYTES);
            tma_load(v_tile, keys.v, 0, head, keys.first, batch, bars + 8 * BAR_V_FULL(stage));
            tma_load(v_tile + HALF_BYTES, keys.v, 64, head, keys.first, batch,
                     bars + 8 * BAR_V_FULL(stage));
        }
        return;
    }

    // Consumers.
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(CONSUMER_REGISTERS));
    const int wg = warpgroup - 1;
    const int lane = threadIdx.x % 32;
    const int warp = (threadIdx.x % 128) / 32;
    const int t = lane % 4;

    float o[64];
    float s[64];
    u32 p[P_STEPS][4];
#pragma unroll
    for (int i = 0; i < 64; ++i) o[i] = 0.f;
    float row_max[2] = {NEG_INF, NEG_INF};
    float row_sum[2] = {0.f, 0.f};
    const u32 q_tile = base + Q_OFFSET + wg * 64 * 128;

    bar_wait(bars + 8 * BAR_Q, 0);
    const u32 k_tiles = base + K_OFFSET;
    const u32 v_tiles = base + V_OFFSET;

    // Every wgmma is issued outside conditional code: a wgmma on a path the compiler sees as
    // divergent makes ptxas serialise all of them.
    // Tile 0: S_0 alone.
    bar_wait(bars + 8 * BAR_K_FULL(0), 0);
    wgmma_fence();
    issue_qk(s, q_tile, k_tiles);
    wgmma_commit();
    wgmma_wait<0>();
    fence_registers(s);
    release(bars + 8 * BAR_K_EMPTY(0), lane);
    float correction[2];
    softmax(s, row_max, row_sum, correction,
            key_tile(0, tiles1, &k1_map, &v1_map, len_k1, &k2_map, &v2_map, len_k2).valid,
            scale_log2, t);
    to_probabilities(p, s);

    // Tiles 1 .. key_tiles-1: S_j with O += P_{j-1}·V_{j-1}.
    for (int tile = 1; tile < key_tiles; ++tile) {
        const int stage = tile % STAGES;
        const u32 parity = (tile / STAGES) & 1;
        const int prev_stage = (tile - 1) % STAGES;
        const u32 prev_parity = ((tile - 1) / STAGES) & 1;
        bar_wait(bars + 8 * BAR_K_FULL(stage), parity);
        bar_wait(bars + 8 * BAR_V_FULL(prev_stage), prev_parity);
        fence_registers(o);
        fence_registers(&p[0][0], 4 * P_STEPS);
        wgmma_fence();
        issue_qk(s, q_tile, k_tiles + stage * TILE_BYTES);
        wgmma_commit();
        issue_pv(o, p, v_tiles + prev_stage * TILE_BYTES);
        wgmma_commit();
        wgmma_wait<1>();
        fence_registers(s);
        release(bars + 8 * BAR_K_EMPTY(stage), lane);
        softmax(s, row_max, row_sum, correction,
                key_tile(tile, tiles1, &k1_map, &v1_map, len_k1, &k2_map, &v2_map, len_k2).valid,
                scale_log2, t);
        wgmma_wait<0>();
        fence_registers(o);
        fence_registers(&p[0][0], 4 * P_STEPS);
        release(bars + 8 * BAR_V_EMPTY(prev_stage), lane);
        rescale(o, correction);
        to_probabilities(p, s);
    }

    // Then O += P·V of the last tile.
    {
        const int last = key_tiles - 1;
        const int stage = last % STAGES;
        bar_wait(bars + 8 * BAR_V_FULL(stage), (last / STAGES) & 1);
        fence_registers(o);
        fence_registers(&p[0][0], 4 * P_STEPS);
        wgmma_fence();
        issue_pv(o, p, v_tiles + stage * TILE_BYTES);
        wgmma_commit();
        wgmma_wait<0>();
        fence_registers(o);
    }

    // Normalise and store [batch, len_q, heads, HEAD_DIM].
    const int g = lane / 4;
#pragma unroll
    for (int half = 0; half < 2; ++half) {
        float sum = row_sum[half];
        sum += __shfl_xor_sync(0xffffffff, sum, 1);
        sum += __shfl_xor_sync(0xffffffff, sum, 2);
        const float inv = 1.f / sum;
        const int row = q0 + wg * 64 + warp * 16 + g + half * 8;
        if (row < len_q) {
            u16* dst = out + (((long long)batch * len_q + row) * heads + head) * HEAD_DIM;
#pragma unroll
            for (int j = 0; j < HEAD_DIM / 8; ++j) {
                const u32 packed = pack2(o[4 * j + 2 * half] * inv, o[4 * j + 2 * half + 1] * inv);
                *reinterpret_cast<u32*>(dst + j * 8 + 2 * t) = packed;
            }
        }
    }
}
