import SkeinCore

/// Dissemination barrier: in round k each rank signals rank + 2^k and waits for rank − 2^k;
/// ⌈log p⌉α for any p.
public struct DisseminationBarrier: BarrierAlgorithm {
    public init() {}
    public var operation: CollectiveOperation { .barrier }
    public var name: String { "dissemination" }
    public var code: UInt8 { 17 }

    public func schedule(rank: Int, size: Int, root: Int) -> Schedule {
        var b = ScheduleBuilder()
        var k = 1
        while k < size {
            b.send(to: (rank + k) % size, 0..<0)
            b.receive(from: (rank - k + size) % size, 0..<0)
            k *= 2
        }
        return .inPlace(slots: 0, b.steps)
    }

    public func predictedSeconds(ranks p: Int, bytes: Int, cost: CostParameters) -> Double {
        Double(TreeCost.ceilLog2(p)) * cost.alpha
    }
}
