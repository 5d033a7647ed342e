// DeviceScope: makes one CUDA device current on the calling thread for a
// scope, then gives the thread back the device it had (NCCL's save/set/
// restore). libtcpx_cuda.so is called from threads it does not own: the
// engine's progress thread and application threads that drive progress. An
// application that chose a device on its thread must find it unchanged.
//
// cudaSetDevice runs even when cudaGetDevice already names the device: on a
// thread that never made a CUDA call, cudaGetDevice says 0 while no context
// is bound yet, and cudaPointerGetAttributes then reports mapped host memory
// with a null devicePointer (seen on an H200, CUDA 13, driver 580).
// cudaSetDevice binds the device's primary context.
#ifndef TCPX_CUDA_DEVICE_SCOPE_H_
#define TCPX_CUDA_DEVICE_SCOPE_H_

#include <cuda_runtime.h>

namespace tcpx::cuda {

class DeviceScope {
 public:
  explicit DeviceScope(int device) : device_(device) {
    if (cudaGetDevice(&saved_) != cudaSuccess) {
      cudaGetLastError();  // not sticky; keep it out of the caller's next call
      saved_ = -1;
    }
    status_ = cudaSetDevice(device_);
  }
  ~DeviceScope() {
    if (saved_ >= 0 && saved_ != device_) cudaSetDevice(saved_);
  }
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

  // cudaSuccess, or why the device could not be made current.
  int status() const { return status_; }

 private:
  int device_;
  int saved_ = -1;
  int status_ = cudaSuccess;
};

}  // namespace tcpx::cuda

#endif  // TCPX_CUDA_DEVICE_SCOPE_H_
