// cpu_relax(): the spin-wait hint (x86 PAUSE, Arm YIELD), for loops that
// busy-poll shared state another thread is about to change.
#ifndef TCPX_COMMON_CPU_RELAX_H_
#define TCPX_COMMON_CPU_RELAX_H_

namespace tcpx {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

}  // namespace tcpx

#endif  // TCPX_COMMON_CPU_RELAX_H_
