import Foundation
import Synchronization
import CSystemCalls
#if canImport(Glibc)
import Glibc
#endif

/// An object's bytes in the memory of another process of this host, copied by the kernel straight
/// into the reader's own (Linux cross-memory attach): one copy in all, where a shared arena costs a
/// copy in and one out, and its first use faults tmpfs pages at 0.9 ms per MiB. The owner keeps the
/// bytes alive and unchanged until the reader is done: for a task argument until the task's reply
/// arrives, for a fetched result until the object is dropped.
struct ProcessMemory: Sendable {
    let pid: Int32
    let address: UInt64
    let count: Int

    /// Whether this process may read others' memory: the system call exists, is not filtered
    /// (seccomp) and works on this process's own memory. Checked once. Where Yama restricts
    /// reading to ancestors, it also lets the other ranks of this user read this process.
    static let available: Bool = {
        _ = skein_allow_memory_readers()
        let probe: UInt64 = 0x5EED
        var copy: UInt64 = 0
        let read = withUnsafeBytes(of: probe) { probe in
            withUnsafeMutableBytes(of: &copy) { skein_read_process_memory(getpid(), $0.baseAddress, 8, UInt64(UInt(bitPattern: probe.baseAddress))) }
        }
        return read == 8 && copy == probe
    }()

    /// Copies the bytes into `target` (at most its size), split over the cores from 16 MiB: the
    /// kernel's copy runs on the calling thread (100 MiB from 4 KiB pages: 28 ms on one core here,
    /// 15 ms on two).
    func read(into target: UnsafeMutableRawBufferPointer) throws(RuntimeError) {
        let total = min(count, target.count)
        guard total > 0, let base = target.baseAddress else { return }
        let parts = total >= 16 << 20 ? ProcessInfo.processInfo.activeProcessorCount : 1
        let step = (total / parts + 4095) / 4096 * 4096
        let failure = Mutex<Int32>(0)
        let (pid, address, here) = (pid, address, UInt(bitPattern: base))
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            var offset = part * step
            let end = min(offset + step, total)
            while offset < end {
                // A read may stop short (at most a few MiB per call); it goes on from there.
                let copied = skein_read_process_memory(pid, UnsafeMutableRawPointer(bitPattern: here + UInt(offset)), end - offset, address + UInt64(offset))
                guard copied > 0 else {
                    let code = copied < 0 ? errno : EFAULT
                    failure.withLock { $0 = $0 == 0 ? code : $0 }
                    return
                }
                offset += copied
            }
        }
        let code = failure.withLock { $0 }
        guard code == 0 else {
            let why =
                switch code {
                case ESRCH: "the process has exited"
                case EPERM: "this process may not read it (ptrace restrictions: Yama's ptrace_scope, or a container without CAP_SYS_PTRACE)"
                case EFAULT: "the bytes are no longer mapped there (the object was freed early)"
                default: "errno \(code)"
                }
            throw RuntimeError(
                .workerLost,
                "could not read \(count) bytes of an object from process \(pid)'s memory: \(why). Set SKEIN_CROSS_MEMORY=0 to move objects through a shared arena instead")
        }
    }
}
