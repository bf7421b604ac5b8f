import SkeinCore

/// Rabenseifner's allreduce: recursive-halving reduce-scatter + recursive-doubling allgather;
/// 2 log p·α + 2(p−1)/p·nβ + (p−1)/p·nγ (plus a fold step each way when p is not a power of two).
public struct RabenseifnerAllreduce: AllreduceAlgorithm {
    public init() {}
    public var operation: CollectiveOperation { .allreduce }
    public var name: String { "rabenseifner" }
    public var code: UInt8 { 14 }

    public func schedule(rank: Int, size: Int, root: Int) -> Schedule {
        let power = TreeCost.floorPowerOfTwo(size)
        var b = ScheduleBuilder()
        b.rabenseifnerAllreduce(members: Array(0..<size), me: rank, slots: 0..<power)
        return .inPlace(slots: power, b.steps)
    }

    public func predictedSeconds(ranks p: Int, bytes: Int, cost: CostParameters) -> Double {
        let n = Double(bytes), power = TreeCost.floorPowerOfTwo(p)
        var total = p > power ? 2 * cost.alpha + n * (cost.beta + cost.keepBeta + cost.gamma) : 0
        var half = n
        var mask = 1
        while mask < power {
            half /= 2
            total += 2 * cost.alpha + half * (cost.beta + cost.keepBeta + cost.gamma)
            mask *= 2
        }
        return total + cost.delivery(p > power ? n : n * Double(p - 1) / Double(p))
    }
}
