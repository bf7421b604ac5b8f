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
