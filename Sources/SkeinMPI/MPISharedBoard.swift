#if MPI
import CMPI
import SkeinCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Memory every process of the job reads and writes, when all of them run on one host: one MPI
/// shared window (`MPI_Win_allocate_shared`, what Open MPI's own shared-memory collectives stand
/// on) holding a directory and the slots of up to `capacity` boards. A communicator's board is the
/// one its context claimed in the directory, so ranks that make communicators in different orders
/// still agree on which memory each one uses.
final class MPISharedSegment: @unchecked Sendable {
    // @unchecked: the directory's words are atomics; the slots follow `SharedSlotMemory`'s rules.
    private let window: MPI_Win?
    private let base: UnsafeMutableRawPointer
    let ranks: Int

    /// Boards one job can hold: contexts beyond these run by messages.
    static let capacity = 8
    /// The directory: one context (plus one; zero is free) per board, on a cache line of its own.
    private static let directoryBytes = 64

    private init(window: MPI_Win?, base: UnsafeMutableRawPointer, ranks: Int) {
        self.window = window
        self.base = base
        self.ranks = ranks
    }

    private static func boardOffset(_ index: Int, ranks: Int) -> Int {
        directoryBytes + index * SharedSlotMemory.byteCount(ranks: ranks)
    }

    /// The shared window over `comm`'s ranks, or nil when they do not all share this host (or MPI
    /// refuses). Collective and blocking: every rank calls it once, at start-up.
    static func allocate(comm: MPI_Comm?, rank: Int, size: Int) -> MPISharedSegment? {
        var node = skein_mpi_comm_null()
        guard MPI_Comm_split_type(comm, skein_mpi_comm_type_shared(), Int32(rank), skein_mpi_info_null(), &node) == MPI_SUCCESS else {
            return nil
        }
        defer { MPI_Comm_free(&node) }
        var nodeSize: Int32 = 0
        MPI_Comm_size(node, &nodeSize)
        // Every rank must decide alike, and a shared window spans one host only.
        var local: Int32 = nodeSize == Int32(size) ? 1 : 0, everywhere: Int32 = 0
        MPI_Allreduce(&local, &everywhere, 1, skein_mpi_int32(), skein_mpi_min(), comm)
        guard everywhere == 1 else { return nil }
        // Rank 0 holds the whole segment, so every rank sees one contiguous block.
        let bytes = boardOffset(capacity, ranks: size)
        var window = skein_mpi_win_null()
        var mine: UnsafeMutableRawPointer?
        var ok: Int32 = MPI_Win_allocate_shared(rank == 0 ? bytes : 0, 1, skein_mpi_info_null(), node, &mine, &window) == MPI_SUCCESS ? 1 : 0
        var base: UnsafeMutableRawPointer?
        if ok == 1 {
            var length = 0, unit: Int32 = 0
            if MPI_Win_shared_query(window, 0, &length, &unit, &base) != MPI_SUCCESS || base == nil || length < bytes { ok = 0 }
        }
        var agreed: Int32 = 0
        MPI_Allreduce(&ok, &agreed, 1, skein_mpi_int32(), skein_mpi_min(), comm)
        guard agreed == 1, let base else {
            if window != skein_mpi_win_null() { MPI_Win_free(&window) }
            return nil
        }
        if rank == 0 {
            for slot in 0..<capacity {
                (base + slot * 8).bindMemory(to: Atomic<UInt64>.self, capacity: 1).initialize(to: Atomic(0))
                _ = SharedSlotMemory(base: base + boardOffset(slot, ranks: size), ranks: size, initialize: true)
            }
        }
        MPI_Barrier(comm)  // nobody looks at the segment before rank 0 has cleared it
        return MPISharedSegment(window: window, base: base, ranks: size)
    }

    /// The board of `context`: the directory entry it holds, or the first free one it claims.
    func board(context: UInt32) -> SharedSlotMemory? {
        let key = UInt64(context) + 1
        for index in 0..<Self.capacity {
            let entry = (base + index * 8).assumingMemoryBound(to: Atomic<UInt64>.self)
            var current = entry.pointee.load(ordering: .acquiring)
            if current == 0 {
                current = entry.pointee.compareExchange(expected: 0, desired: key, ordering: .acquiringAndReleasing).original
                if current == 0 { current = key }
            }
            if current == key {
                return SharedSlotMemory(base: base + Self.boardOffset(index, ranks: ranks), ranks: ranks, initialize: false)
            }
        }
        return nil
    }

    /// Frees the window (collective: every rank calls it, at shutdown).
    func free() {
        var window = self.window
        MPI_Win_free(&window)
    }
}

/// A communicator's shared-memory board between MPI processes on one host: `SharedMemoryAlgorithm`
/// runs over it exactly as between in-process ranks, so a small collective costs one write and one
/// look at every peer's slot instead of ⌈log p⌉ rounds of MPI messages.
///
/// Waiting spins while every rank has a core of its own, then goes through the transport's wait,
/// which drives MPI's progress (aborts from other ranks arrive as messages), gives the core away when
/// ranks outnumber cores, watches the peers' processes, and keeps the deadline.
final class MPISharedBoard: SharedMemoryBoard, @unchecked Sendable {
    // @unchecked: the slots follow `SharedSlotMemory`'s rules; the transport is thread-safe; `cursor`
    // is used by this process's rank, whose calls on the communicator follow one another.
    private let transport: MPITransport
    let memory: SharedSlotMemory
    private let context: UInt32
    /// Looks for every rank's part right after publishing (one when ranks share cores: the others
    /// cannot publish while this rank holds the core).
    private let looks: Int
    /// Further looks in `awaitAll` before the transport's wait (none when ranks share cores).
    private let spins: Int
    /// This process's board calls and how far every rank is known to have come.
    @exclusivity(unchecked) private var cursor = BoardCursor()
    /// Processes: an address means nothing in another.
    var sharesAddressSpace: Bool { false }

    init(transport: MPITransport, memory: SharedSlotMemory, context: UInt32) {
        self.transport = transport
        self.memory = memory
        self.context = context
        looks = transport.oversubscribed ? 1 : 768
        spins = transport.oversubscribed ? 0 : 20_000
    }

    // No look at aborts here, unlike the in-process board: they sit behind the transport's lock,
    // and a rank that aborted never publishes again, so the waits below are where they are seen.
    func publish(
        rank: Int, signature: CallSignature, entry: UInt64, byteCount: Int, awaiting: Range<Int>, readAhead: Bool,
        fill: (UnsafeMutableRawBufferPointer) -> Void
    ) throws(SkeinError) -> BoardPublish {
        guard try cursor.publish(on: memory, rank: rank, context: context, signature: signature, entry: entry, byteCount: byteCount, fill: fill)
        else { return .full }
        return cursor.look(on: memory, awaiting: awaiting, readAhead: readAhead, times: looks)
    }

    func awaitRoom(rank: Int, sequence: UInt64, byteCount: Int, deadline: UInt64) async throws(SkeinError) {
        let room = cursor.room(on: memory, rank: rank, byteCount: byteCount)
        let everyone = 0..<memory.ranks
        try await waitFor(rank: rank, generation: room.generation, ranks: everyone, sequence: room.sequence, deadline: deadline)
        cursor.heard(from: everyone, room.generation, on: memory)
    }

    func awaitAll(rank: Int, sequence: UInt64, awaiting: Range<Int>, deadline: UInt64) async throws(SkeinError) -> SharedSlots {
        let (generation, ranks) = (cursor.generation, awaiting.clamped(to: 0..<memory.ranks))
        try await waitFor(rank: rank, generation: generation, ranks: ranks, sequence: sequence, deadline: deadline)
        cursor.heard(from: ranks, generation, on: memory)
        return memory.slots(generation)
    }

    /// Returns once every rank in `ranks` has published board call `generation` (for this rank's
    /// call `sequence`: the call itself, or an earlier one whose slot the call reuses).
    private func waitFor(rank: Int, generation: UInt64, ranks: Range<Int>, sequence: UInt64, deadline: UInt64) async throws(SkeinError) {
        if memory.look(generation, ranks: ranks, times: spins) != nil { return }
        let (memory, context) = (self.memory, self.context)
        let tag = Tag(context: context, sequence: sequence)
        let outcome = try await transport.wait(
            on: nil, context: context, deadline: deadline, what: "every rank's part of call \(tag) on the shared-memory board"
        ) { engine -> Result<Void, SkeinError>? in
            var from = ranks.lowerBound
            if memory.allPublished(generation, from: &from, to: ranks.upperBound) { return .success(()) }
            // A peer that sends this call's messages runs it by another algorithm: say so now, not at the deadline.
            if let peer = engine.sourceOfMessage(in: tag) {
                return .failure(.peerRunsByMessages(rank: rank, peer: peer, sequence: sequence))
            }
            return nil
        }
        try outcome.get()
    }
}
#endif
