import SkeinCore

/// MST broadcast: a binomial tree from the root; ⌈log p⌉(α + nβ). Best for small messages.
public struct BinomialBroadcast: BroadcastAlgorithm {
    public init() {}
    public var operation: CollectiveOperation { .broadcast }
    public var name: String { "mst" }
    public var code: UInt8 { 1 }

    public func schedule(rank: Int, size: Int, root: Int) -> Schedule {
        var b = ScheduleBuilder()
        b.binomialBroadcast(members: Array(0..<size), me: rank, root: root, slots: 0..<1)
        return Schedule(slotCount: 1, inputSlots: rank == root ? 0..<1 : 0..<0, outputSlots: 0..<1, steps: b.steps)
    }

    public func predictedSeconds(ranks: Int, bytes: Int, cost: CostParameters) -> Double {
        TreeCost.down(ranks) { _ in cost.alpha + Double(bytes) * cost.keepBeta } + cost.delivery(Double(bytes))
    }
}
