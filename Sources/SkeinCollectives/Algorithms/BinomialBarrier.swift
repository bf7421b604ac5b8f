import SkeinCore

/// Tree barrier: empty messages up a binomial tree to rank 0 and back down; about 2⌈log p⌉α.
public struct BinomialBarrier: BarrierAlgorithm {
    public init() {}
    public var operation: CollectiveOperation { .barrier }
    public var name: String { "tree" }
    public var code: UInt8 { 18 }

    public func schedule(rank: Int, size: Int, root: Int) -> Schedule {
        var b = ScheduleBuilder()
        b.binomialGather(members: Array(0..<size), me: rank, root: 0, slots: 0..<0)
        b.binomialBroadcast(members: Array(0..<size), me: rank, root: 0, slots: 0..<0)
        return .inPlace(slots: 0, b.steps)
    }

    public func predictedSeconds(ranks p: Int, bytes: Int, cost: CostParameters) -> Double {
        TreeCost.up(p, message: { _ in cost.alpha }, reduce: 0) + TreeCost.down(p) { _ in cost.alpha }
    }
}
