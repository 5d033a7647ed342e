#include "net/tcp/cuda_ops_loader.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>
#include <string>

#include "net/tcp/plugin_log.h"

namespace tcpx::tcp {
namespace {

const tcpxCudaOps_v1* g_ops = nullptr;
std::string* g_reason = nullptr;
std::once_flag g_once;

std::string plugin_dir() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&plugin_dir), &info) == 0 || info.dli_fname == nullptr) return "";
  std::string p(info.dli_fname);
  auto slash = p.rfind('/');
  return slash == std::string::npos ? "" : p.substr(0, slash + 1);
}

void load() {
  g_reason = new std::string();
  std::string path;
  if (const char* env = getenv("TCPX_CUDA_LIB"); env != nullptr && *env != '\0') {
    path = env;
  } else {
    path = plugin_dir() + "libtcpx_cuda.so";
  }
  void* dl = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (dl == nullptr && getenv("TCPX_CUDA_LIB") == nullptr) dl = dlopen("libtcpx_cuda.so", RTLD_NOW | RTLD_LOCAL);
  if (dl == nullptr) {
    const char* e = dlerror();
    *g_reason = "cannot load " + path + ": " + (e ? e : "unknown error");
    return;
  }
  using Entry = const tcpxCudaOps_v1* (*)();
  auto entry = reinterpret_cast<Entry>(dlsym(dl, TCPX_CUDA_OPS_SYMBOL));
  const tcpxCudaOps_v1* ops = entry ? entry() : nullptr;
  if (ops == nullptr || ops->version != TCPX_CUDA_OPS_VERSION || ops->memcpy_d2h == nullptr ||
      ops->host_alloc_mapped == nullptr || ops->host_free == nullptr || ops->device_count == nullptr) {
    *g_reason = path + " does not provide a usable " TCPX_CUDA_OPS_SYMBOL " table";
    return;  // left loaded: unloading a CUDA runtime is not safe
  }
  int count = 0;
  if (ops->device_count(&count) != 0 || count <= 0) {
    *g_reason = "no CUDA device is usable";
    return;
  }
  g_ops = ops;
  TCP_INFO("CUDA ops loaded from %s (%d devices)", path.c_str(), count);
}

}  // namespace

const tcpxCudaOps_v1* cuda_ops() {
  std::call_once(g_once, load);
  return g_ops;
}

const char* cuda_unavailable_reason() {
  std::call_once(g_once, load);
  return g_ops != nullptr ? "" : g_reason->c_str();
}

}  // namespace tcpx::tcp
