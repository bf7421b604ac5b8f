import SkeinCore

/// The α-β-γ parameters of a simulated network, plus slow and failing ranks.
public struct NetworkModel: Sendable, Equatable {
    /// Seconds of latency per message.
    public var alpha: Double
    /// Seconds per byte on a link (1 / bandwidth).
    public var beta: Double
    /// Seconds per byte of reduction arithmetic.
    public var gamma: Double
    /// Rank → factor ≥ 1 by which that rank's own work (per-message overhead α and reduction γ) is slower.
    public var slowdown: [Int: Double]
    /// Rank → virtual time (seconds) at which the rank dies: from then on it sends nothing.
    public var failures: [Int: Double]

    public init(alpha: Double, beta: Double, gamma: Double, slowdown: [Int: Double] = [:], failures: [Int: Double] = [:]) {
        self.alpha = alpha
        self.beta = beta
        self.gamma = gamma
        self.slowdown = slowdown
        self.failures = failures
    }
}

/// A network on a virtual clock, driven by whoever holds it (single-threaded; wrap it to share).
///
/// Each rank has its own clock. Sending n bytes occupies the sender for α + nβ (one port per rank,
/// the assumption behind the classic cost formulas), and the message arrives when that ends.
/// Taking a message advances the receiver's clock to the arrival time if it was ahead.
/// Reducing n bytes costs nγ. Nothing sleeps: time is arithmetic.
public struct VirtualNetwork: Sendable {
    public let size: Int
    public let model: NetworkModel
    public private(set) var clocks: [Double]
    public private(set) var failed: [Bool]
    public private(set) var messagesSent = 0
    public private(set) var bytesSent = 0
    private let slow: [Double]
    private let failAt: [Double]
    private var queues: [Int: MatchingQueue<Pending>] = [:]

    struct Pending {
        let tag: Tag
        let arrival: Double
        let message: Message
    }

    public init(size: Int, model: NetworkModel) {
        self.size = size
        self.model = model
        clocks = Array(repeating: 0, count: size)
        failed = Array(repeating: false, count: size)
        slow = (0..<size).map { model.slowdown[$0] ?? 1 }
        failAt = (0..<size).map { model.failures[$0] ?? .infinity }
    }

    /// True once `rank` has reached its failure time (and from then on).
    public mutating func checkFailure(_ rank: Int) -> Bool {
        if !failed[rank] && clocks[rank] >= failAt[rank] { failed[rank] = true }
        return failed[rank]
    }

    /// Sends from `source`; returns false (and sends nothing) if `source` has failed.
    public mutating func send(_ message: Message, from source: Int, to destination: Int, tag: Tag) -> Bool {
        if checkFailure(source) { return false }
        let bytes = message.byteCount
        clocks[source] += model.alpha * slow[source] + Double(bytes) * model.beta
        messagesSent += 1
        bytesSent += bytes
        queues[destination &* size &+ source, default: MatchingQueue()].append(Pending(tag: tag, arrival: clocks[source], message: message))
        return true
    }

    /// The arrival time of the next message from `source` with `tag`, if one was sent.
    public func arrival(at destination: Int, from source: Int, tag: Tag) -> Double? {
        queues[destination &* size &+ source]?.first { $0.tag == tag }?.arrival
    }

    /// Removes the next message from `source` with `tag` and advances `destination`'s clock to its arrival.
    public mutating func take(at destination: Int, from source: Int, tag: Tag) -> Message? {
        guard let slot = queues.index(forKey: destination &* size &+ source),
            let pending = queues.values[slot].take(where: { $0.tag == tag })
        else { return nil }
        if queues.values[slot].isEmpty { queues.remove(at: slot) }
        if pending.arrival > clocks[destination] { clocks[destination] = pending.arrival }
        return pending.message
    }

    /// A message from `source` of a later call in `tag`'s context, if one waits (a skipped call).
    public func laterCall(at destination: Int, from source: Int, than tag: Tag) -> Tag? {
        queues[destination &* size &+ source]?.first { $0.tag.context == tag.context && $0.tag.sequence > tag.sequence }?.tag
    }

    /// Charges `rank` for reducing `byteCount` bytes.
    public mutating func reduce(at rank: Int, byteCount: Int) {
        clocks[rank] += Double(byteCount) * model.gamma * slow[rank]
    }

    /// Moves `rank`'s clock forward to `time` (a timeout firing at its deadline).
    public mutating func advance(_ rank: Int, to time: Double) {
        if time > clocks[rank] { clocks[rank] = time }
    }

    /// The latest clock over all ranks: when the last rank finished.
    public var makespan: Double { clocks.max() ?? 0 }
}
