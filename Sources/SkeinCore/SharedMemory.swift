import CMemoryCopy
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

/// One communicator's shared slots: `SharedSlotMemory.slotsPerRank` per rank, used in turn by the
/// rank's board calls (counted apart from the communicator's sequence numbers: calls by messages in
/// between must not shift them). A rank publishes board call g into slot g mod K only once every
/// rank has published call g − K + 1, which each does only after it finished reading call g − K,
/// so nobody overwrites a part a peer may still read, and a rank that need not wait may run up to
/// K − 1 calls ahead of the slowest. A part too big for its slot goes to big slot g mod B, under the
/// same rule with B (fewer big slots than slots: big calls run fewer calls ahead).
///
/// A call need not wait for every rank: as in MPI's eager protocol, the root of a broadcast or
/// scatter publishes and goes on, a non-root of a reduce or gather too, and a non-root of a
/// broadcast waits for the root alone (`awaiting`). A rank that waits for nobody learns of a peer's
/// failure or disagreement in this call at its next call on the communicator, as in MPI.
///
/// A call is `publish`, which returns the slots at once when every awaited rank is there within a
/// short look (the common case, with no suspension point), and otherwise `awaitAll`; `awaitRoom`
/// first where `publish` found the rank's next slot still in use.
public protocol SharedMemoryBoard: AnyObject, Sendable {
    /// Writes this rank's part of call `signature.sequence` (`byteCount` bytes, at most
    /// `SharedMemoryLimits.slotBytes`, through `fill`, which gets exactly those bytes to write, and
    /// is not called for none) and looks briefly for the part of every rank in
    /// `awaiting`: `.ready` with the slots once all are there, `.waiting` if not yet, and `.full`,
    /// writing nothing, while a peer may still read the slot this call would use. `readAhead`: the
    /// awaited ranks await nothing of this one (a rooted call's producers), so they likely have
    /// their next part there already (see `BoardCursor.look`).
    /// Throws `.invalidArgument` for too many bytes and `.aborted` when a rank aborted the context.
    func publish(
        rank: Int, signature: CallSignature, entry: UInt64, byteCount: Int, awaiting: Range<Int>, readAhead: Bool,
        fill: (UnsafeMutableRawBufferPointer) -> Void
    ) throws(SkeinError) -> BoardPublish

    /// Waits until this rank's next slots are free for a part of `byteCount` bytes (every rank has
    /// published the call K − 1, or for a big part B − 1, before it), after `publish` returned
    /// `.full`. Throws as `awaitAll` does, naming the rank it waited for.
    func awaitRoom(rank: Int, sequence: UInt64, byteCount: Int, deadline: UInt64) async throws(SkeinError)

    /// Waits until every rank in `awaiting` has published call `sequence`, after `publish` returned
    /// `.waiting`. Throws `.timeout` or `.peerExited` naming the rank waited for, `.aborted` when a
    /// rank aborted the context, and `.desync` when a peer runs this call by messages instead or skipped it.
    func awaitAll(rank: Int, sequence: UInt64, awaiting: Range<Int>, deadline: UInt64) async throws(SkeinError) -> SharedSlots

    /// True when the ranks share one address space (in-process ranks), so an address one publishes
    /// is valid in every other (`SharedAddressAlgorithm`).
    var sharesAddressSpace: Bool { get }
}

/// What `SharedMemoryBoard.publish` did.
public enum BoardPublish {
    /// Published, and every awaited rank's part is there.
    case ready(SharedSlots)
    /// Published; some awaited rank's part is not there yet (`awaitAll`).
    case waiting
    /// Not published: a peer may still read the slot this call needs (`awaitRoom`, then publish).
    case full
}

extension SharedMemoryBoard {
    /// `publish`, waiting for room or for the awaited ranks where needed (every rank, by default).
    /// The slots of the awaited ranks and this rank's own stay readable until this rank's next call.
    /// Always inlined (`@inlinable` alone left it a call of its own, an async frame on every call),
    /// so a call that finds every rank there enters no wait.
    @inlinable @inline(__always)
    public func exchange(
        rank: Int, signature: CallSignature, entry: UInt64, byteCount: Int, awaiting: Range<Int>? = nil, deadline: UInt64,
        fill: (UnsafeMutableRawBufferPointer) -> Void
    ) async throws(SkeinError) -> SharedSlots {
        let awaiting = awaiting ?? 0..<Int.max
        let outcome = try publish(
            rank: rank, signature: signature, entry: entry, byteCount: byteCount, awaiting: awaiting, readAhead: false, fill: fill)
        if case .ready(let slots) = outcome { return slots }
        return try await complete(
            after: outcome, rank: rank, signature: signature, entry: entry, byteCount: byteCount, awaiting: awaiting, deadline: deadline, fill: fill)
    }

    /// The rest of `exchange` after a `publish` (with the same arguments) that returned `outcome`:
    /// waits for room and publishes where it found none, then waits for the awaited ranks.
    public func complete(
        after outcome: BoardPublish, rank: Int, signature: CallSignature, entry: UInt64, byteCount: Int, awaiting: Range<Int>,
        deadline: UInt64, fill: (UnsafeMutableRawBufferPointer) -> Void
    ) async throws(SkeinError) -> SharedSlots {
        var outcome = outcome
        if case .full = outcome {
            try await awaitRoom(rank: rank, sequence: signature.sequence, byteCount: byteCount, deadline: deadline)
            outcome = try publish(
                rank: rank, signature: signature, entry: entry, byteCount: byteCount, awaiting: awaiting, readAhead: false, fill: fill)
        }
        switch outcome {
        case .ready(let slots): return slots
        case .waiting, .full: return try await awaitAll(rank: rank, sequence: signature.sequence, awaiting: awaiting, deadline: deadline)
        }
    }
}

/// Every rank's published part of one call: what it called, when it entered, and its bytes.
public struct SharedSlots: @unchecked Sendable {
    // @unchecked: read-only pointers into a board's memory, valid while the owning rank's call lasts.
    let slots: UnsafeRawPointer
    let stride: Int
    public let count: Int

    /// `slots` points at rank 0's slot for this call; rank r's is `r × stride` bytes further.
    init(slots: UnsafeRawPointer, stride: Int, count: Int) {
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
        let word = base.load(fromByteOffset: SharedSlotLayout.byteCount, as: UInt64.self)
        let (byteCount, distance) = SharedSlotLayout.part(word)
        return UnsafeRawBufferPointer(start: base + distance, count: byteCount)
    }
}

/// Byte offsets within a slot. The header and the first bytes of the payload share one cache line,
/// so a peer reads a small call's whole part in one transfer.
public enum SharedSlotLayout {
    /// The board call (1, 2, …) last published in this slot (an atomic, stored last).
    public static let published = 0
    public static let entry = 8
    /// The part's byte count, and above bit 24 how far past the header's start it lies (`payload`
    /// where it follows the header, further in a big slot). (Three words make `SharedSlots`, not
    /// four: a fourth, to find the big slots from, made every board call 20–50 ns slower, whether
    /// it used them or not.)
    public static let byteCount = 16
    public static let signature = 24
    public static let payload = 48

    /// The `byteCount` word of a part of `byteCount` bytes (under 16 MiB) that lies `distance` bytes past its header's start.
    @inline(__always)
    static func word(byteCount: Int, distance: Int) -> UInt64 {
        UInt64(truncatingIfNeeded: byteCount) | UInt64(truncatingIfNeeded: distance) << 24
    }

    /// A `byteCount` word's byte count and distance (`word(byteCount:distance:)` undone).
    @inline(__always)
    static func part(_ word: UInt64) -> (byteCount: Int, distance: Int) {
        (Int(truncatingIfNeeded: word & 0xFF_FFFF), Int(truncatingIfNeeded: word >> 24))
    }
}

/// A board's slots in memory every rank can read (a process's heap, or a shared window between
/// processes), addressed, written and looked at here and nowhere else: per rank, `slotsPerRank`
/// slots of a header and a small part, and `bigSlotsPerRank` slots for parts too big for those.
/// A small call's part follows its header, so that a rank may run many small calls ahead (each
/// wait for room among ranks that outnumber the cores costs a switch of threads, which then counts
/// once per many calls); a big one takes the next big slot in turn, so that big calls cycle
/// through few slots, which stay in the cache.
public struct SharedSlotMemory: @unchecked Sendable {
    // @unchecked: a rank writes only its own slots, and only one no peer can still be reading (see
    // `SharedMemoryBoard`); peers read a slot's header and payload only after a load of its published word.
    public let base: UnsafeMutableRawPointer
    public let ranks: Int

    /// Slots per rank (a power of two): how far a rank that need not wait may run ahead, plus one.
    public static let slotsPerRank = 64

    /// Bytes from one slot to the next: header and a small part, four cache lines.
    public static let slotStride = 256

    /// The most bytes of a part that follow its header; a bigger part goes to a big slot.
    public static let inlineBytes = slotStride - SharedSlotLayout.payload

    /// Big slots per rank: how many big calls a rank may run ahead, plus one.
    public static let bigSlotsPerRank = 8

    /// Bytes from one big slot to the next: the largest part and a cache line more, so that the
    /// slots start on different cache sets.
    public static let bigSlotStride = SharedMemoryLimits.slotBytes + 64

    /// Bytes a board of `ranks` ranks needs: a progress line per rank, then the slots, then the big slots.
    public static func byteCount(ranks: Int) -> Int { 64 * ranks + (slotStride * slotsPerRank + bigSlotStride * bigSlotsPerRank) * ranks }

    /// Over `base` (64-byte aligned, `byteCount(ranks:)` bytes); with `initialize`, zeroes every
    /// published word first (one rank does that, before any rank publishes).
    public init(base: UnsafeMutableRawPointer, ranks: Int, initialize: Bool) {
        precondition(MemoryLayout<CallSignature>.size <= SharedSlotLayout.payload - SharedSlotLayout.signature)
        self.base = base
        self.ranks = ranks
        if initialize {
            for rank in 0..<ranks {
                (base + rank * 64).bindMemory(to: Atomic<UInt64>.self, capacity: 1).initialize(to: Atomic(0))
            }
            for slot in 0..<(Self.slotsPerRank * ranks) {
                (base + 64 * ranks + slot * Self.slotStride + SharedSlotLayout.published).bindMemory(to: Atomic<UInt64>.self, capacity: 1)
                    .initialize(to: Atomic(0))
            }
        }
    }

    /// The slot that holds `rank`'s board call `generation`.
    @inline(__always)
    func slot(_ rank: Int, _ generation: UInt64) -> UnsafeMutableRawPointer {
        let index: Int = rank &* Self.slotsPerRank &+ Int(truncatingIfNeeded: generation & UInt64(Self.slotsPerRank &- 1))
        let offset: Int = 64 &* ranks &+ index &* Self.slotStride
        return base + offset
    }

    /// Rank 0's first big slot.
    @inline(__always)
    var bigSlots: UnsafeMutableRawPointer {
        let offset: Int = 64 &* ranks &+ ranks &* Self.slotsPerRank &* Self.slotStride
        return base + offset
    }

    /// `rank`'s big slot `index`.
    @inline(__always)
    func bigSlot(_ rank: Int, _ index: Int) -> UnsafeMutableRawPointer {
        let offset: Int = (rank &* Self.bigSlotsPerRank &+ index) &* Self.bigSlotStride
        return bigSlots + offset
    }

    /// `rank`'s progress: its last board call, on a line of its own. A rank that looks whether its
    /// next slot is free reads this (one line, the exact count) rather than a slot's word, which
    /// would tell it only about one call and bring a line the owner writes again soon.
    @inline(__always)
    func progressWord(_ rank: Int) -> UnsafeMutablePointer<Atomic<UInt64>> {
        (base + rank &* 64).assumingMemoryBound(to: Atomic<UInt64>.self)
    }

    /// The last board call `rank` has published (acquiring: what it read in earlier calls happened before).
    @inline(__always)
    public func progress(of rank: Int) -> UInt64 {
        progressWord(rank).pointee.load(ordering: .acquiring)
    }

    @inline(__always)
    func publishedWord(_ slot: UnsafeMutableRawPointer) -> UnsafeMutablePointer<Atomic<UInt64>> {
        (slot + SharedSlotLayout.published).assumingMemoryBound(to: Atomic<UInt64>.self)
    }

    /// True once `rank` has published board call `generation` (or a later one). Its slot holds
    /// calls generation, generation + K, …, in turn, so the word there has reached `generation`.
    /// Acquiring: the header and payload written before the word are seen after it.
    @inline(__always)
    public func hasPublished(_ rank: Int, generation: UInt64) -> Bool {
        publishedWord(slot(rank, generation)).pointee.load(ordering: .acquiring) >= generation
    }

    /// The communicator sequence number of the last call `rank` published on the board (0 if none).
    /// Only for a peer that cannot overwrite that slot meanwhile (one this rank waits for).
    public func latestSequence(of rank: Int) -> UInt64 {
        let generation = progress(of: rank)
        return generation > 0 ? sequence(of: rank, generation: generation) : 0
    }

    /// The communicator sequence number of `rank`'s board call `generation`, while its slot holds it.
    public func sequence(of rank: Int, generation: UInt64) -> UInt64 {
        slot(rank, generation).load(fromByteOffset: SharedSlotLayout.signature, as: CallSignature.self).sequence
    }

    /// True when `rank` has published communicator call `sequence` or a later one on the board.
    public func hasPublished(_ rank: Int, atOrAfter sequence: UInt64) -> Bool {
        latestSequence(of: rank) >= sequence
    }

    /// True when communicator call `sequence` is among the calls `rank` has on the board now.
    public func holdsCall(_ rank: Int, sequence: UInt64) -> Bool {
        (0..<UInt64(Self.slotsPerRank)).contains { index in
            let slot = slot(rank, index)
            return publishedWord(slot).pointee.load(ordering: .acquiring) > 0
                && slot.load(fromByteOffset: SharedSlotLayout.signature, as: CallSignature.self).sequence == sequence
        }
    }

    /// Writes `rank`'s part of its board call `generation` (`signature` in communicator `context`),
    /// after its header, or in a big slot for a part of more than `inlineBytes`, then publishes
    /// it (a releasing store, last, so that a reader that sees the number sees the rest; a board
    /// whose waiters sleep fences between this and its look for them). The caller has made sure no
    /// peer still reads either slot and checked the byte count (`BoardCursor.publish`).
    @inline(__always)
    func publish(
        rank: Int, generation: UInt64, signature: CallSignature, entry: UInt64, byteCount: Int,
        fill: (UnsafeMutableRawBufferPointer) -> Void
    ) {
        let mine = slot(rank, generation)
        // Where the part goes, counted from the header: right after it, or big slot `generation` mod
        // `bigSlotsPerRank`.
        let big = Int(truncatingIfNeeded: generation & UInt64(Self.bigSlotsPerRank &- 1))
        let distance = byteCount <= Self.inlineBytes ? SharedSlotLayout.payload : bigSlot(rank, big) - mine
        if byteCount > 0 { fill(UnsafeMutableRawBufferPointer(start: mine + distance, count: byteCount)) }
        mine.storeBytes(of: entry, toByteOffset: SharedSlotLayout.entry, as: UInt64.self)
        mine.storeBytes(of: SharedSlotLayout.word(byteCount: byteCount, distance: distance), toByteOffset: SharedSlotLayout.byteCount, as: UInt64.self)
        mine.storeBytes(of: signature, toByteOffset: SharedSlotLayout.signature, as: CallSignature.self)
        publishedWord(mine).pointee.store(generation, ordering: .releasing)
        progressWord(rank).pointee.store(generation, ordering: .releasing)
    }

    /// True once ranks `next`..<`end` have all published board call `generation`; advances `next`
    /// past those that have (a rank that published stays published for this call).
    @inline(__always)
    public func allPublished(_ generation: UInt64, from next: inout Int, to end: Int) -> Bool {
        while next < end {
            guard hasPublished(next, generation: generation) else { return false }
            next &+= 1
        }
        return true
    }

    /// Looks `times` times for the part of every rank in `ranks` of board call `generation`: the
    /// call's slots, once all are there. After the first few looks it pauses between them, so a
    /// rank that waits long does not keep loading the line its peer is about to write.
    @inline(__always)
    public func look(_ generation: UInt64, ranks: Range<Int>, times: Int) -> SharedSlots? {
        var next = ranks.lowerBound
        for attempt in 0..<times {
            if allPublished(generation, from: &next, to: ranks.upperBound) { return slots(generation) }
            if attempt >= 8 { skein_spin_pause() }
        }
        return nil
    }

    /// The slots of board call `generation`.
    public func slots(_ generation: UInt64) -> SharedSlots {
        SharedSlots(slots: slot(0, generation), stride: Self.slotsPerRank * Self.slotStride, count: ranks)
    }

    /// The board call every rank must have published before a rank's call `generation` of
    /// `byteCount` bytes may reuse its slots (0: none): the one after the last call that used its
    /// slot, and for a big part, also after the last call that used its big slot (big slot
    /// `generation` mod `bigSlotsPerRank`, so that no rank needs to remember which call had it).
    @inline(__always)
    public static func roomNeeded(for generation: UInt64, byteCount: Int) -> UInt64 {
        let reuse = UInt64(byteCount <= inlineBytes ? slotsPerRank : bigSlotsPerRank)
        return generation > reuse ? generation &- (reuse &- 1) : 0
    }

    /// The error for a call of `byteCount` bytes, more than a slot holds.
    static func oversize(_ byteCount: Int, rank: Int, tag: Tag) -> SkeinError {
        SkeinError(
            .invalidArgument, rank: rank,
            "call \(tag) publishes \(byteCount) bytes through shared memory, which holds at most \(SharedMemoryLimits.slotBytes) per rank; "
                + "use a message-passing algorithm for this size")
    }
}

/// What one rank's seat at a board keeps for itself: the number of its last board call, and how far
/// every rank is known to have come (so that a call whose slot is surely free looks at nobody).
/// Both boards (in-process and MPI) keep their rank's calls through it; they differ only in how
/// they wait.
public struct BoardCursor: Sendable {
    /// This rank's last board call.
    public private(set) var generation: UInt64 = 0
    /// A board call every rank is known to have published.
    private var floor: UInt64 = 0
    public init() {}

    /// Writes and publishes this rank's next board call if its slots are free (see `hasRoom`):
    /// true, or false, writing nothing, while a peer may still read one of them. Throws
    /// `.invalidArgument`, writing nothing, for more bytes than a big slot holds.
    @inline(__always)
    public mutating func publish(
        on memory: SharedSlotMemory, rank: Int, context: UInt32, signature: CallSignature, entry: UInt64, byteCount: Int,
        fill: (UnsafeMutableRawBufferPointer) -> Void
    ) throws(SkeinError) -> Bool {
        if byteCount < 0 || byteCount > SharedMemoryLimits.slotBytes {
            throw SharedSlotMemory.oversize(byteCount, rank: rank, tag: Tag(context: context, sequence: signature.sequence))
        }
        let next = generation &+ 1
        guard hasRoom(memory, needed: SharedSlotMemory.roomNeeded(for: next, byteCount: byteCount)) else { return false }
        memory.publish(rank: rank, generation: next, signature: signature, entry: entry, byteCount: byteCount, fill: fill)
        generation = next
        return true
    }

    /// Looks `times` times for the parts of the ranks in `awaiting` of this rank's last call (once
    /// when it awaits none). With `readAhead`, once they are there, asks for the lines of their next
    /// call's slots too: where they need nothing from this rank they run ahead, so the next call
    /// finds those lines here instead of waiting for them to come from the peers' cores.
    @inline(__always)
    public mutating func look(on memory: SharedSlotMemory, awaiting: Range<Int>, readAhead: Bool, times: Int) -> BoardPublish {
        let ranks = awaiting.clamped(to: 0..<memory.ranks)
        guard let slots = memory.look(generation, ranks: ranks, times: ranks.isEmpty ? 1 : times) else { return .waiting }
        heard(from: ranks, generation, on: memory)
        if readAhead { for rank in ranks { skein_prefetch_read(memory.publishedWord(memory.slot(rank, generation &+ 1))) } }
        return .ready(slots)
    }

    /// What a rank whose next call (of a `byteCount`-byte part) finds its slots taken waits for:
    /// the earlier board call it needs every rank to have published, and that call's sequence
    /// number (its own slot still holds it: at most `slotsPerRank` − 1 calls back), under which it
    /// waits: this call is not published yet, and a peer must not take it for published.
    public func room(on memory: SharedSlotMemory, rank: Int, byteCount: Int) -> (generation: UInt64, sequence: UInt64) {
        let needed = SharedSlotMemory.roomNeeded(for: generation &+ 1, byteCount: byteCount)
        return (needed, memory.sequence(of: rank, generation: needed))
    }

    /// Notes that the ranks in `ranks` have published board call `generation` (it counts once
    /// they are every rank).
    @inline(__always)
    public mutating func heard(from ranks: Range<Int>, _ generation: UInt64, on memory: SharedSlotMemory) {
        if ranks.count == memory.ranks { floor = max(floor, generation) }
    }

    /// True when this rank's next call may use its slots: every rank has published `needed`, as
    /// known already or as the ranks' progress shows now (then known for the next few calls too,
    /// so a rank that runs ahead looks only every few calls).
    @inline(__always)
    private mutating func hasRoom(_ memory: SharedSlotMemory, needed: UInt64) -> Bool {
        if floor >= needed { return true }
        var lowest = UInt64.max
        for rank in 0..<memory.ranks { lowest = min(lowest, memory.progress(of: rank)) }
        floor = max(floor, lowest)
        return floor >= needed
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
