import SkeinCore

/// Picks, for a call, the algorithm with the lowest predicted time.
public enum CostModel {
    static let byOperation: [[any CollectiveAlgorithm]] = CollectiveOperation.allCases.map {
        AlgorithmRegistry.algorithms(for: $0)
    }

    /// The algorithms that can run `operation`: Skein's message-passing ones, then the shared-memory
    /// one when the ranks share memory (and the shared-address one, for reductions, when they share
    /// an address space), then the transport's own when it has one (listed last, so on a tie
    /// Skein's own algorithm runs).
    public static func candidates(
        _ operation: CollectiveOperation, native: Bool, sharedMemory: Bool, sharedAddressSpace: Bool = false
    ) -> [any CollectiveAlgorithm] {
        var candidates = byOperation[Int(operation.rawValue)]
        if sharedMemory { candidates.append(SharedMemoryAlgorithm(operation)) }
        if sharedAddressSpace, SharedAddressAlgorithm.operations.contains(operation) { candidates.append(SharedAddressAlgorithm(operation)) }
        if native { candidates.append(NativeAlgorithm(operation)) }
        return candidates
    }

    /// The cheapest algorithm (the first listed on a tie, so every rank picks the same one), with the
    /// transport's own among the candidates when `native`, and the shared-memory one when `sharedMemory`.
    /// An algorithm's cost is its measured time where `Communicator.tune` timed it on this many
    /// ranks, else its formula's.
    ///
    /// With more ranks than cores, rooted operations went by messages while the board made every
    /// rank wait for every other on every call. Since a rooted call's root (broadcast, scatter) or
    /// other ranks (reduce, gather) publish and go on, the board serves there too: measured on 2
    /// cores with 3, 4 and 8 in-process ranks, 64 B and 4 KiB, it was faster than the tree at 23 of
    /// 24 points (by 1.3–2.8×; the exception, an 8-rank scatter of 4 KiB, 1.5× slower). The cores
    /// no longer enter the choice.
    ///
    /// The shared-address reductions are weighed whatever the cores: they serve only from
    /// `SharedAddressAlgorithm.minimumBytes` up, where the work, not the waits, takes the time.
    public static func select(
        _ operation: CollectiveOperation, ranks: Int, bytes: Int, cost: CostParameters, native: Bool = false, sharedMemory: Bool = false,
        sharedAddressSpace: Bool = false
    ) -> (algorithm: any CollectiveAlgorithm, seconds: Double) {
        let candidates = candidates(operation, native: native, sharedMemory: sharedMemory, sharedAddressSpace: sharedAddressSpace)
        var best = candidates[0]
        var bestSeconds = expectedSeconds(best, ranks: ranks, bytes: bytes, cost: cost)
        for candidate in candidates.dropFirst() {
            let seconds = expectedSeconds(candidate, ranks: ranks, bytes: bytes, cost: cost)
            if seconds < bestSeconds * (1 - 1e-9) {
                best = candidate
                bestSeconds = seconds
            }
        }
        return (best, bestSeconds)
    }

    /// What the selector expects `algorithm` to take: its measured time where it was tuned on this
    /// many ranks, else its formula's; infinite where it cannot run the call (a board's slots too small).
    public static func expectedSeconds(_ algorithm: any CollectiveAlgorithm, ranks: Int, bytes: Int, cost: CostParameters) -> Double {
        let formula = algorithm.modelSeconds(ranks: ranks, bytes: bytes, cost: cost)
        guard formula.isFinite else { return formula }
        return cost.measuredSeconds(of: algorithm, ranks: ranks, bytes: bytes) ?? formula
    }
}
