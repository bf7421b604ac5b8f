import SkeinCore

/// Ring allreduce: ring reduce-scatter then ring allgather; 2(p−1)α + (p−1)/p·n(2β + γ).
/// Bandwidth-optimal; best for large messages.
public struct RingAllreduce: AllreduceAlgorithm {
    public init() {}
    public var operation: CollectiveOperation { .allreduce }
    public var name: String { "ring" }
    public var code: UInt8 { 11 }

    public func schedule(rank: Int, size: Int, root: Int) -> Schedule {
        var b = ScheduleBuilder()
        b.ringReduceScatter(members: Array(0..<size), me: rank, slots: 0..<size)
        b.ringAllgather(members: Array(0..<size), me: rank, slots: 0..<size)
        return .inPlace(slots: size, b.steps)
    }

    public func predictedSeconds(ranks p: Int, bytes: Int, cost: CostParameters) -> Double {
        Self.seconds(ranks: p, bytes: Double(bytes), cost: cost)
    }

    static func seconds(ranks p: Int, bytes n: Double, cost: CostParameters) -> Double {
        let block = n / Double(p)
        return Double(p - 1) * (2 * cost.alpha + block * (cost.beta + cost.keepBeta + cost.gamma)) + cost.delivery(Double(p - 1) * block)
    }
}
