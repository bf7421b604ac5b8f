import SkeinCore

/// Reduce as ring reduce-scatter + binomial gather (Rabenseifner's reduce):
/// (p − 1 + log p)α + (p−1)/p·n(2β + γ). Best for large messages: the reduction work is split.
public struct ReduceScatterGatherReduce: ReduceAlgorithm {
    public init() {}
    public var operation: CollectiveOperation { .reduce }
    public var name: String { "ring-gather" }
    public var code: UInt8 { 4 }

    public func schedule(rank: Int, size: Int, root: Int) -> Schedule {
        var b = ScheduleBuilder()
        b.ringReduceScatter(members: relativeMembers(size: size, root: root), me: (rank - root + size) % size, slots: 0..<size)
        b.binomialGather(members: Array(0..<size), me: rank, root: root, slots: 0..<size)
        return Schedule(
            slotCount: size, inputSlots: 0..<size, inputRotation: size - root,
            outputSlots: rank == root ? 0..<size : 0..<0, outputRotation: size - root, steps: b.steps)
    }

    public func predictedSeconds(ranks p: Int, bytes: Int, cost: CostParameters) -> Double {
        let block = Double(bytes) / Double(p)
        let reduceScatter = Double(p - 1) * (cost.alpha + block * (cost.beta + cost.gamma))
        return reduceScatter + TreeCost.up(p, message: { c in cost.alpha + Double(c) * block * cost.keepBeta }, reduce: 0)
            + cost.delivery(Double(p - 1) * block)
    }
}
