import SkeinCore

/// Reduce and reduce-scatter among ranks of one address space (in-process ranks) that read each
/// other's inputs where they lie: every rank publishes the address of its input (and of its output)
/// on the board, folds its 1/p block of the vector from all p inputs, a cache-sized tile at a time,
/// and writes the block straight where it belongs: the root's output (reduce), its own (reduce-
/// scatter), the caller's array itself where it passed one (`reduce(_:into:)`). A second board
/// call then tells every rank that all blocks are written and no input is read any more. The
/// memory traffic is the least a reduction can make: each input read once, each output byte
/// written once, spread over every rank; no message, no copy into a slot, no gather, no copy out.
/// For large vectors only: each call waits for every rank twice.
///
/// (An allreduce this way writes each block to every rank and still copies the result out of the
/// call: measured at p = 4, 1.6× slower than the ring or 2-D allreduce at 16 MiB, so it has none.)
///
/// Blocks fold in rank order (0, 1, …, p−1), so a repeated call reproduces its result.
public struct SharedAddressAlgorithm: ReduceAlgorithm, ReduceScatterAlgorithm {
    public let operation: CollectiveOperation

    /// For `.reduce` or `.reduceScatter`.
    public init(_ operation: CollectiveOperation) {
        self.operation = operation
    }

    public var name: String { "shared-address" }
    public static let code: UInt8 = 21
    public var code: UInt8 { Self.code }

    /// The operations it runs.
    public static let operations: [CollectiveOperation] = [.reduce, .reduceScatter]

    /// The selector weighs it from this size up (a pinned call runs at any size): below, two waits
    /// for every rank cost more than the traffic saved, and the board's own slots serve.
    public static let minimumBytes = SharedMemoryLimits.slotBytes

    /// The whole input in one block; the board does the rest.
    public func schedule(rank: Int, size: Int, root: Int) -> Schedule {
        .inPlace(slots: 1, [])
    }

    /// Two synchronizations, then each rank reads its block of the p−1 other inputs and folds them
    /// in (its own is read too, as a copy) and writes the block once.
    public func predictedSeconds(ranks p: Int, bytes: Int, cost: CostParameters) -> Double {
        guard bytes >= Self.minimumBytes, Self.operations.contains(operation) else { return .infinity }
        let share = Double(bytes) / Double(p)
        let sync = p > 1 ? 2 * cost.sharedAlpha * Double(TreeCost.ceilLog2(p)) : 0
        return sync + share * cost.beta + Double(p - 1) * share * (cost.beta + cost.gamma)
    }
}

extension SharedAddressAlgorithm {
    /// Bytes folded per tile: the tile of the result stays in the core's L1 while the p inputs stream through.
    static let tileBytes = 16 << 10

    /// What a rank publishes: where its input starts and where its output does (0 where it has none).
    struct Addresses {
        var input: UInt
        var output: UInt
    }

    /// This rank's output for a call of `count` elements of `width` bytes: the whole vector (the
    /// root of a reduce), its block (reduce-scatter), or none.
    func outputBytes(count: Int, width: Int, rank: Int, size: Int, root: Int) -> Int {
        switch operation {
        case .reduce: rank == root ? count * width : 0
        case .reduceScatter: BlockPartition(count: count, parts: size).range(rank).count * width
        default: 0
        }
    }

    /// Once every rank has published its addresses: folds this rank's block from every input into
    /// the output it belongs in. The caller then waits on the board once more before any input
    /// may change or any output be read.
    func foldBlock(_ slots: SharedSlots, rank: Int, root: Int, count: Int, width: Int, reducer: Reducer?) {
        let size = slots.count
        let block = BlockPartition(count: count, parts: size).range(rank)
        guard !block.isEmpty else { return }
        let addresses = (0..<size).map { slots.bytes(of: $0).loadUnaligned(as: Addresses.self) }
        let inputs = addresses.map { UnsafeRawPointer(bitPattern: $0.input)! + block.lowerBound * width }
        let output =
            operation == .reduce
            ? UnsafeMutableRawPointer(bitPattern: addresses[root].output)! + block.lowerBound * width
            : UnsafeMutableRawPointer(bitPattern: addresses[rank].output)!
        let total = block.count * width
        let tile = max(Self.tileBytes / width, 1) * width
        var offset = 0
        while offset < total {
            let length = min(tile, total - offset)
            let target = output + offset
            if let reducer, size > 1 {
                reducer(into: target, inputs[0] + offset, inputs[1] + offset, byteCount: length)
                for peer in 2..<size { reducer(into: target, target, inputs[peer] + offset, byteCount: length) }
            } else {
                target.copyMemory(from: inputs[0] + offset, byteCount: length)
            }
            offset += length
        }
    }
}
