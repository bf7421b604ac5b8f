import SkeinCore

/// The α-β-γ machine model: seconds per message, per byte moved, per byte reduced.
///
/// β has three uses. `beta` is paid for bytes a receiver reads to reduce; `keepBeta` for bytes it
/// only keeps or forwards, on every hop; `deliveryBeta` once for each byte of a rank's result
/// that another rank produced. On a network `beta` and `keepBeta` are the link's 1/bandwidth and
/// `deliveryBeta` is 0 (the hops already moved the bytes). On a transport that delivers by
/// reference (in-process ranks) a kept chunk is not copied on its way (`keepBeta` = 0), but
/// reading it into the result crosses cores once (`deliveryBeta` = `beta`).
public struct CostParameters: Sendable, Equatable, Codable, CustomStringConvertible {
    public var alpha: Double
    public var beta: Double
    public var gamma: Double
    public var keepBeta: Double
    public var deliveryBeta: Double
    /// Measured times of algorithms on these ranks (`Communicator.tune`), which the selector prefers to
    /// the formulas; the transport's own collectives (`NativeAlgorithm`) have no formula and only these.
    public var measured: [MeasuredProfile] = []
    /// Seconds per tree level for every rank to see that all ranks published on a shared-memory
    /// board (`SharedMemoryAlgorithm`), on transports whose ranks share memory.
    public var sharedAlpha: Double = 0.1e-6
    /// β and γ for calls whose data outgrow the host's last-level cache (`regime`), where ranks
    /// that share a host share its memory bandwidth and, with more ranks than cores, its cores; nil
    /// where no two ranks share a host's memory (a network's β holds at every size).
    public var memory: MemoryRegime?
    /// The cache's γ, kept by `regime` where it prices a call at memory's (nil: `gamma` is it).
    var cacheGamma: Double?

    /// Seconds per byte of a reduction whose result stays in the first-level cache while each
    /// operand streams through it once (the shared-address fold): the cache's γ at every size,
    /// since what such a fold moves through memory is priced as β.
    public var tileGamma: Double { cacheGamma ?? gamma }

    /// True for parameters `regime` priced past the cache, where even bytes that cross no core
    /// travel to memory and back.
    public var pastCache: Bool { cacheGamma != nil }

    /// Per-byte costs past the last-level cache, measured with every rank at work at once.
    public struct MemoryRegime: Sendable, Equatable, Codable {
        /// Seconds per byte one rank moves to another while every rank does the same.
        public var beta: Double
        /// Seconds per byte one rank reduces while every rank does the same.
        public var gamma: Double
        /// Calls whose working set (`CostParameters.workingSet`) is larger pay these costs: half the
        /// last-level cache (`limit(forCache:)`).
        public var workingSetLimit: Int

        /// Memory's β and γ, paid by calls whose working set passes `workingSetLimit` bytes.
        public init(beta: Double, gamma: Double, workingSetLimit: Int) {
            self.beta = beta
            self.gamma = gamma
            self.workingSetLimit = workingSetLimit
        }

        /// The working set past which a host with a last-level cache of `cacheBytes` runs at memory's
        /// pace: half the cache, since the rest holds other data (and on a shared host, other
        /// tenants'). At p = 8 a 2 MiB allreduce touches 32 MiB, as much as this VM's cache holds:
        /// the ring took 1.08–1.77 ms in two runs, where the cache's rates predicted 0.57 ms and
        /// memory's 1.60.
        public static func limit(forCache cacheBytes: Int) -> Int { cacheBytes / 2 }
    }

    public init(alpha: Double, beta: Double, gamma: Double, keepBeta: Double? = nil, deliveryBeta: Double = 0) {
        self.alpha = alpha
        self.beta = beta
        self.gamma = gamma
        self.keepBeta = keepBeta ?? beta
        self.deliveryBeta = deliveryBeta
    }

    /// Parameters for a transport that hands chunks over by reference.
    public static func byReference(alpha: Double, beta: Double, gamma: Double) -> CostParameters {
        CostParameters(alpha: alpha, beta: beta, gamma: gamma, keepBeta: 0, deliveryBeta: beta)
    }

    /// The parameters that price a call of `operation` over `bytes` on `ranks` ranks: these, or where
    /// its working set passes the memory regime's limit, that regime's β (for every use of β, kept at
    /// 0 where bytes go by reference) and γ. Priced at rates measured over cache-sized messages,
    /// four ranks' ring allgather of 64 MiB was to take 3.10 ms; it took 14.5: the copies went to
    /// memory, two ranks at a time per core, all through one memory bus.
    public func regime(_ operation: CollectiveOperation, ranks: Int, bytes: Int) -> CostParameters {
        guard let memory, Self.workingSet(operation, ranks: ranks, bytes: bytes) > memory.workingSetLimit else { return self }
        var priced = self
        let scale = beta > 0 ? memory.beta / beta : 1
        priced.beta = memory.beta
        priced.keepBeta *= scale
        priced.deliveryBeta *= scale
        priced.cacheGamma = gamma
        priced.gamma = memory.gamma
        return priced
    }

    /// Bytes a call touches on the host: every rank's input and output (`bytes` as
    /// `CollectiveAlgorithm` counts them).
    public static func workingSet(_ operation: CollectiveOperation, ranks p: Int, bytes n: Int) -> Int {
        switch operation {
        case .broadcast: n * p
        case .reduce, .reduceScatter, .allgather: n * p + n
        case .allreduce, .allToAll: 2 * n * p
        case .scatter, .gather: 2 * n
        case .barrier, .pointToPoint: 0
        }
    }

    /// Seconds to read `bytes` of the result that other ranks produced.
    func delivery(_ bytes: Double) -> Double { bytes * deliveryBeta }

    /// Defaults for in-process ranks on a typical core (hand-off ≈ 0.3 µs, 20 GB/s between cores,
    /// reduction ≈ 10 GB/s); `Communicator.calibrate()` replaces them with measurements.
    public static let inProcessDefault = CostParameters.byReference(alpha: 0.3e-6, beta: 1.0 / 20e9, gamma: 1.0 / 10e9)

    public var description: String {
        let bandwidth = beta > 0 ? String(format: "%.2f GB/s", 1 / beta / 1e9) : "∞ (by reference)"
        let kept = keepBeta == beta ? "" : (keepBeta > 0 ? String(format: " (kept bytes 1/%.2f GB/s)", 1 / keepBeta / 1e9) : " (kept bytes: by reference, free)")
        return String(format: "α = %.3f µs, β = 1/", alpha * 1e6) + bandwidth + kept
            + String(format: ", γ = 1/%.2f GB/s", 1 / gamma / 1e9)
            + (deliveryBeta > 0 ? String(format: ", shared-memory α = %.3f µs", sharedAlpha * 1e6) : "")
            + (memory.map {
                String(format: "; past %d MiB of data, every rank at once: β = 1/%.2f GB/s, γ = 1/%.2f GB/s", $0.workingSetLimit >> 20, 1 / $0.beta / 1e9, 1 / $0.gamma / 1e9)
            } ?? "")
    }
}

/// Critical paths of binomial trees, exact for any number of ranks (the ⌈log p⌉ formulas are exact
/// only for powers of two). A subtree of s ranks has children at offsets m = 1, 2, 4, … < s, the
/// child at m rooting a subtree of min(m, s − m) ranks.
enum TreeCost {
    /// Root sends to children far to near, each child forwards: `message(c)` is the cost of sending
    /// to a child whose subtree has c ranks.
    static func down(_ s: Int, message: (Int) -> Double) -> Double {
        guard s > 1 else { return 0 }
        var m = 1
        while m * 2 < s { m *= 2 }
        var sent = 0.0, finish = 0.0
        while m >= 1 {
            let c = min(m, s - m)
            sent += message(c)
            finish = max(finish, sent + down(c, message: message))
            m /= 2
        }
        return max(finish, sent)
    }

    /// Children near to far send their subtree's result up; each arrival costs `reduce` to combine.
    static func up(_ s: Int, message: (Int) -> Double, reduce: Double) -> Double {
        var t = 0.0
        var m = 1
        while m < s {
            let c = min(m, s - m)
            t = max(t, up(c, message: message, reduce: reduce) + message(c)) + reduce
            m *= 2
        }
        return t
    }

    static func ceilLog2(_ p: Int) -> Int {
        var rounds = 0, reach = 1
        while reach < p { reach *= 2; rounds += 1 }
        return rounds
    }

    static func floorPowerOfTwo(_ p: Int) -> Int {
        var power = 1
        while power * 2 <= p { power *= 2 }
        return power
    }
}

/// Measured times of one algorithm of one operation on a number of ranks, by message size;
/// predictions interpolate linearly in between (within one regime time is affine in the size, and
/// the measured sizes are close enough to stay in one) and extend the last segment beyond.
public struct MeasuredProfile: Sendable, Equatable, Codable {
    public var operation: UInt8
    /// The algorithm's `code` and `variant`.
    public var algorithm: UInt8
    public var variant: Int
    public var ranks: Int
    public var bytes: [Double]
    public var seconds: [Double]

    public init(_ algorithm: any CollectiveAlgorithm, ranks: Int, points: [(bytes: Int, seconds: Double)]) {
        let sorted = points.sorted { $0.bytes < $1.bytes }
        operation = algorithm.operation.rawValue
        self.algorithm = algorithm.code
        variant = algorithm.variant
        self.ranks = ranks
        bytes = sorted.map { Double($0.bytes) }
        seconds = sorted.map(\.seconds)
    }

    /// Whether this profile measured `algorithm` on `ranks` ranks.
    public func describes(_ algorithm: any CollectiveAlgorithm, ranks: Int) -> Bool {
        key == Key(operation: algorithm.operation.rawValue, algorithm: algorithm.code, variant: algorithm.variant, ranks: ranks)
    }

    /// What one profile measured: which algorithm of which operation, on how many ranks.
    struct Key: Equatable {
        var operation: UInt8, algorithm: UInt8, variant: Int, ranks: Int
    }
    var key: Key { Key(operation: operation, algorithm: algorithm, variant: variant, ranks: ranks) }

    public func seconds(bytes n: Int) -> Double {
        guard let first = bytes.first else { return .infinity }
        let x = Double(n)
        if x <= first || bytes.count == 1 { return seconds[0] }
        var upper = bytes.firstIndex { $0 >= x } ?? bytes.count - 1
        upper = max(upper, 1)
        let (x0, x1, y0, y1) = (bytes[upper - 1], bytes[upper], seconds[upper - 1], seconds[upper])
        return max(y0 + (y1 - y0) * (x - x0) / max(x1 - x0, 1), 0)
    }
}

extension CostParameters {
    /// The measured time of `algorithm` for `bytes` on `ranks` ranks, if it was measured there.
    public func measuredSeconds(of algorithm: any CollectiveAlgorithm, ranks: Int, bytes: Int) -> Double? {
        measured.first { $0.describes(algorithm, ranks: ranks) }?.seconds(bytes: bytes)
    }

    /// Adds `profiles`, replacing any earlier ones of the same algorithms and rank counts.
    public mutating func keep(_ profiles: [MeasuredProfile]) {
        measured.removeAll { old in profiles.contains { $0.key == old.key } }
        measured += profiles
    }
}
