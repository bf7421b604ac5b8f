import SkeinCore

/// Bruck's allgather: ⌈log p⌉ rounds for any p, each doubling the blocks held, kept in an order
/// rotated by rank and put right at the end; ⌈log p⌉α + (p−1)/p·nβ.
public struct BruckAllgather: AllgatherAlgorithm {
    public init() {}
    public var operation: CollectiveOperation { .allgather }
    public var name: String { "bruck" }
    public var code: UInt8 { 9 }

    public func schedule(rank: Int, size: Int, root: Int) -> Schedule {
        Self.bruck(rank: rank, size: size)
    }

    static func bruck(rank: Int, size: Int) -> Schedule {
        var b = ScheduleBuilder()
        var k = 1
        while k < size {
            let count = min(k, size - k)
            b.send(to: (rank - k + size) % size, 0..<count)
            b.receive(from: (rank + k) % size, k..<(k + count))
            k *= 2
        }
        return Schedule(
            slotCount: size, inputSlots: 0..<1, outputSlots: 0..<size, outputRotation: (size - rank) % size, steps: b.steps)
    }

    public func predictedSeconds(ranks p: Int, bytes: Int, cost: CostParameters) -> Double {
        Self.bruckSeconds(ranks: p, bytes: bytes, cost: cost)
    }

    static func bruckSeconds(ranks p: Int, bytes: Int, cost: CostParameters) -> Double {
        let block = Double(bytes) / Double(p)
        var total = 0.0, k = 1
        while k < p {
            total += cost.alpha + Double(min(k, p - k)) * block * cost.keepBeta
            k *= 2
        }
        return total + cost.delivery(Double(p - 1) * block)
    }
}
