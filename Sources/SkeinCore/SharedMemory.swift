import Synchronization

/// A transport whose ranks share one address space (in-process ranks): besides messages, it offers
/// each communicator a board of per-rank slots that every rank can read. Small collectives then
/// need no messages at all: each rank publishes its input once, waits until every rank has
/// published, and computes its own result from everybody's slots (`SharedMemoryAlgorithm`), as
/// Open MPI's shared-memory collectives do between processes of one node.
public protocol SharedMemoryTransport: Transport {
    /// The board of the communicator whose calls are tagged `context`, the same memory on every rank
    /// of the group, made on first use; nil when this group's ranks share no memory after all (MPI
    /// processes on several hosts) or no board is left for another context.
    func sharedBoard(context: UInt32) -> (any SharedMemoryBoard)?
}

/// Bytes one rank may publish in one call through a shared-memory board.
public enum SharedMemoryLimits {
    public static let slotBytes = 64 << 10
}

/// One communicator's shared slots: two per rank, used by alternate calls on the board, so a rank may
/// publish board call g + 1 while slower peers still read its part of call g, and no rank needs to
/// wait for the others to finish reading (a peer can only reach board call g + 2 after every rank
/// has published g + 1, which each does only once it has finished reading g). Board calls are
/// counted apart from the communicator's sequence numbers: calls by messages in between (a root
/// that only sends finishes without waiting for anyone) must not let a peer run two board calls ahead.
///
/// A call is `publish`, which returns the slots at once when every rank is there within a short
/// look (the common case, with no suspension point), and otherwise `awaitAll`.
public protocol SharedMemoryBoard: AnyObject, Sendable {
    /// Writes this rank's part of call `signature.sequence` (`byteCount` bytes, through `fill`, at
    /// most `SharedMemoryLimits.slotBytes`) and looks briefly for every rank's; nil if not all there.
    /// Throws `.invalidArgument` for too many bytes and `.aborted` when a rank aborted the context.
    func publish(
        rank: Int, signature: CallSignature, entry: UInt64, byteCount: Int, fill: (UnsafeMutableRawPointer) -> Void
    ) throws(SkeinError) -> SharedSlots?

    /// Waits until every rank has published call `sequence`, after `publish` returned nil. Throws
    /// `.timeout` or `.peerExited` naming the rank waited for, `.aborted` when a rank aborted the
    /// context, and `.desync` when a peer runs this call by messages instead or skipped it.
    func awaitAll(rank: Int, sequence: UInt64, deadline: UInt64) async throws(SkeinError) -> SharedSlots

    /// True when the group's ranks outnumber the cores they run on, so a rank waiting on the board
    /// must hand its core to the ranks it waits for.
    var ranksShareCores: Bool { get }

    /// True when the ranks share one address space (in-process ranks), so an address one publishes
    /// is valid in every other (`SharedAddressAlgorithm`).
    var sharesAddressSpace: Bool { get }
}

extension SharedMemoryBoard {
    /// `publish`, then `awaitAll` if needed. The slots stay readable until this rank's next call.
    /// Always inlined (`@inlinable` alone left it a call of its own, an async frame on every call),
    /// so a call that finds every rank there enters no wait.
    @inlinable @inline(__always)
    public func exchange(
        rank: Int, signature: CallSignature, entry: UInt64, byteCount: Int, deadline: UInt64,
        fill: (UnsafeMutableRawPointer) -> Void
    ) async throws(SkeinError) -> SharedSlots {
        if let slots = try publish(rank: rank, signature: signature, entry: entry, byteCount: byteCount, fill: fill) { return slots }
        return try await awaitAll(rank: rank, sequence: signature.sequence, deadline: deadline)
    }
}

/// Every rank's published part of one call: what it called, when it entered, and its bytes.
public struct SharedSlots: @unchecked Sendable {
    // @unchecked: read-only pointers into a board's memory, valid while the owning rank's call lasts.
    let slots: UnsafeRawPointer
    let stride: Int
    public let count: Int

    /// `slots` points at rank 0's slot for this call; rank r's is `r × stride` bytes further.
    public init(slots: UnsafeRawPointer, stride: Int, count: Int) {
        self.slots = slots
        self.stride = stride
        self.count = count
    }

    @inline(__always)
    func slot(_ rank: Int) -> UnsafeRawPointer { slots + rank &* stride }

    public func signature(of rank: Int) -> CallSignature {
        slot(rank).load(fromByteOffset: SharedSlotLayout.signature, as: CallSignature.self)
    }

    /// Nanoseconds on the transport's clock at which `rank` entered the call.
    public func entry(of rank: Int) -> UInt64 {
        slot(rank).load(fromByteOffset: SharedSlotLayout.entry, as: UInt64.self)
    }

    public func bytes(of rank: Int) -> UnsafeRawBufferPointer {
        let base = slot(rank)
        return UnsafeRawBufferPointer(start: base + SharedSlotLayout.payload, count: base.load(fromByteOffset: SharedSlotLayout.byteCount, as: Int.self))
    }
}

/// Byte offsets within a slot. The header and the first bytes of the payload share one cache line,
/// so a peer reads a small call's whole part in one transfer.
public enum SharedSlotLayout {
    /// The board call (1, 2, …) last published in this slot (an atomic, stored last).
    public static let published = 0
    public static let entry = 8
    public static let byteCount = 16
    public static let signature = 24
    public static let payload = 48
}

/// A board's slots in memory every rank can read (a process's heap, or a shared window between
/// processes): two slots per rank, addressed, written and looked at here and nowhere else.
public struct SharedSlotMemory: @unchecked Sendable {
    // @unchecked: a rank writes only its own slots, and only the parity no peer can still be reading;
    // peers read a slot's header and payload only after a load of its published word.
    public let base: UnsafeMutableRawPointer
    public let ranks: Int

    /// Bytes from one slot to the next: header, payload, rounded up to cache lines.
    public static let slotStride = (SharedSlotLayout.payload + SharedMemoryLimits.slotBytes + 63) & ~63

    /// Bytes a board of `ranks` ranks needs.
    public static func byteCount(ranks: Int) -> Int { slotStride * 2 * ranks }

    /// Over `base` (64-byte aligned, `byteCount(ranks:)` bytes); with `initialize`, zeroes every
    /// published word first (one rank does that, before any rank publishes).
    public init(base: UnsafeMutableRawPointer, ranks: Int, initialize: Bool) {
        precondition(MemoryLayout<CallSignature>.size <= SharedSlotLayout.payload - SharedSlotLayout.signature)
        self.base = base
        self.ranks = ranks
        if initialize {
            for slot in 0..<(2 * ranks) {
                (base + slot * Self.slotStride + SharedSlotLayout.published).bindMemory(to: Atomic<UInt64>.self, capacity: 1)
                    .initialize(to: Atomic(0))
            }
        }
    }

    @inline(__always)
    func slot(_ rank: Int, _ parity: Int) -> UnsafeMutableRawPointer { base + (rank &* 2 &+ parity) &* Self.slotStride }

    @inline(__always)
    func publishedWord(_ slot: UnsafeMutableRawPointer) -> UnsafeMutablePointer<Atomic<UInt64>> {
        (slot + SharedSlotLayout.published).assumingMemoryBound(to: Atomic<UInt64>.self)
    }

    /// The board call `rank` last published in its slot of `parity`. Sequentially consistent (a
    /// plain load on x86): a parked waiter's re-check pairs with the publisher's store.
    @inline(__always)
    public func published(_ rank: Int, _ parity: Int) -> UInt64 {
        publishedWord(slot(rank, parity)).pointee.load(ordering: .sequentiallyConsistent)
    }

    /// The last board call `rank` published (0 before its first).
    @inline(__always)
    public func generation(of rank: Int) -> UInt64 { max(published(rank, 0), published(rank, 1)) }

    /// The communicator sequence number of the last call `rank` published on the board (0 if none).
    /// Only for a peer that cannot run two board calls ahead meanwhile (one this rank waits for).
    public func latestSequence(of rank: Int) -> UInt64 {
        let generation = generation(of: rank)
        guard generation > 0 else { return 0 }
        return slot(rank, Int(generation & 1)).load(fromByteOffset: SharedSlotLayout.signature, as: CallSignature.self).sequence
    }

    /// True when `rank` has published communicator call `sequence` or a later one on the board.
    public func hasPublished(_ rank: Int, atOrAfter sequence: UInt64) -> Bool {
        latestSequence(of: rank) >= sequence
    }

    /// Writes `rank`'s part of its next board call (`signature` in communicator `context`), then
    /// publishes it (a sequentially consistent store, last, so that a reader that sees the number
    /// sees the rest). Returns the board call's number. Throws `.invalidArgument`, writing nothing,
    /// for more bytes than a slot holds.
    @inline(__always)
    @discardableResult
    public func publish(
        rank: Int, context: UInt32, signature: CallSignature, entry: UInt64, byteCount: Int, fill: (UnsafeMutableRawPointer) -> Void
    ) throws(SkeinError) -> UInt64 {
        if let error = Self.oversize(byteCount, rank: rank, tag: Tag(context: context, sequence: signature.sequence)) { throw error }
        let generation = generation(of: rank) &+ 1
        let mine = slot(rank, Int(generation & 1))
        fill(mine + SharedSlotLayout.payload)
        mine.storeBytes(of: entry, toByteOffset: SharedSlotLayout.entry, as: UInt64.self)
        mine.storeBytes(of: byteCount, toByteOffset: SharedSlotLayout.byteCount, as: Int.self)
        mine.storeBytes(of: signature, toByteOffset: SharedSlotLayout.signature, as: CallSignature.self)
        publishedWord(mine).pointee.store(generation, ordering: .sequentiallyConsistent)
        return generation
    }

    /// True once ranks `next`… have all published board call `generation`; advances `next` past those
    /// that have (a rank that published stays published for this call).
    @inline(__always)
    public func allPublished(_ generation: UInt64, from next: inout Int) -> Bool {
        let parity = Int(generation & 1)
        while next < ranks {
            guard published(next, parity) == generation else { return false }
            next &+= 1
        }
        return true
    }

    /// Looks `times` times for every rank's part of board call `generation`: its slots, once all are there.
    @inline(__always)
    public func look(_ generation: UInt64, times: Int) -> SharedSlots? {
        var next = 0
        for _ in 0..<times where allPublished(generation, from: &next) { return slots(generation) }
        return nil
    }

    /// The slots of board call `generation`.
    public func slots(_ generation: UInt64) -> SharedSlots {
        SharedSlots(slots: slot(0, Int(generation & 1)), stride: 2 * Self.slotStride, count: ranks)
    }

    /// The error for a call of `byteCount` bytes, if it is more than a slot holds.
    static func oversize(_ byteCount: Int, rank: Int, tag: Tag) -> SkeinError? {
        guard !(0...SharedMemoryLimits.slotBytes).contains(byteCount) else { return nil }
        return SkeinError(
            .invalidArgument, rank: rank,
            "call \(tag) publishes \(byteCount) bytes through shared memory, which holds at most \(SharedMemoryLimits.slotBytes) per rank; "
                + "use a message-passing algorithm for this size")
    }
}

extension SkeinError {
    /// `rank` waits on the shared-memory board for call `sequence` while `peer` runs it by messages.
    public static func peerRunsByMessages(rank: Int, peer: Int, sequence: UInt64) -> SkeinError {
        SkeinError(
            .desync, rank: rank, peer: peer,
            "rank \(peer) runs call #\(sequence) by messages while rank \(rank) runs it through shared memory; " + pathAdvice)
    }

    /// `rank` waits for `peer`'s message of call `sequence` while `peer` runs it on the shared-memory board.
    public static func peerRunsOnBoard(rank: Int, peer: Int, sequence: UInt64) -> SkeinError {
        SkeinError(
            .desync, rank: rank, peer: peer,
            "rank \(peer) runs call #\(sequence) through shared memory while rank \(rank) waits for its message in it; " + pathAdvice)
    }

    private static let pathAdvice = "the ranks passed different sizes or algorithms, or issue collectives in different orders"
}
