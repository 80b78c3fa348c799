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
