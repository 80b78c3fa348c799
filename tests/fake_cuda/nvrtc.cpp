// A fake libnvrtc for tests: "compiles" a CUDA C program by compiling it for the CPU with the
// host's C++ compiler (`$CXX`, default g++) behind shim.h, into a shared library. The "PTX" it
// returns is that library's path, which the fake driver's cuModuleLoadData loads.
//
// Built by tests/fake_cuda/mod.rs with -DSHIM_PATH="…/shim.h".

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

namespace {

enum Result { SUCCESS = 0, ERROR_INVALID_INPUT = 3, ERROR_INVALID_PROGRAM = 4, ERROR_COMPILATION = 6 };

struct Program {
    std::string source;
    std::string library;  // the compiled library's path: the "PTX"
    std::string log;
};

// The table of `source`'s `extern "C" __global__` kernels that shim.h's cuda_on_cpu_find reads;
// a kernel is cooperative when its text (up to the next kernel) waits at a barrier.
std::string entry_table(const std::string& source) {
    const std::string marker = "extern \"C\" __global__ void ";
    std::vector<std::size_t> starts;
    for (std::size_t at = source.find(marker); at != std::string::npos; at = source.find(marker, at + 1))
        starts.push_back(at);
    std::string table = "\nextern const cuda_on_cpu::Entry cuda_on_cpu_entries[] = {\n";
    for (std::size_t k = 0; k < starts.size(); ++k) {
        const std::size_t name_at = starts[k] + marker.size();
        const std::string name = source.substr(name_at, source.find('(', name_at) - name_at);
        const std::size_t end = k + 1 < starts.size() ? starts[k + 1] : source.size();
        const std::string body = source.substr(starts[k], end - starts[k]);
        const bool cooperative =
            body.find("block_sum(") != std::string::npos || body.find("__syncthreads") != std::string::npos;
        table += "    {\"" + name + "\", [](void** a) { cuda_on_cpu::invoke(" + name + ", a); }, " +
                 (cooperative ? "true" : "false") + ", cuda_on_cpu::parameter_count(" + name +
                 "), cuda_on_cpu::parameter_sizes(" + name + ")},\n";
    }
    return table + "    {nullptr, nullptr, false, 0, nullptr},\n};\n";
}

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

}  // namespace

extern "C" {

Result nvrtcVersion(int* major, int* minor) {
    *major = 12;
    *minor = 8;
    return SUCCESS;
}

const char* nvrtcGetErrorString(Result result) {
    switch (result) {
        case SUCCESS: return "NVRTC_SUCCESS";
        case ERROR_COMPILATION: return "NVRTC_ERROR_COMPILATION";
        case ERROR_INVALID_PROGRAM: return "NVRTC_ERROR_INVALID_PROGRAM";
        default: return "NVRTC_ERROR_INVALID_INPUT";
    }
}

Result nvrtcCreateProgram(Program** program, const char* source, const char*, int headers, const char* const*,
                          const char* const*) {
    if (program == nullptr || source == nullptr || headers != 0) return ERROR_INVALID_INPUT;
    *program = new Program{source, "", ""};
    return SUCCESS;
}

Result nvrtcDestroyProgram(Program** program) {
    if (program == nullptr || *program == nullptr) return ERROR_INVALID_PROGRAM;
    delete *program;
    *program = nullptr;
    return SUCCESS;
}

// Options (the architecture) are accepted and ignored: the code is for the CPU.
Result nvrtcCompileProgram(Program* program, int, const char* const*) {
    if (program == nullptr) return ERROR_INVALID_PROGRAM;
    char dir[] = "/tmp/graphc-fake-nvrtc-XXXXXX";
    if (mkdtemp(dir) == nullptr) return ERROR_COMPILATION;
    const std::string unit = std::string(dir) + "/program.cpp", library = std::string(dir) + "/program.so";
    const std::string log = std::string(dir) + "/log.txt";
    std::ofstream(unit) << "#include \"" SHIM_PATH "\"\n" << program->source << entry_table(program->source);
    const char* compiler = std::getenv("CXX");
    const std::string command = std::string(compiler != nullptr ? compiler : "g++") +
                                " -std=c++17 -O2 -shared -fPIC -o " + library + " " + unit + " > " + log + " 2>&1";
    const int status = std::system(command.c_str());
    program->log = read_file(log);
    std::remove(unit.c_str());
    std::remove(log.c_str());
    if (status != 0) {
        rmdir(dir);
        return ERROR_COMPILATION;
    }
    program->library = library;
    return SUCCESS;
}

Result nvrtcGetPTXSize(Program* program, std::size_t* size) {
    if (program == nullptr || program->library.empty()) return ERROR_INVALID_PROGRAM;
    *size = program->library.size() + 1;
    return SUCCESS;
}

Result nvrtcGetPTX(Program* program, char* ptx) {
    if (program == nullptr || program->library.empty()) return ERROR_INVALID_PROGRAM;
    std::memcpy(ptx, program->library.c_str(), program->library.size() + 1);
    return SUCCESS;
}

Result nvrtcGetProgramLogSize(Program* program, std::size_t* size) {
    if (program == nullptr) return ERROR_INVALID_PROGRAM;
    *size = program->log.size() + 1;
    return SUCCESS;
}

Result nvrtcGetProgramLog(Program* program, char* log) {
    if (program == nullptr) return ERROR_INVALID_PROGRAM;
    std::memcpy(log, program->log.c_str(), program->log.size() + 1);
    return SUCCESS;
}

}  // extern "C"
