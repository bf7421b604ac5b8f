/// A transport whose ranks share one address space (in-process ranks): besides messages, it offers
/// each communicator a board of per-rank slots that every rank can read. Small collectives then
/// need no messages at all: each rank publishes its input once, waits until every rank has
/// published, and computes its own result from everybody's slots (`SharedMemoryAlgorithm`), as
/// Open MPI's shared-memory collectives do between processes of one node.
public protocol SharedMemoryTransport: Transport {
    /// The board of the communicator whose calls are tagged `context`: one object, the same on every
    /// rank of the group, made on first use.
    func sharedBoard(context: UInt32) -> any SharedMemoryBoard
}

/// Bytes one rank may publish in one call through a shared-memory board.
public enum SharedMemoryLimits {
    public static let slotBytes = 64 << 10
}

/// One communicator's shared slots: two per rank, used by alternate calls, so a rank may publish
/// call s + 1 while slower peers still read its part of call s, and no rank needs to wait for the
/// others to finish reading (a peer can only reach call s + 2 after every rank has entered s + 1,
/// which each does only once it has finished reading call s).
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
}

extension SharedMemoryBoard {
    /// `publish`, then `awaitAll` if needed. The slots stay readable until this rank's next call.
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
    /// The sequence number last published in this slot (an atomic, stored last).
    public static let published = 0
    public static let entry = 8
    public static let byteCount = 16
    public static let signature = 24
    public static let payload = 48
}
