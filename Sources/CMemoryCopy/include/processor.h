// Processor instructions Swift cannot express.
#pragma once
#include <stdint.h>

/// Tells the core that the caller spins waiting for another core's store: it slows the loop down a
/// little, so the loop keeps fewer loads in flight on the awaited line and gives a sibling hardware
/// thread the core's resources. A no-op where the architecture has no such hint.
static inline void skein_spin_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/// The processor's free-running cycle counter (the TSC on x86-64, the virtual counter on ARM64), or
/// 0 where there is none. Unordered: a read may move a few instructions earlier or later, which
/// costs a timing of whole calls nothing and saves the fence of an ordered read.
static inline uint64_t skein_cycle_counter(void) {
#if defined(__x86_64__)
    uint32_t low, high;
    __asm__ __volatile__("rdtsc" : "=a"(low), "=d"(high));
    return ((uint64_t)high << 32) | low;
#elif defined(__aarch64__)
    uint64_t value;
    __asm__ __volatile__("mrs %0, cntvct_el0" : "=r"(value));
    return value;
#else
    return 0;
#endif
}

/// Keeps the compiler from moving memory accesses across it; costs no instruction (the light side
/// of an asymmetric fence whose heavy side is `skein_process_fence`, CSystemCalls).
static inline void skein_compiler_barrier(void) { __asm__ __volatile__("" ::: "memory"); }

/// Asks the core to bring the line at `address` into its cache for reading, without waiting.
static inline void skein_prefetch_read(const void *address) { __builtin_prefetch(address, 0, 3); }
