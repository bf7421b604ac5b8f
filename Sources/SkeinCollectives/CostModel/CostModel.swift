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
    /// transport's own among the candidates when `native`, and the shared-memory one when `sharedMemory`
    /// (for broadcast, reduce, scatter and gather only when `ranksShareCores` is false, see below).
    /// An algorithm's cost is its measured time where `Communicator.tune` timed it on this many
    /// ranks, else its formula's.
    ///
    /// With more ranks than cores, rooted operations go by messages: the board makes every rank wait
    /// for every other on every call, which then costs each rank a hand-off of a core per call, while
    /// a tree's root sends and runs on, and its peers take several calls' messages per turn on a core.
    /// Measured on 2 cores with 3, 4 and 8 in-process ranks, operations of 8 B to 4 KiB, the tree was
    /// faster at 40–42 of 48 points in three runs (by up to 3.1×); the α-β model, which prices one
    /// call alone, cannot see it. Nor can tuning be trusted to: which of the two wins there depends on
    /// how the scheduler happens to interleave the ranks, and letting tuned profiles decide picked the
    /// board at 6–7 points per run where the tree was 1.35–2.3× faster when the benchmark came to it.
    ///
    /// The shared-address reductions are weighed whatever the cores: they serve only from
    /// `SharedAddressAlgorithm.minimumBytes` up, where the work, not the waits, takes the time.
    public static func select(
        _ operation: CollectiveOperation, ranks: Int, bytes: Int, cost: CostParameters, native: Bool = false, sharedMemory: Bool = false,
        ranksShareCores: Bool = false, sharedAddressSpace: Bool = false
    ) -> (algorithm: any CollectiveAlgorithm, seconds: Double) {
        let rooted = switch operation {
        case .broadcast, .reduce, .scatter, .gather: true
        default: false
        }
        let candidates = candidates(
            operation, native: native, sharedMemory: sharedMemory && !(rooted && ranksShareCores), sharedAddressSpace: sharedAddressSpace)
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
        let formula = algorithm.predictedSeconds(ranks: ranks, bytes: bytes, cost: cost)
        guard formula.isFinite else { return formula }
        return cost.measuredSeconds(of: algorithm, ranks: ranks, bytes: bytes) ?? formula
    }
}
