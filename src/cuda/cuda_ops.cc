// Loads libtcpx_cuda.so on first use. No CUDA header is included here: the
// core only knows the table in cuda_ops.h, so it builds and runs on hosts
// without CUDA.
#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <mutex>
#include <string>
#include <vector>

#include "common/library_dir.h"
#include "common/log.h"
#include "cuda/cuda_loader.h"
#include "cuda/cuda_ops.h"

namespace tcpx::cuda {
namespace {

// Loads one candidate; on failure says why in *reason and returns null.
const tcpxCudaOps_v1* try_load(const std::string& path, int* count, std::string* reason) {
  dlerror();
  void* dl = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (dl == nullptr) {
    const char* e = dlerror();
    *reason = std::string("cannot load ") + path + ": " + (e ? e : "unknown dlopen error");
    return nullptr;
  }
  using Getter = const tcpxCudaOps_v1* (*)();
  auto get = reinterpret_cast<Getter>(dlsym(dl, TCPX_CUDA_OPS_SYMBOL));
  if (get == nullptr) {
    *reason = path + " does not export " TCPX_CUDA_OPS_SYMBOL;
    dlclose(dl);
    return nullptr;
  }
  const tcpxCudaOps_v1* t = get();
  if (t == nullptr || t->version != TCPX_CUDA_OPS_VERSION) {
    *reason = path + ": table version " + (t ? std::to_string(t->version) : "(null)") +
              ", this build needs " + std::to_string(TCPX_CUDA_OPS_VERSION);
    dlclose(dl);
    return nullptr;
  }
  if (t->device_count == nullptr || t->error_string == nullptr) {
    *reason = path + ": table is missing device_count or error_string";
    dlclose(dl);
    return nullptr;
  }
  int n = 0;
  int err = t->device_count(&n);
  if (err != 0) {
    // Keep the library loaded: the CUDA runtime may have started threads.
    *reason = "no CUDA device: cudaGetDeviceCount failed: " + std::string(t->error_string(err)) +
              " (error " + std::to_string(err) + ")";
    return nullptr;
  }
  if (n <= 0) {
    *reason = "no CUDA device: the CUDA runtime reports 0 devices";
    return nullptr;
  }
  *count = n;
  return t;
}

struct Loaded {
  std::once_flag once;
  LoadResult result;
};

Loaded& loaded() {
  static Loaded* l = new Loaded();  // leaked: used until process exit
  return *l;
}

}  // namespace

std::vector<std::string> candidate_paths() {
  const char* env = getenv("TCPX_CUDA_LIB");
  if (env != nullptr && env[0] != '\0') return {env};
  std::vector<std::string> paths;
  std::string dir = library_dir();
  if (!dir.empty()) {
    paths.push_back(dir + "/" + kCudaLibFile);
    paths.push_back(dir + "/../lib/" + kCudaLibFile);
  }
#ifdef TCPX_INSTALL_LIBDIR
  paths.push_back(std::string(TCPX_INSTALL_LIBDIR) + "/" + kCudaLibFile);
#endif
  paths.push_back(kCudaLibFile);
  return paths;
}

LoadResult load_cuda_ops(const std::vector<std::string>& paths) {
  LoadResult r;
  std::string reasons;
  std::string missing;  // candidates that do not exist, for the message
  for (const auto& p : paths) {
    // A path with a slash that is not there is not worth a dlopen message.
    if (p.find('/') != std::string::npos && access(p.c_str(), R_OK) != 0) {
      missing += (missing.empty() ? "" : ", ") + p;
      continue;
    }
    r.path = p;
    std::string why;
    r.ops = try_load(p, &r.device_count, &why);
    if (r.ops != nullptr) return r;
    // The bare name absent from the loader's path is the common "built
    // without CUDA" case, said plainly below.
    if (p.find('/') == std::string::npos && why.find("cannot open shared object file") != std::string::npos) {
      missing += (missing.empty() ? "" : ", ") + p + " (loader path)";
      continue;
    }
    // A library that loaded but found no device is the real answer; stop.
    if (why.rfind("no CUDA device", 0) == 0) {
      r.reason = why + " (" + p + ")";
      return r;
    }
    reasons += (reasons.empty() ? "" : "; ") + why;
  }
  if (reasons.empty())
    r.reason = "no CUDA support: libtcpx_cuda.so not found (tried " + missing +
               "); it is built only when CMake finds nvcc";
  else
    r.reason = reasons;
  return r;
}

const tcpxCudaOps_v1* ops() {
  Loaded& l = loaded();
  std::call_once(l.once, [&l] {
    l.result = load_cuda_ops(candidate_paths());
    if (l.result.ops != nullptr)
      TCPX_INFO("CUDA support from %s: %d device(s)", l.result.path.c_str(), l.result.device_count);
    else
      TCPX_INFO("CUDA support unavailable: %s", l.result.reason.c_str());
  });
  return l.result.ops;
}

const char* unavailable_reason() {
  ops();
  const LoadResult& r = loaded().result;
  return r.ops != nullptr ? "" : r.reason.c_str();
}

}  // namespace tcpx::cuda
