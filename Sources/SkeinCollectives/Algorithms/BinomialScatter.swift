import SkeinCore

/// MST scatter: the root halves its buffer down a binomial tree; log p·α + (p−1)/p·nβ.
public struct BinomialScatter: ScatterAlgorithm {
    public init() {}
    public var operation: CollectiveOperation { .scatter }
    public var name: String { "mst" }
    public var code: UInt8 { 5 }

    public func schedule(rank: Int, size: Int, root: Int) -> Schedule {
        var b = ScheduleBuilder()
        b.binomialScatter(members: Array(0..<size), me: rank, root: root, slots: 0..<size)
        let v = (rank - root + size) % size
        return Schedule(
            slotCount: size, inputSlots: rank == root ? 0..<size : 0..<0, inputRotation: size - root,
            outputSlots: v..<(v + 1), steps: b.steps)
    }

    public func predictedSeconds(ranks p: Int, bytes: Int, cost: CostParameters) -> Double {
        let block = Double(bytes) / Double(p)
        return TreeCost.down(p) { c in cost.alpha + Double(c) * block * cost.keepBeta } + cost.delivery(p > 1 ? block : 0)
    }
}
