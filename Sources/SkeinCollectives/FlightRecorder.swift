import SkeinCore

/// What one collective call did, kept so a user can look back when something goes wrong.
public struct CollectiveRecord: Sendable, CustomStringConvertible {
    public var sequence: UInt64
    public var operation: CollectiveOperation
    public var algorithm: String
    public var bytes: Int
    /// Entry and exit on the transport's clock, in nanoseconds.
    public var start: UInt64
    public var end: UInt64
    public var predictedSeconds: Double
    /// Which rank arrived first and last, and when, as far as this rank learned from its messages
    /// (everything, after an allreduce, allgather or barrier).
    public var skew: ArrivalSkew
    public var error: SkeinError?

    public var seconds: Double { Double(end &- start) / 1e9 }

    public var description: String {
        let outcome = error.map { "FAILED \($0)" } ?? "ok"
        let skewText = "last rank \(skew.latestRank) by \(formatSeconds(Double(skew.spread) / 1e9))"
        return "#\(sequence) \(operation)/\(algorithm) \(bytes) B \(formatSeconds(seconds)) "
            + "(predicted \(formatSeconds(predictedSeconds))), \(skewText): \(outcome)"
    }
}

/// A fixed-size ring of the last calls' records: cheap enough to leave on.
struct FlightRecorder {
    private var records: [CollectiveRecord] = []
    private var next = 0
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        records.reserveCapacity(capacity)
    }

    mutating func append(_ record: CollectiveRecord) {
        if records.count < capacity {
            records.append(record)
        } else {
            records[next] = record
        }
        next = (next + 1) % capacity
    }

    /// The last `count` records, oldest first.
    func last(_ count: Int) -> [CollectiveRecord] {
        let ordered = records.count < capacity ? records : Array(records[next...] + records[..<next])
        return Array(ordered.suffix(count))
    }
}

/// "1.23 µs", "4.56 ms": a duration in the unit that reads best.
public func formatSeconds(_ seconds: Double) -> String {
    switch abs(seconds) {
    case 0: return "0 s"
    case ..<1e-6: return String(format: "%.0f ns", seconds * 1e9)
    case ..<1e-3: return String(format: "%.2f µs", seconds * 1e6)
    case ..<1: return String(format: "%.2f ms", seconds * 1e3)
    default: return String(format: "%.3f s", seconds)
    }
}
