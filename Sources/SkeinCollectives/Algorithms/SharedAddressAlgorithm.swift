import SkeinCore

/// Collectives among ranks of one address space (in-process ranks) that read each other's inputs
/// where they lie: every rank publishes the address of its input (and of its output) on the board,
/// does its share of the work straight between those arrays, and a second board call then tells
/// every rank that all of it is written and no input is read any more. No message, no copy into a
/// slot, no copy out: the memory traffic is the least the operation can make, spread over every
/// rank. For large vectors only: each call waits for every rank twice.
///
/// - Reduce, reduce-scatter, allreduce: each rank folds its 1/p block of the vector from all p
///   inputs, a cache-sized tile at a time, and writes the block where it belongs: the root's output
///   (reduce), its own (reduce-scatter), every rank's (allreduce).
/// - Gather: each rank copies its input into its place in the root's output (p copies at once,
///   where a tree leaves them all to the root: p = 4, 4 MiB, 79 µs against MST's 116).
/// - All-to-all: each rank copies its block of every input into its own output (pulled, so each
///   rank writes only memory of its own), starting at its own rank so that the ranks read
///   different inputs at a time; two waits for every rank where pairwise exchange has p−1 rounds.
///
/// Not allgather: every rank must write the whole result, as ring allgather's ranks do with the
/// blocks handed to them, so pulling it saved nothing (p = 4: 135 µs against ring's 130 at 1 MiB,
/// 13.8 ms against 12.1 at 64 MiB). Nor did pushing it, each rank copying its input into every
/// output a tile at a time, which reads each input byte from memory once instead of p times
/// (p = 4: 50.9 µs against the ring's 57.5 at 1 MiB, 0.33 against 0.29 ms at 4 MiB, 2.67 against
/// 2.48 at 16, 10.4 against 10.2 at 64): the p writes of every byte bound it, as they bound the ring.
///
/// The result goes into the caller's array where it passed one (the `into:` and in-place forms).
///
/// An in-place allreduce is safe although every output is also an input: block b of every array
/// is read and written by rank b alone, and each tile is read from all p inputs before any of it is
/// written.
///
/// Blocks fold in rank order (0, 1, …, p−1), so a repeated call reproduces its result, and every
/// rank of an allreduce receives the same bytes.
public struct SharedAddressAlgorithm: ReduceAlgorithm, ReduceScatterAlgorithm, AllreduceAlgorithm, GatherAlgorithm, AllToAllAlgorithm {
    public let operation: CollectiveOperation

    /// For one of `operations`.
    public init(_ operation: CollectiveOperation) {
        self.operation = operation
    }

    public var name: String { "shared-address" }
    public static let code: UInt8 = 21
    public var code: UInt8 { Self.code }

    /// The operations it runs.
    public static let operations: [CollectiveOperation] = [.reduce, .reduceScatter, .allreduce, .gather, .allToAll]

    /// The operations it runs only where the caller gave an array for the result (the selector
    /// leaves it out of the forms that return a new one): their output is a whole vector, which
    /// written into memory of the call's own would be copied once more into the returned array
    /// (allreduce at p = 4, 4 MiB: 2.1–2.3 ms so, against Rabenseifner's 1.2–1.8 ms; in place
    /// 0.6–0.7 ms).
    public static let needsDestination: [CollectiveOperation] = [.allreduce, .gather, .allToAll]

    /// The selector weighs it from this size up (a pinned call runs at any size): below, two waits
    /// for every rank cost more than the traffic saved, and the board's own slots serve.
    public static let minimumBytes = SharedMemoryLimits.slotBytes

    /// The whole input in one block; the board does the rest.
    public func schedule(rank: Int, size: Int, root: Int) -> Schedule {
        .inPlace(slots: 1, [])
    }

    /// Two synchronizations, then each rank's share, with `bytes` as the model counts them:
    /// - reductions: each rank reads its block of the p−1 other inputs across cores and folds them
    ///   into its own (which, as in the message algorithms' formulas, costs no β: it crosses no
    ///   core) and writes the block once; an allreduce copies it to the p−1 other outputs. The fold
    ///   keeps its tile in the first-level cache, so it costs the cache's γ (`tileGamma`) even
    ///   where the call is priced past the cache: its traffic to memory is the β of the inputs it
    ///   reads and the outputs it writes, where a pairwise reduction also writes each partial sum
    ///   out and reads it back (p = 4, 4 MiB: shared-address 0.40 ms, ring 0.91). Past the cache
    ///   its own block, read and written once, costs a β too, although it crosses no core: that
    ///   traffic goes to memory (without it, p = 4, 16 MiB reduce-scatter: 1.76 ms predicted,
    ///   3.75 measured);
    /// - gather: each rank copies its 1/p of the result into the root's output, all at once;
    /// - all-to-all: each rank copies the p−1 blocks of n/p it receives into its output.
    public func predictedSeconds(ranks p: Int, bytes: Int, cost: CostParameters) -> Double {
        guard bytes >= Self.minimumBytes, Self.operations.contains(operation) else { return .infinity }
        let share = Double(bytes) / Double(p)
        let sync = p > 1 ? 2 * cost.sharedAlpha * Double(TreeCost.ceilLog2(p)) : 0
        let others = Double(p - 1) * share
        let own = cost.pastCache ? share * cost.beta : 0
        return switch operation {
        case .gather: sync + (p > 1 ? share * cost.beta : 0)
        case .allToAll: sync + others * cost.beta
        case .allreduce: sync + others * (cost.beta + cost.tileGamma) + own + others * cost.beta
        default: sync + others * (cost.beta + cost.tileGamma) + own
        }
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

    /// This rank's output for a call of `count` elements of `width` bytes (per rank for gather): the
    /// whole vector (the root of a reduce, every rank of an allreduce), its block (reduce-scatter),
    /// every rank's input (the root of a gather), its block of every rank's input (all-to-all), or none.
    func outputBytes(count: Int, width: Int, rank: Int, size: Int, root: Int) -> Int {
        switch operation {
        case .reduce: rank == root ? count * width : 0
        case .allreduce: count * width
        case .reduceScatter: BlockPartition(count: count, parts: size).range(rank).count * width
        case .gather: rank == root ? count * size * width : 0
        case .allToAll: BlockPartition(count: count, parts: size).range(rank).count * size * width
        default: 0
        }
    }

    /// Once every rank has published its addresses: this rank's share of the call (see the type).
    /// The caller then waits on the board once more before any input may change or any output be read.
    func work(_ slots: SharedSlots, rank: Int, root: Int, count: Int, width: Int, reducer: Reducer?) {
        switch operation {
        case .gather, .allToAll: copyBlocks(slots, rank: rank, root: root, count: count, width: width)
        default: foldBlock(slots, rank: rank, root: root, count: count, width: width, reducer: reducer)
        }
    }

    /// Gather and all-to-all: copies this rank's input to the root's output, or its block of every
    /// input into its own output. Past the cache, the copies stream (`MemoryCopy`).
    func copyBlocks(_ slots: SharedSlots, rank: Int, root: Int, count: Int, width: Int) {
        let size = slots.count
        let addresses = (0..<size).map { slots.bytes(of: $0).loadUnaligned(as: Addresses.self) }
        let streaming = MemoryCopy.streams(workingSet: count * width * size * 2)
        switch operation {
        case .gather:
            let bytes = count * width
            guard bytes > 0 else { return }
            MemoryCopy.copy(
                to: UnsafeMutableRawPointer(bitPattern: addresses[root].output)! + rank * bytes,
                from: UnsafeRawPointer(bitPattern: addresses[rank].input)!, byteCount: bytes, streaming: streaming)
        default:
            let block = BlockPartition(count: count, parts: size).range(rank)
            let bytes = block.count * width
            guard bytes > 0 else { return }
            let output = UnsafeMutableRawPointer(bitPattern: addresses[rank].output)!
            for step in 0..<size {
                let peer = (rank + step) % size
                MemoryCopy.copy(
                    to: output + peer * bytes, from: UnsafeRawPointer(bitPattern: addresses[peer].input)! + block.lowerBound * width,
                    byteCount: bytes, streaming: streaming)
            }
        }
    }

    /// Reductions: folds this rank's block from every input into the outputs it belongs in.
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
