// CUDA C's device vocabulary for a host C++ compiler, so that graphc's kernels (prelude.cuh,
// kernels.cu and the generated ones) compile unchanged for the CPU and run there in tests. The
// fake NVRTC (nvrtc.cpp) includes it before a program's source and appends the table of its
// kernels; the fake driver (driver.cpp) finds and runs them through the two functions at the end.
//
// A launch runs its grid's blocks one after another. Within a block, a kernel that never waits
// at a barrier runs its threads one after another; one that does (`cooperative`) runs each
// thread as a fiber, and `__syncthreads` hands over to the block's next fiber, so every thread
// reaches the barrier before any passes it. Shared memory is a function-local static: one
// block runs at a time on each host thread, and all this state is the host thread's own.

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include <ucontext.h>

#define __global__
#define __device__
#define __shared__ static thread_local

struct dim3 {
    unsigned x = 0, y = 0, z = 0;
};

static thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;

inline float __int_as_float(int bits) {
    float value;
    std::memcpy(&value, &bits, sizeof value);
    return value;
}

inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }

namespace cuda_on_cpu {

// One CUDA thread of a cooperative block: its context and stack.
struct Fiber {
    ucontext_t context;
    std::vector<char> stack;
    bool done = false;
};

static thread_local ucontext_t scheduler;
static thread_local std::vector<Fiber> fibers;
static thread_local unsigned running = 0;
static thread_local bool cooperating = false;
static thread_local void (*thread_body)(void**) = nullptr;
static thread_local void** thread_args = nullptr;

static void fiber_entry() {
    thread_body(thread_args);
    fibers[running].done = true;
}

// Runs the current block's threads as fibers, round-robin until all have returned.
static void run_block_cooperatively(unsigned threads) {
    constexpr std::size_t STACK = 64 * 1024;
    fibers.resize(threads);
    for (Fiber& fiber : fibers) {
        fiber.stack.resize(STACK);
        fiber.done = false;
        getcontext(&fiber.context);
        fiber.context.uc_stack.ss_sp = fiber.stack.data();
        fiber.context.uc_stack.ss_size = fiber.stack.size();
        fiber.context.uc_link = &scheduler;
        makecontext(&fiber.context, fiber_entry, 0);
    }
    for (unsigned left = threads; left > 0;) {
        left = 0;
        for (running = 0; running < threads; ++running) {
            if (fibers[running].done) continue;
            threadIdx.x = running;
            swapcontext(&scheduler, &fibers[running].context);
            left += !fibers[running].done;
        }
    }
}

// Calls kernel `k` with the parameters `args` points to (as cuLaunchKernel takes them).
template <class... P, std::size_t... I>
void invoke(void (*k)(P...), void** args, std::index_sequence<I...>) {
    k(*static_cast<std::remove_cv_t<P>*>(args[I])...);
}

template <class... P>
void invoke(void (*k)(P...), void** args) {
    invoke(k, args, std::index_sequence_for<P...>{});
}

// The sizes of a kernel's parameters, in order.
template <class... P>
struct ParameterSizes {
    static constexpr std::size_t each[sizeof...(P) + 1] = {sizeof(std::remove_cv_t<P>)..., 0};
};

template <class... P>
constexpr const std::size_t* parameter_sizes(void (*)(P...)) {
    return ParameterSizes<P...>::each;
}

template <class... P>
constexpr unsigned parameter_count(void (*)(P...)) {
    return sizeof...(P);
}

// A kernel of the translation unit: its name, a call of it with cuLaunchKernel's parameter
// array, whether it waits at a barrier (then its threads run as fibers), and its parameters'
// sizes (so that a captured launch can keep copies of their values).
struct Entry {
    const char* name;
    void (*call)(void**);
    bool cooperative;
    unsigned parameters;
    const std::size_t* sizes;
};

}  // namespace cuda_on_cpu

inline void __syncthreads() {
    using namespace cuda_on_cpu;
    if (!cooperating) {
        std::fprintf(stderr, "__syncthreads in a kernel not launched as cooperative\n");
        std::abort();
    }
    swapcontext(&fibers[running].context, &scheduler);
}

// Every kernel of the translation unit, ended by an entry without a name; defined after the
// source by the fake NVRTC.
extern const cuda_on_cpu::Entry cuda_on_cpu_entries[];

// The kernel `name` of this translation unit, or null.
extern "C" const cuda_on_cpu::Entry* cuda_on_cpu_find(const char* name) {
    for (const cuda_on_cpu::Entry* entry = cuda_on_cpu_entries; entry->name != nullptr; ++entry)
        if (std::strcmp(entry->name, name) == 0) return entry;
    return nullptr;
}

// The number of parameters of kernel `entry`, and their sizes in `sizes`.
extern "C" unsigned cuda_on_cpu_parameters(const cuda_on_cpu::Entry* entry, const std::size_t** sizes) {
    *sizes = entry->sizes;
    return entry->parameters;
}

// Runs kernel `entry` over a grid of `grid` blocks of `block` threads with cuLaunchKernel's
// parameter array `args`, block after block.
extern "C" void cuda_on_cpu_run(const cuda_on_cpu::Entry* entry, unsigned grid, unsigned block, void** args) {
    using namespace cuda_on_cpu;
    gridDim = {grid, 1, 1};
    blockDim = {block, 1, 1};
    threadIdx = blockIdx = {0, 0, 0};
    cooperating = entry->cooperative;
    for (unsigned b = 0; b < grid; ++b) {
        blockIdx.x = b;
        if (cooperating) {
            thread_body = entry->call;
            thread_args = args;
            run_block_cooperatively(block);
        } else {
            for (unsigned t = 0; t < block; ++t) {
                threadIdx.x = t;
                entry->call(args);
            }
        }
    }
}
