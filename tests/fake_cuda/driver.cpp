// A fake libcuda for tests: one "device" whose memory is host memory and whose kernels are the
// fake NVRTC's CPU builds (shim.h), so that graphc's CUDA executor runs unchanged, through
// cudarc, on a machine without a GPU. Everything runs synchronously on the calling thread, in
// issue order, which is one legal schedule of a single stream.
//
// Checks a real device would fault on: every copy and memset must lie inside one live
// allocation; every allocation lies between guards of canary bytes, checked at each
// synchronization, so a kernel's write out of bounds fails the next synchronize with
// CUDA_ERROR_ILLEGAL_ADDRESS (and every call after it, as a faulted context does).
//
// Stream capture (CUDA graphs) records the stream's operations instead of running them, kernel
// parameters copied, and a graph launch replays them. As on a GPU: the legacy default stream
// cannot be captured, and a copy to or from host memory or a synchronization during a capture
// fails with CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED and invalidates the capture.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>

#include <dlfcn.h>
#include <unistd.h>

namespace {

enum Result {
    SUCCESS = 0,
    ERROR_INVALID_VALUE = 1,
    ERROR_OUT_OF_MEMORY = 2,
    ERROR_INVALID_DEVICE = 101,
    ERROR_INVALID_IMAGE = 200,
    ERROR_INVALID_HANDLE = 400,
    ERROR_NOT_FOUND = 500,
    ERROR_ILLEGAL_ADDRESS = 700,
    ERROR_LAUNCH_FAILED = 719,
    ERROR_CAPTURE_UNSUPPORTED = 900,
    ERROR_CAPTURE_INVALIDATED = 901,
};

using DevicePtr = unsigned long long;

// Mirrors shim.h's cuda_on_cpu::Entry, which this library only passes back to its module.
struct Entry;
using FindFn = const Entry* (*)(const char*);
using RunFn = void (*)(const Entry*, unsigned, unsigned, void**);
using ParametersFn = unsigned (*)(const Entry*, const std::size_t**);

struct Module {
    void* library;
    FindFn find;
    RunFn run;
    ParametersFn parameters;
};

struct Function {
    const Entry* entry;
    RunFn run;
    ParametersFn parameters;
};

// An operation on the stream, run now or recorded by a capture.
using Operation = std::function<Result()>;

// A captured graph (and its instantiation, the same list).
struct Graph {
    std::vector<Operation> operations;
};

int stream_token;  // a created stream's handle points here

struct Event {
    std::chrono::steady_clock::time_point at;
    bool recorded = false;
};

constexpr std::size_t GUARD = 4096;
constexpr unsigned char CANARY = 0xa5;

std::mutex lock;
std::map<DevicePtr, std::size_t> allocations;  // start → bytes
Result fault = SUCCESS;                        // sticky, as after a device fault
int context_token;                             // the one context's handle points here
thread_local void* current_context = nullptr;
// The operations recorded since cuStreamBeginCapture, while capturing.
bool capturing = false;
bool capture_invalidated = false;
std::vector<Operation> captured;

Result fail(Result result, const char* call, const char* why) {
    std::fprintf(stderr, "fake CUDA: %s: %s\n", call, why);
    return result;
}

// Runs `operation`, or records it while capturing.
Result submit(Operation operation) {
    if (capturing) {
        captured.push_back(std::move(operation));
        return SUCCESS;
    }
    return operation();
}

// What a call that cannot be captured (a host copy, a synchronization) does during a capture.
Result not_capturable(const char* call) {
    capture_invalidated = true;
    return fail(ERROR_CAPTURE_UNSUPPORTED, call, "not permitted while the stream is capturing");
}

// Whether [ptr, ptr + bytes) lies inside one live allocation. Caller holds `lock`.
bool inside(DevicePtr ptr, std::size_t bytes) {
    auto at = allocations.upper_bound(ptr);
    if (at == allocations.begin()) return false;
    --at;
    return ptr + bytes <= at->first + at->second;
}

Result check(DevicePtr ptr, std::size_t bytes, const char* call) {
    std::lock_guard<std::mutex> held(lock);
    if (fault != SUCCESS) return fault;
    if (!inside(ptr, bytes)) return fail(ERROR_INVALID_VALUE, call, "the range is not inside one allocation");
    return SUCCESS;
}

// Checks every allocation's guards; a changed canary is a fault.
Result synchronize(const char* call) {
    if (capturing) return not_capturable(call);
    std::lock_guard<std::mutex> held(lock);
    if (fault != SUCCESS) return fault;
    for (const auto& [start, bytes] : allocations) {
        const unsigned char* base = reinterpret_cast<const unsigned char*>(start);
        for (std::size_t k = 0; k < GUARD; ++k) {
            if (base[-1 - static_cast<long>(k)] != CANARY || base[bytes + k] != CANARY) {
                std::fprintf(stderr, "fake CUDA: %s: a kernel wrote outside the allocation of %zu bytes at %#llx\n",
                             call, bytes, start);
                return fault = ERROR_ILLEGAL_ADDRESS;
            }
        }
    }
    return SUCCESS;
}

Result allocate(DevicePtr* ptr, std::size_t bytes) {
    std::lock_guard<std::mutex> held(lock);
    if (fault != SUCCESS) return fault;
    unsigned char* block = static_cast<unsigned char*>(std::malloc(bytes + 2 * GUARD));
    if (block == nullptr) return ERROR_OUT_OF_MEMORY;
    std::memset(block, CANARY, GUARD);
    std::memset(block + GUARD + bytes, CANARY, GUARD);
    // Uninitialized device memory: NaNs, so that a read before a write shows.
    std::memset(block + GUARD, 0xff, bytes);
    *ptr = reinterpret_cast<DevicePtr>(block + GUARD);
    allocations[*ptr] = bytes;
    return SUCCESS;
}

Result release(DevicePtr ptr) {
    std::lock_guard<std::mutex> held(lock);
    auto at = allocations.find(ptr);
    if (at == allocations.end()) return fail(ERROR_INVALID_VALUE, "cuMemFree", "not an allocation");
    allocations.erase(at);
    std::free(reinterpret_cast<unsigned char*>(ptr) - GUARD);
    return SUCCESS;
}

Result copy(DevicePtr to, DevicePtr from, std::size_t bytes, bool to_device, bool from_device, const char* call) {
    if (to_device) {
        if (Result r = check(to, bytes, call)) return r;
    }
    if (from_device) {
        if (Result r = check(from, bytes, call)) return r;
    }
    std::memmove(reinterpret_cast<void*>(to), reinterpret_cast<const void*>(from), bytes);
    return SUCCESS;
}

}  // namespace

extern "C" {

Result cuInit(unsigned) { return SUCCESS; }

Result cuDriverGetVersion(int* version) {
    *version = 12080;
    return SUCCESS;
}

Result cuDeviceGetCount(int* count) {
    *count = 1;
    return SUCCESS;
}

Result cuDeviceGet(int* device, int ordinal) {
    if (ordinal != 0) return ERROR_INVALID_DEVICE;
    *device = 0;
    return SUCCESS;
}

// Compute capability 9.0 and two multiprocessors (so that launches of many blocks loop
// grid-stride); no memory pools (so cudarc allocates with cuMemAlloc).
Result cuDeviceGetAttribute(int* value, int attribute, int device) {
    if (device != 0) return ERROR_INVALID_DEVICE;
    switch (attribute) {
        case 16: *value = 2; break;   // MULTIPROCESSOR_COUNT
        case 75: *value = 9; break;   // COMPUTE_CAPABILITY_MAJOR
        case 76: *value = 0; break;   // COMPUTE_CAPABILITY_MINOR
        case 115: *value = 0; break;  // MEMORY_POOLS_SUPPORTED
        default: *value = 0;
    }
    return SUCCESS;
}

Result cuDeviceGetName(char* name, int length, int device) {
    if (device != 0 || length <= 0) return ERROR_INVALID_VALUE;
    std::snprintf(name, static_cast<std::size_t>(length), "fake CUDA device on the CPU (tests/fake_cuda)");
    return SUCCESS;
}

Result cuDeviceTotalMem_v2(std::size_t* bytes, int) {
    *bytes = std::size_t(1) << 34;
    return SUCCESS;
}

Result cuDevicePrimaryCtxRetain(void** context, int device) {
    if (device != 0) return ERROR_INVALID_DEVICE;
    *context = &context_token;
    return SUCCESS;
}

Result cuDevicePrimaryCtxRelease_v2(int) { return SUCCESS; }

Result cuCtxGetCurrent(void** context) {
    *context = current_context;
    return SUCCESS;
}

Result cuCtxSetCurrent(void* context) {
    current_context = context;
    return SUCCESS;
}

Result cuCtxGetDevice(int* device) {
    *device = 0;
    return SUCCESS;
}

Result cuCtxSynchronize() { return synchronize("cuCtxSynchronize"); }

Result cuStreamSynchronize(void*) { return synchronize("cuStreamSynchronize"); }

Result cuStreamWaitEvent(void*, void*, unsigned) { return SUCCESS; }

Result cuMemAlloc_v2(DevicePtr* ptr, std::size_t bytes) { return allocate(ptr, bytes); }

Result cuMemAllocAsync(DevicePtr* ptr, std::size_t bytes, void*) { return allocate(ptr, bytes); }

Result cuMemFree_v2(DevicePtr ptr) { return release(ptr); }

Result cuMemFreeAsync(DevicePtr ptr, void*) { return release(ptr); }

Result cuMemsetD8_v2(DevicePtr ptr, unsigned char value, std::size_t n) {
    if (Result r = check(ptr, n, "cuMemsetD8")) return r;
    return submit([=] {
        std::memset(reinterpret_cast<void*>(ptr), value, n);
        return SUCCESS;
    });
}

Result cuMemsetD8Async(DevicePtr ptr, unsigned char value, std::size_t n, void*) { return cuMemsetD8_v2(ptr, value, n); }

Result cuMemcpyHtoD_v2(DevicePtr to, const void* from, std::size_t bytes) {
    if (capturing) return not_capturable("cuMemcpyHtoD");
    return copy(to, reinterpret_cast<DevicePtr>(from), bytes, true, false, "cuMemcpyHtoD");
}

Result cuMemcpyHtoDAsync_v2(DevicePtr to, const void* from, std::size_t bytes, void*) {
    return cuMemcpyHtoD_v2(to, from, bytes);
}

Result cuMemcpyDtoH_v2(void* to, DevicePtr from, std::size_t bytes) {
    if (Result r = synchronize("cuMemcpyDtoH")) return r;
    return copy(reinterpret_cast<DevicePtr>(to), from, bytes, false, true, "cuMemcpyDtoH");
}

Result cuMemcpyDtoHAsync_v2(void* to, DevicePtr from, std::size_t bytes, void*) { return cuMemcpyDtoH_v2(to, from, bytes); }

Result cuMemcpyDtoD_v2(DevicePtr to, DevicePtr from, std::size_t bytes) {
    return submit([=] { return copy(to, from, bytes, true, true, "cuMemcpyDtoD"); });
}

Result cuMemcpyDtoDAsync_v2(DevicePtr to, DevicePtr from, std::size_t bytes, void*) {
    return cuMemcpyDtoD_v2(to, from, bytes);
}

// `image` is the fake NVRTC's "PTX": the path of the library it compiled, which is loaded and
// then removed.
Result cuModuleLoadData(Module** module, const void* image) {
    const char* path = static_cast<const char*>(image);
    void* library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (library == nullptr) return fail(ERROR_INVALID_IMAGE, "cuModuleLoadData", dlerror());
    auto find = reinterpret_cast<FindFn>(dlsym(library, "cuda_on_cpu_find"));
    auto run = reinterpret_cast<RunFn>(dlsym(library, "cuda_on_cpu_run"));
    auto parameters = reinterpret_cast<ParametersFn>(dlsym(library, "cuda_on_cpu_parameters"));
    if (find == nullptr || run == nullptr || parameters == nullptr)
        return fail(ERROR_INVALID_IMAGE, "cuModuleLoadData", "not a fake module");
    std::remove(path);
    const std::string dir(path, std::strrchr(path, '/'));
    rmdir(dir.c_str());
    *module = new Module{library, find, run, parameters};
    return SUCCESS;
}

Result cuModuleUnload(Module* module) {
    dlclose(module->library);
    delete module;
    return SUCCESS;
}

Result cuModuleGetFunction(Function** function, Module* module, const char* name) {
    const Entry* entry = module->find(name);
    if (entry == nullptr) return fail(ERROR_NOT_FOUND, "cuModuleGetFunction", name);
    *function = new Function{entry, module->run, module->parameters};
    return SUCCESS;
}

Result cuLaunchKernel(Function* function, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                      unsigned bz, unsigned, void*, void** params, void** extra) {
    {
        std::lock_guard<std::mutex> held(lock);
        if (fault != SUCCESS) return fault;
    }
    if (gy != 1 || gz != 1 || by != 1 || bz != 1 || gx == 0 || bx == 0 || bx > 1024 || extra != nullptr)
        return fail(ERROR_INVALID_VALUE, "cuLaunchKernel", "graphc's kernels take 1-D grids of at most 1024 threads");
    if (!capturing) {
        function->run(function->entry, gx, bx, params);
        return SUCCESS;
    }
    // Captured: the parameter values are copied now, as the driver does, since the caller's
    // may not outlive the call.
    const std::size_t* sizes = nullptr;
    const unsigned count = function->parameters(function->entry, &sizes);
    auto values = std::make_shared<std::vector<std::vector<unsigned char>>>();
    for (unsigned p = 0; p < count; ++p) {
        const unsigned char* value = static_cast<const unsigned char*>(params[p]);
        values->emplace_back(value, value + sizes[p]);
    }
    return submit([function, gx, bx, values] {
        std::vector<void*> pointers;
        for (auto& value : *values) pointers.push_back(value.data());
        function->run(function->entry, gx, bx, pointers.data());
        return SUCCESS;
    });
}

Result cuStreamCreate(void** stream, unsigned) {
    *stream = &stream_token;
    return SUCCESS;
}

Result cuStreamDestroy_v2(void*) { return SUCCESS; }

Result cuStreamBeginCapture_v2(void* stream, int) {
    if (stream == nullptr) return fail(ERROR_CAPTURE_UNSUPPORTED, "cuStreamBeginCapture", "the legacy stream cannot be captured");
    if (capturing) return fail(ERROR_INVALID_VALUE, "cuStreamBeginCapture", "already capturing");
    capturing = true;
    capture_invalidated = false;
    captured.clear();
    return SUCCESS;
}

Result cuStreamEndCapture(void*, Graph** graph) {
    if (!capturing) return fail(ERROR_INVALID_VALUE, "cuStreamEndCapture", "not capturing");
    capturing = false;
    if (capture_invalidated) {
        captured.clear();
        *graph = nullptr;
        return ERROR_CAPTURE_INVALIDATED;
    }
    *graph = new Graph{std::move(captured)};
    captured.clear();
    return SUCCESS;
}

Result cuStreamIsCapturing(void*, int* status) {
    *status = capture_invalidated && capturing ? 2 : capturing ? 1 : 0;
    return SUCCESS;
}

Result cuGraphInstantiateWithFlags(Graph** exec, Graph* graph, unsigned long long) {
    *exec = new Graph{graph->operations};
    return SUCCESS;
}

Result cuGraphLaunch(Graph* exec, void*) {
    if (capturing) return not_capturable("cuGraphLaunch");
    for (const Operation& operation : exec->operations) {
        if (Result r = operation()) return r;
    }
    return SUCCESS;
}

Result cuGraphUpload(Graph*, void*) { return SUCCESS; }

Result cuGraphExecDestroy(Graph* exec) {
    delete exec;
    return SUCCESS;
}

Result cuGraphDestroy(Graph* graph) {
    delete graph;
    return SUCCESS;
}

Result cuEventCreate(Event** event, unsigned) {
    *event = new Event;
    return SUCCESS;
}

Result cuEventDestroy_v2(Event* event) {
    delete event;
    return SUCCESS;
}

Result cuEventRecord(Event* event, void*) {
    event->at = std::chrono::steady_clock::now();
    event->recorded = true;
    return SUCCESS;
}

Result cuEventSynchronize(Event*) { return synchronize("cuEventSynchronize"); }

Result cuEventQuery(Event*) { return SUCCESS; }

Result cuEventElapsedTime(float* ms, Event* start, Event* end) {
    if (!start->recorded || !end->recorded) return ERROR_INVALID_HANDLE;
    *ms = std::chrono::duration<float, std::milli>(end->at - start->at).count();
    return SUCCESS;
}

Result cuEventElapsedTime_v2(float* ms, Event* start, Event* end) { return cuEventElapsedTime(ms, start, end); }

// For the fake cuBLAS: whether [ptr, ptr + bytes) lies inside one allocation (0), else the
// error, reported as `call`'s.
int fake_cuda_check(DevicePtr ptr, std::size_t bytes, const char* call) { return check(ptr, bytes, call); }

// For the fake cuBLAS: runs `operation` (which returns 0 on success), or records it while the
// stream is capturing; takes ownership.
int fake_cuda_submit(std::function<int()>* operation) {
    std::shared_ptr<std::function<int()>> owned(operation);
    return submit([owned] { return (*owned)() == 0 ? SUCCESS : ERROR_LAUNCH_FAILED; });
}

Result cuGetErrorString(Result result, const char** text) {
    switch (result) {
        case SUCCESS: *text = "no error"; break;
        case ERROR_ILLEGAL_ADDRESS: *text = "an illegal memory access was encountered (fake CUDA)"; break;
        default: *text = "fake CUDA error";
    }
    return SUCCESS;
}

Result cuGetErrorName(Result result, const char** text) {
    switch (result) {
        case SUCCESS: *text = "CUDA_SUCCESS"; break;
        case ERROR_ILLEGAL_ADDRESS: *text = "CUDA_ERROR_ILLEGAL_ADDRESS"; break;
        case ERROR_INVALID_VALUE: *text = "CUDA_ERROR_INVALID_VALUE"; break;
        default: *text = "CUDA_ERROR_UNKNOWN";
    }
    return SUCCESS;
}

}  // extern "C"
