import SkeinCore

/// Flat shared-memory collectives for ranks in one address space (Open MPI's `coll/sm`, in spirit):
/// every rank copies its input into its slot of the communicator's board, waits once until all
/// ranks have published, then builds its own result straight from the others' slots. One
/// synchronization instead of log p message rounds, and no messages, buffers or wake-ups per peer:
/// the fastest way to move a few kilobytes between cores. The cost grows with p·n, since each rank
/// reads every slot, so larger messages go to the ring and tree algorithms.
///
/// Reductions fold the slots in rank order (0, 1, …, p−1) on every rank, so every rank ends
/// bit-identical, and a repeated call reproduces its result.
public struct SharedMemoryAlgorithm: BroadcastAlgorithm, ReduceAlgorithm, AllreduceAlgorithm, AllgatherAlgorithm,
    ReduceScatterAlgorithm, ScatterAlgorithm, GatherAlgorithm, AllToAllAlgorithm, BarrierAlgorithm
{
    public let operation: CollectiveOperation

    public init(_ operation: CollectiveOperation) {
        self.operation = operation
    }

    public var name: String { "shared-memory" }
    public static let code: UInt8 = 20
    public var code: UInt8 { Self.code }

    /// One input slot holding the whole input, one output slot; the board does the rest.
    public func schedule(rank: Int, size: Int, root: Int) -> Schedule {
        .inPlace(slots: 1, [])
    }

    /// One synchronization (`sharedAlpha` per tree level, as the last arrival's news spreads; one
    /// level for a rooted call), a
    /// local copy into the slot, and the bytes this rank reads and reduces from the others' slots.
    public func predictedSeconds(ranks p: Int, bytes: Int, cost: CostParameters) -> Double {
        guard Self.publishedBytes(operation, ranks: p, modelBytes: bytes) <= SharedMemoryLimits.slotBytes else { return .infinity }
        let n = Double(bytes), peers = Double(p - 1), share = n / Double(p)
        // A rooted call waits one way, the root for the others' parts (reduce, gather) or the others
        // for the root's (broadcast, scatter), and the side that waits for nobody goes on: one level,
        // not the round's ⌈log p⌉. Priced as a round, a p = 3 gather of 4 KiB came to 2.64 µs and the
        // formulas picked the tree (1.16 µs); it took 0.57–0.73 µs.
        let levels = isRooted ? 1 : TreeCost.ceilLog2(p)
        let sync = p > 1 ? cost.sharedAlpha * Double(levels) : 0
        let (beta, gamma) = (cost.beta, cost.gamma)
        switch operation {
        case .allreduce, .reduce: return sync + n * beta + peers * n * (beta + gamma)
        case .reduceScatter: return sync + n * beta + peers * share * (beta + gamma)
        case .broadcast, .allToAll: return sync + 2 * n * beta
        case .allgather, .gather: return sync + share * beta + n * beta
        case .scatter: return sync + n * beta + share * beta
        case .barrier, .pointToPoint: return sync
        }
    }

    /// The most bytes any rank publishes for a call of `modelBytes` (as `CollectiveAlgorithm` defines them).
    static func publishedBytes(_ operation: CollectiveOperation, ranks p: Int, modelBytes: Int) -> Int {
        switch operation {
        case .allgather, .gather: (modelBytes + p - 1) / p
        case .barrier, .pointToPoint: 0
        default: modelBytes
        }
    }
}

extension SharedMemoryAlgorithm {
    /// What one rank's call needs to know besides the slots: its signature (which every rank must
    /// share), its place, the reduction and the element width.
    struct Call {
        var signature: CallSignature
        var rank: Int
        var size: Int
        var reducer: Reducer?
        var width: Int
    }

    /// Bytes this rank publishes: its input, except where only the root's counts (broadcast, scatter).
    func publishedBytes(_ call: Call) -> Int {
        switch operation {
        case .broadcast, .scatter: call.rank == Int(call.signature.root) ? Int(call.signature.count) * call.width : 0
        case .barrier, .pointToPoint: 0
        default: Int(call.signature.count) * call.width
        }
    }

    /// The ranks whose parts this rank reads (nil: every rank). As in MPI's eager protocol, the root
    /// of a broadcast or scatter and the other ranks of a reduce or gather only write theirs and go
    /// on; the other ranks of a broadcast or scatter need the root's alone, and one that receives
    /// no element (as MPI's zero-count receive) needs nothing and goes on at once.
    func awaited(_ call: Call) -> Range<Int>? {
        let root = Int(call.signature.root)
        switch operation {
        case .broadcast, .scatter: return call.rank == root || receivesNothing(call) ? root..<root : root..<(root + 1)
        case .reduce, .gather: return call.rank == root ? nil : root..<root
        default: return nil
        }
    }

    /// True for a rank of a broadcast or scatter, other than the root, whose share is empty: of a
    /// broadcast of nothing, or of a scatter of fewer elements than ranks (blocks of `BlockPartition`:
    /// ranks from `count` on get none).
    @inline(__always)
    func receivesNothing(_ call: Call) -> Bool {
        guard call.rank != Int(call.signature.root) else { return false }
        let count = Int(call.signature.count)
        switch operation {
        case .broadcast: return count == 0
        case .scatter: return call.rank >= count
        default: return false
        }
    }

    /// Broadcast, scatter, reduce and gather: one side waits for the other, which goes on. So the
    /// ranks this one awaits (`awaited`) await nothing of it and run ahead: their next part is worth
    /// asking for early (`SharedMemoryBoard.publish`'s `readAhead`), and the call costs one level of
    /// synchronization. Not where ranks await each other (an allreduce, a barrier): there the next
    /// part is not written yet, and asking for its line early only made the peer's write fetch it
    /// back (a p = 2 barrier took 10% longer).
    var isRooted: Bool {
        switch operation {
        case .broadcast, .scatter, .reduce, .gather: true
        default: false
        }
    }

    /// Once every awaited rank has published: checks that they called alike, and returns this rank's
    /// output (nothing where the operation gives this rank none) and the arrival skew among them.
    /// The output goes straight into `destination` where it has the output's size (then nil).
    func finish(
        _ call: Call, slots: SharedSlots, destination: UnsafeMutableRawBufferPointer?
    ) throws(SkeinError) -> (output: [Chunk]?, skew: ArrivalSkew) {
        let signature = call.signature, rank = call.rank, size = call.size
        let count = Int(signature.count), root = Int(signature.root), width = call.width
        let skew = try Self.skew(slots, signature: signature, rank: rank, among: awaited(call) ?? 0..<size)
        let block = BlockPartition(count: count, parts: size)
        func bytes(_ elements: Range<Int>) -> Range<Int> { (elements.lowerBound * width)..<(elements.upperBound * width) }
        // Where the result goes: the caller's array when it fits, else a chunk of its own.
        func output(_ byteCount: Int, _ produce: (UnsafeMutableRawPointer) -> Void) -> [Chunk]? {
            if let destination, destination.count == byteCount {
                if byteCount > 0 { produce(destination.baseAddress!) }
                return nil
            }
            let storage = AllocatedStorage(uninitializedByteCount: byteCount)
            if byteCount > 0 { produce(storage.base) }
            return [Chunk(storage: storage, offset: 0, byteCount: byteCount, isWritable: true)]
        }
        func reduced(_ range: Range<Int>) -> [Chunk]? {
            output(range.count) { Self.reduce(slots, reducer: call.reducer, range: range, into: $0) }
        }
        func gathered(_ parts: Int, _ part: (Int) -> UnsafeRawBufferPointer) -> [Chunk]? {
            var total = 0
            for index in 0..<parts { total += part(index).count }
            return output(total) { target in
                var offset = 0
                for index in 0..<parts {
                    let bytes = part(index)
                    if let from = bytes.baseAddress, bytes.count > 0 { MemoryCopy.copy(to: target + offset, from: from, byteCount: bytes.count) }
                    offset += bytes.count
                }
            }
        }
        let result: [Chunk]?
        switch operation {
        case .allreduce:
            result = reduced(0..<(count * width))
        case .reduce:
            result = rank == root ? reduced(0..<(count * width)) : []
        case .reduceScatter:
            result = reduced(bytes(block.range(rank)))
        case .broadcast where rank == root && destination != nil:
            result = nil  // a broadcast's destination is the caller's own input: at the root, the result
        case .broadcast where receivesNothing(call), .scatter where receivesNothing(call):
            result = output(0) { _ in }  // the root's slot may not hold this call yet: not awaited
        case .broadcast:
            result = gathered(1) { _ in slots.bytes(of: root) }
        case .allgather:
            result = gathered(size) { slots.bytes(of: $0) }
        case .gather:
            result = rank == root ? gathered(size) { slots.bytes(of: $0) } : []
        case .scatter:
            let mine = bytes(block.range(rank))
            result = gathered(1) { _ in UnsafeRawBufferPointer(rebasing: slots.bytes(of: root)[mine]) }
        case .allToAll:
            let mine = bytes(block.range(rank))
            result = gathered(size) { UnsafeRawBufferPointer(rebasing: slots.bytes(of: $0)[mine]) }
        case .barrier, .pointToPoint:
            result = []
        }
        return (result, skew)
    }

    /// Who arrived last at a board call among this rank and `peers`, once their signatures are
    /// checked against this rank's.
    static func skew(
        _ slots: SharedSlots, signature: CallSignature, rank: Int, among peers: Range<Int>? = nil
    ) throws(SkeinError) -> ArrivalSkew {
        var skew = ArrivalSkew(rank: rank, entry: slots.entry(of: rank))
        for peer in peers ?? 0..<slots.count where peer != rank {
            if slots.signature(of: peer) != signature {
                throw ScheduleRun.disagreement(mine: signature, theirs: slots.signature(of: peer), rank: rank, peer: peer)
            }
            skew.merge(ArrivalSkew(rank: peer, entry: slots.entry(of: peer)))
        }
        return skew
    }

    /// The bytes `range` of every slot folded in rank order into `target`.
    private static func reduce(_ slots: SharedSlots, reducer: Reducer?, range: Range<Int>, into target: UnsafeMutableRawPointer) {
        func part(_ rank: Int) -> UnsafeRawPointer { slots.bytes(of: rank).baseAddress! + range.lowerBound }
        if let reducer, slots.count > 1 {
            reducer(into: target, part(0), part(1), byteCount: range.count)
            for peer in 2..<slots.count { reducer(into: target, target, part(peer), byteCount: range.count) }
        } else {
            MemoryCopy.copy(to: target, from: part(0), byteCount: range.count)
        }
    }
}
