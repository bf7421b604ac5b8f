import SkeinCore

/// Allreduce as MST reduce to rank 0 + MST broadcast: 2⌈log p⌉α + 2⌈log p⌉nβ + ⌈log p⌉nγ.
public struct BinomialAllreduce: AllreduceAlgorithm {
    public init() {}
    public var operation: CollectiveOperation { .allreduce }
    public var name: String { "mst" }
    public var code: UInt8 { 12 }

    public func schedule(rank: Int, size: Int, root: Int) -> Schedule {
        var b = ScheduleBuilder()
        b.binomialReduce(members: Array(0..<size), me: rank, root: 0, slots: 0..<1)
        b.binomialBroadcast(members: Array(0..<size), me: rank, root: 0, slots: 0..<1)
        return .inPlace(slots: 1, b.steps)
    }

    public func predictedSeconds(ranks p: Int, bytes: Int, cost: CostParameters) -> Double {
        let n = Double(bytes)
        return BinomialReduce().predictedSeconds(ranks: p, bytes: bytes, cost: cost)
            + TreeCost.down(p) { _ in cost.alpha + n * cost.keepBeta } + cost.delivery(p > 1 ? n : 0)
    }
}
