// A fake libcublas for tests: sgemm on the CPU over the fake driver's memory (host memory),
// each operand checked to lie inside one of its allocations. Column-major, as cuBLAS; the
// scalars are read from the host (CUBLAS_POINTER_MODE_HOST, the default).

#include <algorithm>
#include <cstddef>
#include <functional>
#include <vector>

extern "C" int fake_cuda_check(unsigned long long ptr, std::size_t bytes, const char* call);
extern "C" int fake_cuda_submit(std::function<int()>* operation);

namespace {

enum Status { SUCCESS = 0, NOT_INITIALIZED = 1, INVALID_VALUE = 7, EXECUTION_FAILED = 13 };
enum Operation { OP_N = 0, OP_T = 1, OP_C = 2 };

struct Handle {
    void* stream = nullptr;
};

// Whether the `rows`×`cols` column-major matrix at `p` with leading dimension `ld` lies inside
// one allocation.
bool operand_inside(const float* p, int rows, int cols, int ld) {
    if (rows == 0 || cols == 0) return true;
    const std::size_t last = static_cast<std::size_t>(cols - 1) * ld + rows;
    return fake_cuda_check(reinterpret_cast<unsigned long long>(p), last * sizeof(float), "cublasSgemm") == 0;
}

// `op`(X) as a plain column-major rows×cols matrix.
std::vector<float> plain(Operation op, const float* x, int rows, int cols, int ld) {
    std::vector<float> out(static_cast<std::size_t>(rows) * cols);
    for (int j = 0; j < cols; ++j)
        for (int i = 0; i < rows; ++i)
            out[static_cast<std::size_t>(j) * rows + i] =
                op == OP_N ? x[static_cast<std::size_t>(j) * ld + i] : x[static_cast<std::size_t>(i) * ld + j];
    return out;
}

}  // namespace

extern "C" {

Status cublasCreate_v2(Handle** handle) {
    *handle = new Handle;
    return SUCCESS;
}

Status cublasDestroy_v2(Handle* handle) {
    delete handle;
    return SUCCESS;
}

Status cublasSetWorkspace_v2(Handle* handle, void* workspace, std::size_t bytes) {
    if (handle == nullptr) return NOT_INITIALIZED;
    return workspace != nullptr && fake_cuda_check(reinterpret_cast<unsigned long long>(workspace), bytes,
                                                   "cublasSetWorkspace") == 0
               ? SUCCESS
               : INVALID_VALUE;
}

Status cublasSetStream_v2(Handle* handle, void* stream) {
    handle->stream = stream;
    return SUCCESS;
}

// C = alpha op(A) op(B) + beta C, with op(A) m×k and op(B) k×n.
Status cublasSgemm_v2(Handle* handle, Operation ta, Operation tb, int m, int n, int k, const float* alpha,
                      const float* a, int lda, const float* b, int ldb, const float* beta, float* c, int ldc) {
    if (handle == nullptr) return NOT_INITIALIZED;
    if (m < 0 || n < 0 || k < 0 || ldc < (m > 1 ? m : 1) || lda < 1 || ldb < 1) return INVALID_VALUE;
    const bool fits = operand_inside(a, ta == OP_N ? m : k, ta == OP_N ? k : m, lda) &&
                      operand_inside(b, tb == OP_N ? k : n, tb == OP_N ? n : k, ldb) &&
                      operand_inside(c, m, n, ldc);
    if (!fits) return EXECUTION_FAILED;
    // The scalars are read now (host pointer mode), the matrices when the product runs (on
    // the stream, or at each launch of a graph that captured it).
    const float scale_ab = *alpha, scale_c = *beta;
    auto product = new std::function<int()>([=] {
        const std::vector<float> pa = plain(ta, a, m, k, lda), pb = plain(tb, b, k, n, ldb);
        std::vector<float> column(static_cast<std::size_t>(m));
        for (int j = 0; j < n; ++j) {
            std::fill(column.begin(), column.end(), 0.0f);
            for (int l = 0; l < k; ++l) {
                const float scale = pb[static_cast<std::size_t>(j) * k + l];
                const float* from = &pa[static_cast<std::size_t>(l) * m];
                for (int i = 0; i < m; ++i) column[i] += from[i] * scale;
            }
            float* to = c + static_cast<std::size_t>(j) * ldc;
            for (int i = 0; i < m; ++i) to[i] = scale_ab * column[i] + (scale_c == 0.0f ? 0.0f : scale_c * to[i]);
        }
        return 0;
    });
    return fake_cuda_submit(product) == 0 ? SUCCESS : EXECUTION_FAILED;
}

}  // extern "C"
