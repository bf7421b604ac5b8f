import SkeinCore

/// Ring (bucket) reduce-scatter: p − 1 steps, each reducing one block on its way round;
/// (p−1)α + (p−1)/p·n(β + γ).
public struct RingReduceScatter: ReduceScatterAlgorithm {
    public init() {}
    public var operation: CollectiveOperation { .reduceScatter }
    public var name: String { "ring" }
    public var code: UInt8 { 10 }

    public func schedule(rank: Int, size: Int, root: Int) -> Schedule {
        var b = ScheduleBuilder()
        b.ringReduceScatter(members: Array(0..<size), me: rank, slots: 0..<size)
        return Schedule(slotCount: size, inputSlots: 0..<size, outputSlots: rank..<(rank + 1), steps: b.steps)
    }

    public func predictedSeconds(ranks p: Int, bytes: Int, cost: CostParameters) -> Double {
        Double(p - 1) * (cost.alpha + Double(bytes) / Double(p) * (cost.beta + cost.gamma))
    }
}
