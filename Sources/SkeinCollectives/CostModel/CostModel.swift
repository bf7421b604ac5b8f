import SkeinCore

/// Picks, for a call, the algorithm with the lowest predicted time.
public enum CostModel {
    static let byOperation: [[any CollectiveAlgorithm]] = CollectiveOperation.allCases.map {
        AlgorithmRegistry.algorithms(for: $0)
    }

    /// Every algorithm for `operation` with its predicted seconds, in registry order.
    public static func predictions(
        _ operation: CollectiveOperation, ranks: Int, bytes: Int, cost: CostParameters
    ) -> [(algorithm: any CollectiveAlgorithm, seconds: Double)] {
        byOperation[Int(operation.rawValue)].map { ($0, $0.predictedSeconds(ranks: ranks, bytes: bytes, cost: cost)) }
    }

    /// The cheapest algorithm, the transport's own among the candidates when `native` (the first listed on a tie, so every rank picks the same one).
    public static func select(
        _ operation: CollectiveOperation, ranks: Int, bytes: Int, cost: CostParameters, native: Bool = false
    ) -> (algorithm: any CollectiveAlgorithm, seconds: Double) {
        // The native implementation is listed last, so on a tie Skein's own algorithm runs.
        let candidates = native ? byOperation[Int(operation.rawValue)] + [NativeAlgorithm(operation)] : byOperation[Int(operation.rawValue)]
        var best = candidates[0]
        var bestSeconds = best.predictedSeconds(ranks: ranks, bytes: bytes, cost: cost)
        for candidate in candidates.dropFirst() {
            let seconds = candidate.predictedSeconds(ranks: ranks, bytes: bytes, cost: cost)
            if seconds < bestSeconds * (1 - 1e-9) {
                best = candidate
                bestSeconds = seconds
            }
        }
        return (best, bestSeconds)
    }
}
