#include "memory_copy.h"
#include <stdint.h>
#include <string.h>

// 32-byte vectors: clang lowers the non-temporal store to what the target has (two SSE2 movntdq on
// baseline x86-64, one vmovntdq with AVX, stnp on AArch64).
typedef unsigned char skein_v32 __attribute__((vector_size(32), aligned(32)));

void skein_copy_streaming(void *destination, const void *source, size_t count) {
    unsigned char *to = destination;
    const unsigned char *from = source;
    size_t head = (32 - ((uintptr_t)to & 31)) & 31;
    if (count < head + 4096) {
        memcpy(to, from, count);
        return;
    }
    memcpy(to, from, head);
    to += head;
    from += head;
    count -= head;
    size_t body = count & ~(size_t)127;
    for (size_t i = 0; i < body; i += 128) {
        skein_v32 a, b, c, d;
        memcpy(&a, from + i, 32);  // unaligned loads: the source may sit anywhere
        memcpy(&b, from + i + 32, 32);
        memcpy(&c, from + i + 64, 32);
        memcpy(&d, from + i + 96, 32);
        __builtin_nontemporal_store(a, (skein_v32 *)(to + i));
        __builtin_nontemporal_store(b, (skein_v32 *)(to + i + 32));
        __builtin_nontemporal_store(c, (skein_v32 *)(to + i + 64));
        __builtin_nontemporal_store(d, (skein_v32 *)(to + i + 96));
    }
    memcpy(to + body, from + body, count - body);
    // Non-temporal stores are weakly ordered: fence them before anyone is told the copy is done.
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_sfence();
#else
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
}
