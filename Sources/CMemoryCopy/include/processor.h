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
