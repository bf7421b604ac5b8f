import SkeinCore

/// MST gather: subtrees send their collected blocks up a binomial tree; log p·α + (p−1)/p·nβ.
public struct BinomialGather: GatherAlgorithm {
    public init() {}
    public var operation: CollectiveOperation { .gather }
    public var name: String { "mst" }
    public var code: UInt8 { 6 }

    public func schedule(rank: Int, size: Int, root: Int) -> Schedule {
        var b = ScheduleBuilder()
        b.binomialGather(members: Array(0..<size), me: rank, root: root, slots: 0..<size)
        let v = (rank - root + size) % size
        return Schedule(
            slotCount: size, inputSlots: v..<(v + 1), outputSlots: rank == root ? 0..<size : 0..<0,
            outputRotation: size - root, steps: b.steps)
    }

    public func predictedSeconds(ranks p: Int, bytes: Int, cost: CostParameters) -> Double {
        let block = Double(bytes) / Double(p)
        return TreeCost.up(p, message: { c in cost.alpha + Double(c) * block * cost.keepBeta }, reduce: 0)
            + cost.delivery(Double(p - 1) * block)
    }
}
