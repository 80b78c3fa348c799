// Definitions shared by the hand-written and the generated CUDA kernels.

#define MAX_RANK 8

typedef unsigned long long u64;
typedef long long i64;

#define FOR_EACH(i, n) \
    for (u64 i = blockIdx.x * (u64)blockDim.x + threadIdx.x; i < (u64)(n); i += (u64)gridDim.x * blockDim.x)

// A strided view: `rank` axes of `size` elements, `stride` elements apart in memory.
struct View {
    int rank;
    i64 size[MAX_RANK];
    i64 stride[MAX_RANK];
};

// The memory offset of the element number `i` (row-major over `v.size`) of view `v`.
__device__ i64 offset_of(const View& v, u64 i) {
    i64 offset = 0;
    for (int d = v.rank - 1; d >= 0; --d) {
        offset += (i64)(i % (u64)v.size[d]) * v.stride[d];
        i /= (u64)v.size[d];
    }
    return offset;
}

// Threads per block of the kernels that give each output a whole block (`*_wide`); a power of two.
#define WIDE_BLOCK 256

// The sum of every thread's `value` over the block, added in a fixed tree order (so the result
// does not depend on timing), returned to every thread. All threads of the block must call it.
__device__ double block_sum(double* partial, double value) {
    partial[threadIdx.x] = value;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) partial[threadIdx.x] += partial[threadIdx.x + s];
        __syncthreads();
    }
    const double total = partial[0];
    __syncthreads();
    return total;
}

// Grid-stride over outputs by block: every thread of a block takes the same outputs.
#define FOR_EACH_BLOCK(i, n) for (u64 i = blockIdx.x; i < (u64)(n); i += gridDim.x)
