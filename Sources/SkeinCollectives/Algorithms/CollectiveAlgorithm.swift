import SkeinCore

/// One way to carry out one collective operation: the messages each rank sends (its schedule) and
/// the predicted time of that pattern under the α-β-γ model.
///
/// `bytes` in predictions means: the vector for broadcast, reduce, allreduce and reduce-scatter;
/// the whole gathered result for allgather and gather; the root's whole buffer for scatter; each
/// rank's whole send buffer for all-to-all; 0 for barrier.
public protocol CollectiveAlgorithm: Sendable, CustomStringConvertible {
    var operation: CollectiveOperation { get }
    /// A short stable name (`ring`, `mst`, `rabenseifner`, …).
    var name: String { get }
    /// Unique among all algorithms; travels in every message so ranks that disagree are caught.
    var code: UInt8 { get }
    /// Rank `rank`'s schedule among `size` ranks (`root` is ignored by rootless operations).
    func schedule(rank: Int, size: Int, root: Int) -> Schedule
    /// Seconds the pattern takes for `bytes` on `ranks` ranks when no link is shared.
    func predictedSeconds(ranks: Int, bytes: Int, cost: CostParameters) -> Double
    /// Distinguishes configurations of one algorithm whose schedules differ (0 when there are none).
    var variant: Int { get }
}

extension CollectiveAlgorithm {
    public var description: String { "\(operation)/\(name)" }
    public var variant: Int { 0 }

    /// The formula at the costs of the call's regime (`CostParameters.regime`: past the cache,
    /// the memory's): what the selector weighs and the reports print as predicted.
    public func modelSeconds(ranks: Int, bytes: Int, cost: CostParameters) -> Double {
        predictedSeconds(ranks: ranks, bytes: bytes, cost: cost.regime(operation, ranks: ranks, bytes: bytes))
    }
}

public protocol BroadcastAlgorithm: CollectiveAlgorithm {}
public protocol ReduceAlgorithm: CollectiveAlgorithm {}
public protocol AllreduceAlgorithm: CollectiveAlgorithm {}
public protocol AllgatherAlgorithm: CollectiveAlgorithm {}
public protocol ReduceScatterAlgorithm: CollectiveAlgorithm {}
public protocol ScatterAlgorithm: CollectiveAlgorithm {}
public protocol GatherAlgorithm: CollectiveAlgorithm {}
public protocol AllToAllAlgorithm: CollectiveAlgorithm {}
public protocol BarrierAlgorithm: CollectiveAlgorithm {}

/// Every algorithm Skein has, by operation: what the selector chooses among.
public enum AlgorithmRegistry {
    public static let all: [any CollectiveAlgorithm] = [
        BinomialBroadcast(), ScatterAllgatherBroadcast(),
        BinomialReduce(), ReduceScatterGatherReduce(),
        RingAllreduce(), BinomialAllreduce(), RecursiveDoublingAllreduce(), RabenseifnerAllreduce(),
        Hierarchical2DAllreduce(),
        RingAllgather(), RecursiveDoublingAllgather(), BruckAllgather(),
        RingReduceScatter(),
        BinomialScatter(), BinomialGather(),
        PairwiseAllToAll(),
        DisseminationBarrier(), BinomialBarrier(),
    ]

    public static func algorithms(for operation: CollectiveOperation) -> [any CollectiveAlgorithm] {
        all.filter { $0.operation == operation }
    }

    public static func named(_ name: String, for operation: CollectiveOperation) -> (any CollectiveAlgorithm)? {
        algorithms(for: operation).first { $0.name == name }
    }

    static func name(code: UInt8) -> String {
        all.first { $0.code == code }?.description ?? "#\(code)"
    }
}

/// Helpers the algorithm files share.
extension Schedule {
    /// A schedule whose input and output are all of `slots` slots (allreduce-like).
    static func inPlace(slots: Int, _ steps: [Step]) -> Schedule {
        Schedule(slotCount: slots, inputSlots: 0..<slots, outputSlots: 0..<slots, steps: steps)
    }
}

/// `members` ordered by rank relative to `root`: entry v is rank (v + root) mod size.
func relativeMembers(size: Int, root: Int) -> [Int] { (0..<size).map { ($0 + root) % size } }
