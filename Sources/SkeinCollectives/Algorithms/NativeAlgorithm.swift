import SkeinCore

/// The transport library's own implementation of an operation (MPI's `MPI_Allreduce` and kin), as one
/// more algorithm: pinned by a user, or chosen by the selector once `calibrateNative()` has measured
/// it (it has no α-β-γ formula; its prediction is the measured time, interpolated between sizes).
public struct NativeAlgorithm: BroadcastAlgorithm, ReduceAlgorithm, AllreduceAlgorithm, AllgatherAlgorithm, ReduceScatterAlgorithm,
    ScatterAlgorithm, GatherAlgorithm, AllToAllAlgorithm, BarrierAlgorithm
{
    public let operation: CollectiveOperation
    /// Call the blocking form (`MPI_Allreduce`) on the calling thread instead of polling the
    /// non-blocking one: what a C program calls, for benchmarks. It holds a thread of Swift's pool
    /// and ignores deadlines, so the selector never picks it.
    public let blocking: Bool

    public init(_ operation: CollectiveOperation, blocking: Bool = false) {
        self.operation = operation
        self.blocking = blocking
    }

    public var name: String { blocking ? "native-blocking" : "native" }
    public var variant: Int { blocking ? 1 : 0 }
    public static let code: UInt8 = 19
    public var code: UInt8 { Self.code }

    /// One input slot holding the whole input, one output slot; the transport does the rest.
    public func schedule(rank: Int, size: Int, root: Int) -> Schedule {
        .inPlace(slots: 1, [])
    }

    public func predictedSeconds(ranks: Int, bytes: Int, cost: CostParameters) -> Double {
        guard !blocking else { return .infinity }
        return cost.measuredSeconds(of: self, ranks: ranks, bytes: bytes) ?? .infinity
    }
}
