// System calls that Swift's Glibc module does not declare (it is built without _GNU_SOURCE, and
// prctl is variadic). Linux only; elsewhere they fail with ENOSYS.
#pragma once
#include <stddef.h>
#include <stdint.h>

/// Copies `count` bytes at `address` in process `pid` to `local` (Linux cross-memory attach,
/// process_vm_readv): the bytes copied, or -1 with errno set.
long skein_read_process_memory(int pid, void *local, size_t count, uint64_t address);

/// Lets other processes of this user read this one's memory where Yama allows only ancestors to
/// (ptrace_scope 1): 0, or -1 with errno set (EINVAL where Yama is absent, which needs nothing).
int skein_allow_memory_readers(void);

/// Adds `delta` to the 64-bit counter at `counter` atomically (it may lie in memory shared with
/// other processes, where Swift's atomics cannot be placed); the new value.
int64_t skein_shared_counter_add(int64_t *counter, int64_t delta);

/// The counter's value, read atomically.
int64_t skein_shared_counter_load(const int64_t *counter);

/// Readies `skein_process_fence` (registers the process for expedited membarrier): 1 when it can
/// be used, 0 where the kernel or a seccomp filter refuses.
int skein_process_fence_register(void);

/// A full memory barrier on every thread of this process that is running now (membarrier's
/// private expedited command): the heavy side of an asymmetric fence, whose light side is a
/// compiler barrier (`skein_compiler_barrier`, CMemoryCopy). 0, or -1 with errno set.
int skein_process_fence(void);
