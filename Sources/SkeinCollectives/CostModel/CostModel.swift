import SkeinCore

/// Picks, for a call, the algorithm with the lowest predicted time.
public enum CostModel {
    static let byOperation: [[any CollectiveAlgorithm]] = CollectiveOperation.allCases.map {
        AlgorithmRegistry.algorithms(for: $0)
    }

    /// The algorithms that can run `operation`: Skein's message-passing ones, then the shared-memory
    /// one when the ranks share memory, then the transport's own when it has one (listed last, so on a
    /// tie Skein's own algorithm runs).
    public static func candidates(_ operation: CollectiveOperation, native: Bool, sharedMemory: Bool) -> [any CollectiveAlgorithm] {
        var candidates = byOperation[Int(operation.rawValue)]
        if sharedMemory { candidates.append(SharedMemoryAlgorithm(operation)) }
        if native { candidates.append(NativeAlgorithm(operation)) }
        return candidates
    }

    /// The cheapest algorithm (the first listed on a tie, so every rank picks the same one), with the
    /// transport's own among the candidates when `native`, and the shared-memory one when `sharedMemory`.
    public static func select(
        _ operation: CollectiveOperation, ranks: Int, bytes: Int, cost: CostParameters, native: Bool = false, sharedMemory: Bool = false
    ) -> (algorithm: any CollectiveAlgorithm, seconds: Double) {
        let candidates = candidates(operation, native: native, sharedMemory: sharedMemory)
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
