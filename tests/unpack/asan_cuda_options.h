// Test binaries that initialise the CUDA runtime include this once: the CUDA
// driver maps memory where AddressSanitizer keeps its protected shadow gap,
// so under ASan every CUDA allocation would fail unless the gap is left
// unprotected. No effect in builds without ASan.
#ifndef TCPX_TESTS_UNPACK_ASAN_CUDA_OPTIONS_H_
#define TCPX_TESTS_UNPACK_ASAN_CUDA_OPTIONS_H_

#if defined(__SANITIZE_ADDRESS__)
extern "C" const char* __asan_default_options() { return "protect_shadow_gap=0"; }
#endif

#endif  // TCPX_TESTS_UNPACK_ASAN_CUDA_OPTIONS_H_
