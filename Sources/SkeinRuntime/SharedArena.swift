import Foundation
import Synchronization
import SkeinCore
#if canImport(Glibc)
import Glibc
#endif

/// Memory that the processes of one host can all read: a rank copies a large object here once, and
/// a task on another rank of the host reads it from its own mapping, one copy in all. This is
/// Ray's plasma store in small. Through MPI the same object costs a copy into a fresh buffer
/// (faulted a 4 KiB page at a time) plus one into the array: 17% of memcpy for 100 MiB here.
///
/// The memory is a shared-memory object unlinked as soon as it is made: it has no name to leak and
/// goes when the last process holding it does (a killed rank leaves nothing in /dev/shm). Readers
/// open it through `/proc/<pid>/fd/<fd>`. Pages freed stay mapped for the next object: a first
/// touch of tmpfs costs 0.9 ms per MiB here.
final class SharedArena: Sendable {
    /// Address space reserved per rank; only pages written take memory.
    static let capacity = 16 << 30
    /// Objects of at least this many bytes go through the arena between ranks of one host.
    static let threshold = 1 << 20
    private static let alignment = 4096

    let pid: Int32
    let fd: Int32
    // Only the block's holder writes through it, and only before its descriptor is sent.
    nonisolated(unsafe) let base: UnsafeMutableRawPointer
    private let free = Mutex(FreeRanges(capacity: SharedArena.capacity))

    /// A new arena, or nil where the system will not make or map one (the caller then sends bytes).
    init?() {
        #if os(Linux)
        // A POSIX shared-memory object unlinked at once: nameless from then on, like a memfd
        // (which Glibc's Swift module does not declare).
        let name = "/skein-arena-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        shm_unlink(name)
        guard fd >= 0 else { return nil }
        guard ftruncate(fd, off_t(Self.capacity)) == 0,
            let base = mmap(nil, Self.capacity, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0), base != MAP_FAILED
        else {
            close(fd)
            return nil
        }
        self.fd = fd
        self.base = base
        pid = getpid()
        #else
        return nil
        #endif
    }

    deinit {
        munmap(base, Self.capacity)
        close(fd)
    }

    /// Bytes held by live blocks.
    var bytesInUse: Int { free.withLock { $0.inUse } }

    /// The arena bytes a block of `count` bytes takes: whole pages, at least one.
    static func blockSize(_ count: Int) -> Int { (max(count, 1) + alignment - 1) / alignment * alignment }

    /// A block holding a copy of `bytes`, or nil when the arena is full.
    func store(_ bytes: UnsafeRawBufferPointer, kind: WirePayload.Kind) -> SharedBlock? {
        guard let offset = free.withLock({ $0.take(Self.blockSize(bytes.count)) }) else { return nil }
        parallelCopy(to: UnsafeMutableRawBufferPointer(start: base + offset, count: bytes.count), from: bytes)
        return SharedBlock(arena: self, descriptor: SharedDescriptor(pid: pid, fd: fd, offset: offset, count: bytes.count, kind: kind))
    }

    fileprivate func release(_ descriptor: SharedDescriptor) { free.withLock { $0.give(descriptor.offset, Self.blockSize(descriptor.count)) } }
}

/// One object's bytes in an arena; freed when the last holder lets go.
final class SharedBlock: Sendable {
    let arena: SharedArena
    let descriptor: SharedDescriptor

    fileprivate init(arena: SharedArena, descriptor: SharedDescriptor) {
        self.arena = arena
        self.descriptor = descriptor
    }

    deinit { arena.release(descriptor) }
}

/// Where a reader on the same host finds an object's bytes: process and descriptor of its arena,
/// offset and length; or, with descriptor `inProcessMemory`, the bytes' address in that process's
/// own memory, read by cross-memory attach.
struct SharedDescriptor: Sendable {
    static let inProcessMemory: Int32 = -1

    var pid: Int32
    var fd: Int32
    var offset: Int
    var count: Int
    var kind: WirePayload.Kind

    static let encodedSize = 25

    func append(to bytes: inout [UInt8]) {
        bytes.append(kind.rawValue)
        bytes.appendLittleEndian(pid)
        bytes.appendLittleEndian(fd)
        bytes.appendLittleEndian(UInt64(offset))
        bytes.appendLittleEndian(UInt64(count))
    }

    init(pid: Int32, fd: Int32, offset: Int, count: Int, kind: WirePayload.Kind) {
        (self.pid, self.fd, self.offset, self.count, self.kind) = (pid, fd, offset, count, kind)
    }

    /// Where `payload`'s bytes lie in this process's memory; whoever sends this must hold the
    /// payload (which keeps them there) until the reader is done.
    init(attaching payload: WirePayload) {
        let address = payload.chunk.withUnsafeBytes { UInt(bitPattern: $0.baseAddress) }
        self.init(pid: getpid(), fd: Self.inProcessMemory, offset: Int(address), count: payload.chunk.byteCount, kind: payload.kind)
    }

    /// Reads one written by `append` at `at`.
    init?(_ bytes: [UInt8], at start: Int) {
        guard bytes.count >= start + Self.encodedSize, let kind = WirePayload.Kind(rawValue: bytes[start]) else { return nil }
        self.init(
            pid: bytes.loadLittleEndian(Int32.self, at: start + 1), fd: bytes.loadLittleEndian(Int32.self, at: start + 5),
            offset: Int(bytes.loadLittleEndian(UInt64.self, at: start + 9)), count: Int(bytes.loadLittleEndian(UInt64.self, at: start + 17)), kind: kind)
    }
}

/// This process's read-only mappings of other processes' arenas, each made on first use and kept.
final class SharedArenaReader: Sendable {
    private struct Mapping: @unchecked Sendable {
        // @unchecked: read-only, and unmapped only in deinit, when no payload over it is left (each
        // holds this reader).
        let bytes: UnsafeRawBufferPointer
    }
    private let mappings = Mutex<[Int64: Mapping]>([:])

    deinit {
        for mapping in mappings.withLock({ $0.values }) { munmap(UnsafeMutableRawPointer(mutating: mapping.bytes.baseAddress), mapping.bytes.count) }
    }

    /// The object's bytes, read in place (the payload keeps this reader's mappings alive); the
    /// writer's block must stay alive while they are read.
    func payload(_ descriptor: SharedDescriptor) throws(RuntimeError) -> WirePayload {
        let key = Int64(descriptor.pid) << 32 | Int64(descriptor.fd)
        let mapping = try mappings.withLock { (mappings: inout [Int64: Mapping]) throws(RuntimeError) -> UnsafeRawBufferPointer in
            if let mapping = mappings[key] { return mapping.bytes }
            let path = "/proc/\(descriptor.pid)/fd/\(descriptor.fd)"
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                throw RuntimeError(
                    .workerLost,
                    "could not open \(path), process \(descriptor.pid)'s shared object memory (errno \(errno)): is it still running, under the same user? Set SKEIN_SHARED_ARENA=0 to send objects as messages")
            }
            defer { close(fd) }
            var info = stat()
            guard fstat(fd, &info) == 0, let base = mmap(nil, Int(info.st_size), PROT_READ, MAP_SHARED, fd, 0), base != MAP_FAILED else {
                throw RuntimeError(.workerLost, "could not map \(path), process \(descriptor.pid)'s shared object memory (errno \(errno))")
            }
            let mapping = UnsafeRawBufferPointer(start: base, count: Int(info.st_size))
            mappings[key] = Mapping(bytes: mapping)
            return mapping
        }
        guard descriptor.offset >= 0, descriptor.count >= 0, descriptor.offset + descriptor.count <= mapping.count else {
            throw RuntimeError(.freedObject, "object bytes \(descriptor.offset)..<\(descriptor.offset + descriptor.count) lie outside process \(descriptor.pid)'s shared memory")
        }
        let storage = BorrowedStorage(UnsafeRawBufferPointer(rebasing: mapping[descriptor.offset..<(descriptor.offset + descriptor.count)]), owner: self)
        return WirePayload(kind: descriptor.kind, chunk: Chunk(storage: storage, offset: 0, byteCount: descriptor.count, isWritable: false))
    }
}

/// The free address ranges of an arena, first fit, merged with their neighbours when given back.
struct FreeRanges {
    private var ranges: [(offset: Int, size: Int)]
    private(set) var inUse = 0

    init(capacity: Int) { ranges = [(0, capacity)] }

    mutating func take(_ size: Int) -> Int? {
        guard let index = ranges.firstIndex(where: { $0.size >= size }) else { return nil }
        let offset = ranges[index].offset
        if ranges[index].size == size { ranges.remove(at: index) } else { ranges[index] = (offset + size, ranges[index].size - size) }
        inUse += size
        return offset
    }

    mutating func give(_ offset: Int, _ size: Int) {
        inUse -= size
        let index = ranges.firstIndex(where: { $0.offset > offset }) ?? ranges.count
        ranges.insert((offset, size), at: index)
        if index + 1 < ranges.count, ranges[index].offset + ranges[index].size == ranges[index + 1].offset {
            ranges[index].size += ranges[index + 1].size
            ranges.remove(at: index + 1)
        }
        if index > 0, ranges[index - 1].offset + ranges[index - 1].size == ranges[index].offset {
            ranges[index - 1].size += ranges[index].size
            ranges.remove(at: index)
        }
    }
}

/// Copies large buffers on every core: one core's copy leaves most of this machine's memory
/// bandwidth unused (two threads copy 100 MiB in 6.7 ms here against 10 ms for one).
func parallelCopy(to target: UnsafeMutableRawBufferPointer, from source: UnsafeRawBufferPointer) {
    let count = min(target.count, source.count)
    guard count > 0, let to = target.baseAddress, let from = source.baseAddress else { return }
    let piece = 8 << 20
    let parts = min(ProcessInfo.processInfo.activeProcessorCount, count / piece)
    guard parts > 1 else { return to.copyMemory(from: from, byteCount: count) }
    let step = (count / parts + 4095) / 4096 * 4096
    let (toAddress, fromAddress) = (UInt(bitPattern: to), UInt(bitPattern: from))
    DispatchQueue.concurrentPerform(iterations: parts) { part in
        let start = part * step
        let length = min(step, count - start)
        if length > 0 {
            UnsafeMutableRawPointer(bitPattern: toAddress + UInt(start))!.copyMemory(
                from: UnsafeRawPointer(bitPattern: fromAddress + UInt(start))!, byteCount: length)
        }
    }
}
