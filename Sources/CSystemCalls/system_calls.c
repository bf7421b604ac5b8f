#define _GNU_SOURCE
#include "system_calls.h"
#include <errno.h>

int64_t skein_shared_counter_add(int64_t *counter, int64_t delta) { return __atomic_add_fetch(counter, delta, __ATOMIC_ACQ_REL); }

int64_t skein_shared_counter_load(const int64_t *counter) { return __atomic_load_n(counter, __ATOMIC_ACQUIRE); }

#ifdef __linux__
#include <sys/prctl.h>
#include <sys/uio.h>

long skein_read_process_memory(int pid, void *local, size_t count, uint64_t address) {
    struct iovec here = {local, count}, there = {(void *)(uintptr_t)address, count};
    return (long)process_vm_readv(pid, &here, 1, &there, 1, 0);
}

int skein_allow_memory_readers(void) { return prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0); }

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

int skein_process_fence_register(void) {
    int commands = (int)syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    if (commands < 0 || !(commands & MEMBARRIER_CMD_PRIVATE_EXPEDITED)) return 0;
    return syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
}

int skein_process_fence(void) { return (int)syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0); }
#else
int skein_process_fence_register(void) { return 0; }

int skein_process_fence(void) {
    errno = ENOSYS;
    return -1;
}

long skein_read_process_memory(int pid, void *local, size_t count, uint64_t address) {
    errno = ENOSYS;
    return -1;
}

int skein_allow_memory_readers(void) {
    errno = ENOSYS;
    return -1;
}
#endif
