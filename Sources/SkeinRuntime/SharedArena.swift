import Foundation
import Synchronization
import SkeinCore
import CSystemCalls
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
/// open it through `/proc/<pid>/fd/<fd>`. Pages freed stay mapped for the next object, and the
/// first `warmBytes` are faulted in at start on a thread of their own, as Ray can preallocate its
/// plasma store: a first touch of tmpfs costs 0.5–0.9 ms per MiB here, ten times the copy itself.
///
/// A reader's view of a block may outlive the task it was read for (a `SharedArray` kept by an
/// actor, or returned): readers count their live views in a pin table after the arena's last byte,
/// one counter per page, and a block its holder lets go of while pinned is reused only once its
/// count is back to zero.
final class SharedArena: Sendable {
    /// Address space reserved per rank; only pages written take memory.
    static let capacity = 16 << 30
    /// Objects of at least this many bytes go through the arena between ranks of one host.
    static let threshold = 1 << 20
    private static let alignment = 4096
    /// The pin table: one 8-byte counter per page of the arena (sparse: only counters used take memory).
    static let pinTableBytes = capacity / alignment * 8

    /// Bytes to fault in ahead of use: `SKEIN_ARENA_WARM_MIB` MiB if set (0 turns it off), else
    /// 256 MiB, or less where the host's ranks would take over a sixteenth of its memory so.
    static func defaultWarmBytes(ranksOnHost: Int) -> Int {
        if let mib = ProcessInfo.processInfo.environment["SKEIN_ARENA_WARM_MIB"].flatMap(Int.init) { return max(0, min(mib << 20, capacity)) }
        return min(256 << 20, Int(ProcessInfo.processInfo.physicalMemory / 16) / max(ranksOnHost, 1)) / alignment * alignment
    }

    let pid: Int32
    let fd: Int32
    // Only the block's holder writes through it, and only before its descriptor is sent.
    nonisolated(unsafe) let base: UnsafeMutableRawPointer
    private let blocks = Mutex(Blocks())

    private struct Blocks {
        var free = FreeRanges(capacity: SharedArena.capacity)
        /// Blocks let go of while a reader still held a view of them.
        var pinned: [SharedDescriptor] = []
    }

    /// A new arena whose first `warmBytes` are faulted in on a thread of their own, or nil where the
    /// system will not make or map one (the caller then sends bytes).
    init?(warmBytes: Int) {
        #if os(Linux)
        // A POSIX shared-memory object unlinked at once: nameless from then on, like a memfd
        // (which Glibc's Swift module does not declare).
        let name = "/skein-arena-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        shm_unlink(name)
        guard fd >= 0 else { return nil }
        let size = Self.capacity + Self.pinTableBytes
        guard ftruncate(fd, off_t(size)) == 0,
            let base = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0), base != MAP_FAILED
        else {
            close(fd)
            return nil
        }
        self.fd = fd
        self.base = base
        pid = getpid()
        let warm = min(max(warmBytes, 0), Self.capacity) / Self.alignment * Self.alignment
        if warm > 0 {
            // Faulting pages in writes nothing into them, so objects stored meanwhile are safe; the
            // thread holds the arena, so its mapping stays until it is done. Kernels before 5.14
            // lack MADV_POPULATE_WRITE and leave the pages to fault on first use.
            Thread.detachNewThread { [self] in _ = madvise(self.base, warm, 23) }  // MADV_POPULATE_WRITE
        }
        #else
        return nil
        #endif
    }

    deinit {
        munmap(base, Self.capacity + Self.pinTableBytes)
        close(fd)
    }

    /// Bytes held by live blocks (and by blocks let go of that a reader still views).
    var bytesInUse: Int {
        blocks.withLock { blocks in
            reclaimUnpinned(&blocks)
            return blocks.free.inUse
        }
    }

    /// The pin counter of the block at `offset`, in a mapping of the arena whose pin table starts at `pins`.
    static func pinCounter(_ pins: UnsafeMutableRawPointer, offset: Int) -> UnsafeMutablePointer<Int64> {
        (pins + offset / alignment * 8).assumingMemoryBound(to: Int64.self)
    }

    private func pins(of descriptor: SharedDescriptor) -> Int64 {
        skein_shared_counter_load(Self.pinCounter(base + Self.capacity, offset: descriptor.offset))
    }

    private func reclaimUnpinned(_ blocks: inout Blocks) {
        guard !blocks.pinned.isEmpty else { return }
        blocks.pinned.removeAll { descriptor in
            guard pins(of: descriptor) == 0 else { return false }
            blocks.free.give(descriptor.offset, Self.blockSize(descriptor.count))
            return true
        }
    }

    /// The arena bytes a block of `count` bytes takes: whole pages, at least one.
    static func blockSize(_ count: Int) -> Int { (max(count, 1) + alignment - 1) / alignment * alignment }

    /// A block holding a copy of `bytes`, or nil when the arena is full.
    func store(_ bytes: UnsafeRawBufferPointer, kind: WirePayload.Kind) -> SharedBlock? {
        let offset = blocks.withLock { blocks in
            reclaimUnpinned(&blocks)
            return blocks.free.take(Self.blockSize(bytes.count))
        }
        guard let offset else { return nil }
        parallelCopy(to: UnsafeMutableRawBufferPointer(start: base + offset, count: bytes.count), from: bytes)
        return SharedBlock(arena: self, descriptor: SharedDescriptor(pid: pid, fd: fd, offset: offset, count: bytes.count, kind: kind))
    }

    /// A reader pins a block only while its holder keeps it (for the task it was sent to), so a
    /// block found unpinned here stays free of readers.
    fileprivate func release(_ descriptor: SharedDescriptor) {
        blocks.withLock { blocks in
            if pins(of: descriptor) == 0 {
                blocks.free.give(descriptor.offset, Self.blockSize(descriptor.count))
            } else {
                blocks.pinned.append(descriptor)
            }
        }
    }
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
        // @unchecked: the bytes are read-only, the pins changed atomically only, and both unmapped
        // only in deinit, when no payload over them is left (each holds this reader).
        let bytes: UnsafeRawBufferPointer
        let pins: UnsafeMutableRawPointer
    }
    private let mappings = Mutex<[Int64: Mapping]>([:])

    deinit {
        for mapping in mappings.withLock({ $0.values }) {
            munmap(UnsafeMutableRawPointer(mutating: mapping.bytes.baseAddress), mapping.bytes.count)
            munmap(mapping.pins, SharedArena.pinTableBytes)
        }
    }

    /// The object's bytes, read in place; the payload keeps this reader's mappings alive and the
    /// block pinned. The writer's block must stay alive until the payload is made.
    func payload(_ descriptor: SharedDescriptor) throws(RuntimeError) -> WirePayload {
        let key = Int64(descriptor.pid) << 32 | Int64(descriptor.fd)
        let found = try mappings.withLock { (mappings: inout [Int64: Mapping]) throws(RuntimeError) -> Mapping in
            if let mapping = mappings[key] { return mapping }
            let path = "/proc/\(descriptor.pid)/fd/\(descriptor.fd)"
            let fd = open(path, O_RDWR | O_CLOEXEC)
            guard fd >= 0 else {
                throw RuntimeError(
                    .workerLost,
                    "could not open \(path), process \(descriptor.pid)'s shared object memory (errno \(errno)): is it still running, under the same user? Set SKEIN_SHARED_ARENA=0 to send objects as messages")
            }
            defer { close(fd) }
            var info = stat()
            let size = SharedArena.capacity
            guard fstat(fd, &info) == 0, Int(info.st_size) == size + SharedArena.pinTableBytes,
                let base = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), base != MAP_FAILED
            else {
                throw RuntimeError(.workerLost, "could not map \(path), process \(descriptor.pid)'s shared object memory (errno \(errno))")
            }
            guard let pins = mmap(nil, SharedArena.pinTableBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, off_t(size)), pins != MAP_FAILED else {
                munmap(base, size)
                throw RuntimeError(.workerLost, "could not map the pin table of \(path), process \(descriptor.pid)'s shared object memory (errno \(errno))")
            }
            let mapping = Mapping(bytes: UnsafeRawBufferPointer(start: base, count: size), pins: pins)
            mappings[key] = mapping
            return mapping
        }
        let mapping = found.bytes
        guard descriptor.offset >= 0, descriptor.count >= 0, descriptor.offset + descriptor.count <= mapping.count else {
            throw RuntimeError(.freedObject, "object bytes \(descriptor.offset)..<\(descriptor.offset + descriptor.count) lie outside process \(descriptor.pid)'s shared memory")
        }
        let pin = ArenaPin(SharedArena.pinCounter(found.pins, offset: descriptor.offset), reader: self)
        let storage = BorrowedStorage(UnsafeRawBufferPointer(rebasing: mapping[descriptor.offset..<(descriptor.offset + descriptor.count)]), owner: pin)
        return WirePayload(kind: descriptor.kind, chunk: Chunk(storage: storage, offset: 0, byteCount: descriptor.count, isWritable: false))
    }
}

/// One view of a block in another process's arena: counted in that arena's pin table from when it
/// is made until the last value over it is gone.
private final class ArenaPin: Sendable {
    private struct Counter: @unchecked Sendable {  // @unchecked: changed only atomically.
        let pointer: UnsafeMutablePointer<Int64>
    }
    private let counter: Counter
    private let reader: SharedArenaReader  // keeps the pin table mapped

    init(_ counter: UnsafeMutablePointer<Int64>, reader: SharedArenaReader) {
        self.counter = Counter(pointer: counter)
        self.reader = reader
        _ = skein_shared_counter_add(counter, 1)
    }

    deinit { _ = skein_shared_counter_add(counter.pointer, -1) }
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
