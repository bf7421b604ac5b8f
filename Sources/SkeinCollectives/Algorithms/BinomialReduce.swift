import SkeinCore

/// MST reduce: a binomial tree into the root; ⌈log p⌉(α + nβ + nγ). Best for small messages.
public struct BinomialReduce: ReduceAlgorithm {
    public init() {}
    public var operation: CollectiveOperation { .reduce }
    public var name: String { "mst" }
    public var code: UInt8 { 3 }

    public func schedule(rank: Int, size: Int, root: Int) -> Schedule {
        var b = ScheduleBuilder()
        b.binomialReduce(members: Array(0..<size), me: rank, root: root, slots: 0..<1)
        return Schedule(slotCount: 1, inputSlots: 0..<1, outputSlots: rank == root ? 0..<1 : 0..<0, steps: b.steps)
    }

    public func predictedSeconds(ranks: Int, bytes: Int, cost: CostParameters) -> Double {
        let n = Double(bytes)
        return TreeCost.up(ranks, message: { _ in cost.alpha + n * cost.beta }, reduce: n * cost.gamma)
    }
}
