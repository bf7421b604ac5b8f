import SkeinCore

/// Reduce, reduce-scatter and allreduce among ranks of one address space (in-process ranks) that
/// read each other's inputs where they lie: every rank publishes the address of its input (and of
/// its output) on the board, folds its 1/p block of the vector from all p inputs, a cache-sized tile
/// at a time, and writes the block straight where it belongs: the root's output (reduce), its own
/// (reduce-scatter), every rank's (allreduce); the caller's array itself where it passed one
/// (`reduce(_:into:)`, the in-place `allreduce(_:)`). A second board call then tells every rank that
/// all blocks are written and no input is read any more. The memory traffic is the least a
/// reduction can make: each input read once, each output byte written once, spread over every rank;
/// no message, no copy into a slot, no gather, no copy out. For large vectors only: each call waits
/// for every rank twice.
///
/// An in-place allreduce is safe although every output is also an input: block b of every array
/// is read and written by rank b alone, and each tile is read from all p inputs before any of it is
/// written.
///
/// Blocks fold in rank order (0, 1, …, p−1), so a repeated call reproduces its result, and every
/// rank of an allreduce receives the same bytes.
public struct SharedAddressAlgorithm: ReduceAlgorithm, ReduceScatterAlgorithm, AllreduceAlgorithm {
    public let operation: CollectiveOperation

    /// For `.reduce`, `.reduceScatter` or `.allreduce`.
    public init(_ operation: CollectiveOperation) {
        self.operation = operation
    }

    public var name: String { "shared-address" }
    public static let code: UInt8 = 21
    public var code: UInt8 { Self.code }

    /// The operations it runs.
    public static let operations: [CollectiveOperation] = [.reduce, .reduceScatter, .allreduce]

    /// The selector weighs it from this size up (a pinned call runs at any size): below, two waits
    /// for every rank cost more than the traffic saved, and the board's own slots serve.
    public static let minimumBytes = SharedMemoryLimits.slotBytes

    /// The whole input in one block; the board does the rest.
    public func schedule(rank: Int, size: Int, root: Int) -> Schedule {
        .inPlace(slots: 1, [])
    }

    /// Two synchronizations, then each rank reads its block of the p−1 other inputs across cores
    /// and folds them into its own (which, as in the message algorithms' formulas, costs no β: it
    /// crosses no core) and writes the block once; an allreduce copies it to the p−1 other outputs.
    public func predictedSeconds(ranks p: Int, bytes: Int, cost: CostParameters) -> Double {
        guard bytes >= Self.minimumBytes, Self.operations.contains(operation) else { return .infinity }
        let share = Double(bytes) / Double(p)
        let sync = p > 1 ? 2 * cost.sharedAlpha * Double(TreeCost.ceilLog2(p)) : 0
        let copies = operation == .allreduce ? Double(p - 1) * share * cost.beta : 0
        return sync + Double(p - 1) * share * (cost.beta + cost.gamma) + copies
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
    /// root of a reduce, every rank of an allreduce), its block (reduce-scatter), or none.
    func outputBytes(count: Int, width: Int, rank: Int, size: Int, root: Int) -> Int {
        switch operation {
        case .reduce: rank == root ? count * width : 0
        case .allreduce: count * width
        case .reduceScatter: BlockPartition(count: count, parts: size).range(rank).count * width
        default: 0
        }
    }

    /// Once every rank has published its addresses: folds this rank's block from every input into
    /// the outputs it belongs in. The caller then waits on the board once more before any input
    /// may change or any output be read.
    func foldBlock(_ slots: SharedSlots, rank: Int, root: Int, count: Int, width: Int, reducer: Reducer?) {
        let size = slots.count
        let block = BlockPartition(count: count, parts: size).range(rank)
        guard !block.isEmpty else { return }
        let addresses = (0..<size).map { slots.bytes(of: $0).loadUnaligned(as: Addresses.self) }
        let inputs = addresses.map { UnsafeRawPointer(bitPattern: $0.input)! + block.lowerBound * width }
        // The tile is folded into the first of these, then copied to the rest. (In place, the first
        // is rank 0's input, whose tile the fold has read before it writes there.)
        let outputs: [UnsafeMutableRawPointer] =
            switch operation {
            case .reduce: [UnsafeMutableRawPointer(bitPattern: addresses[root].output)! + block.lowerBound * width]
            case .allreduce: addresses.map { UnsafeMutableRawPointer(bitPattern: $0.output)! + block.lowerBound * width }
            default: [UnsafeMutableRawPointer(bitPattern: addresses[rank].output)!]
            }
        let total = block.count * width
        let tile = max(Self.tileBytes / width, 1) * width
        var offset = 0
        while offset < total {
            let length = min(tile, total - offset)
            let target = outputs[0] + offset
            if let reducer, size > 1 {
                reducer(into: target, inputs[0] + offset, inputs[1] + offset, byteCount: length)
                for peer in 2..<size { reducer(into: target, target, inputs[peer] + offset, byteCount: length) }
            } else if UnsafeRawPointer(target) != inputs[0] + offset {
                target.copyMemory(from: inputs[0] + offset, byteCount: length)
            }
            // Plain stores, not streaming ones (`MemoryCopy`): in place, the fold has just read
            // these very lines into the cache (measured: streaming them made 8–64 MiB 1.3× slower).
            for other in outputs.dropFirst() { (other + offset).copyMemory(from: target, byteCount: length) }
            offset += length
        }
    }
}
