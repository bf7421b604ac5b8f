import SkeinCore
import Synchronization

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

/// A fixed-size ring of the last calls' records: cheap enough to leave on. A call writes its record
/// when it begins (under the communicator's lock, which it takes then anyway) and its end and skew
/// when it ends, into `RecordTails` without a lock: a second lock per call cost more than a small
/// collective's own work.
struct FlightRecorder {
    /// What a call knows when it begins: plain values and its algorithm's name (a literal, whose
    /// copy counts no references), so that keeping it copies no errors and touches no reference
    /// count: holding the plan itself took two atomic operations per call (4% of an 8 B call).
    private struct Entry {
        var sequence: UInt64
        var operation: CollectiveOperation
        var bytes: Int
        var start: UInt64
        var algorithm: String
        var predicted: Double
    }

    private var entries: [Entry] = []
    /// Errors of failed calls, by entry (rare, so kept apart).
    private var errors: [Int: SkeinError] = [:]
    private var next = 0
    let capacity: Int
    let tails: RecordTails

    init(capacity: Int) {
        self.capacity = capacity
        tails = RecordTails(capacity: capacity)
        entries.reserveCapacity(capacity)
    }

    /// Keeps what a call knows as it begins; returns its entry, for `RecordTails.finish`.
    mutating func begin(sequence: UInt64, operation: CollectiveOperation, bytes: Int, start: UInt64, algorithm: String, predicted: Double) -> Int {
        let index = next
        let entry = Entry(sequence: sequence, operation: operation, bytes: bytes, start: start, algorithm: algorithm, predicted: predicted)
        if entries.count < capacity {
            entries.append(entry)
        } else {
            entries[index] = entry
            if !errors.isEmpty { errors[index] = nil }
        }
        next = next + 1 == capacity ? 0 : next + 1
        return index
    }

    /// Marks entry `index` failed with `error` (its end and skew go to the tails as for any call).
    mutating func fail(_ index: Int, error: SkeinError) {
        errors[index] = error
    }

    /// The last `count` records, oldest first (a call still running shows its start as its end).
    func last(_ count: Int) -> [CollectiveRecord] {
        let order = entries.count < capacity ? Array(entries.indices) : Array(next..<capacity) + Array(0..<next)
        return order.suffix(count).map { index in
            let entry = entries[index]
            var record = CollectiveRecord(
                sequence: entry.sequence, operation: entry.operation, algorithm: entry.algorithm, bytes: entry.bytes,
                start: entry.start, end: entry.start, predictedSeconds: entry.predicted, skew: ArrivalSkew(rank: 0, entry: entry.start))
            if let (end, skew) = tails.read(index, sequence: entry.sequence) {
                record.end = end
                record.skew = skew
            }
            record.error = errors[index]
            return record
        }
    }
}

/// The end and arrival skew of each flight-recorder entry, as atomics that the finishing call
/// writes without a lock and `FlightRecorder.last` reads under it.
final class RecordTails: @unchecked Sendable {
    // @unchecked: the words are atomics, allocated once and freed with the object.
    /// Per entry: end, earliest entry, latest entry, the two ranks, and last the sequence number of
    /// the call these belong to (stored with release, after the others).
    private let words: UnsafeMutablePointer<Atomic<UInt64>>
    private let capacity: Int
    private static let stride = 5

    init(capacity: Int) {
        self.capacity = capacity
        words = .allocate(capacity: capacity * Self.stride)
        for index in 0..<(capacity * Self.stride) { (words + index).initialize(to: Atomic(0)) }
    }

    deinit {
        words.deinitialize(count: capacity * Self.stride)
        words.deallocate()
    }

    @inline(__always)
    func finish(_ index: Int, sequence: UInt64, end: UInt64, skew: ArrivalSkew) {
        let entry = words + index * Self.stride
        entry[0].store(end, ordering: .relaxed)
        entry[1].store(skew.earliestEntry, ordering: .relaxed)
        entry[2].store(skew.latestEntry, ordering: .relaxed)
        entry[3].store(UInt64(UInt32(bitPattern: skew.earliestRank)) << 32 | UInt64(UInt32(bitPattern: skew.latestRank)), ordering: .relaxed)
        entry[4].store(sequence, ordering: .releasing)
    }

    /// The end and skew of entry `index`, once the call numbered `sequence` has finished.
    func read(_ index: Int, sequence: UInt64) -> (end: UInt64, skew: ArrivalSkew)? {
        let entry = words + index * Self.stride
        guard entry[4].load(ordering: .acquiring) == sequence else { return nil }
        var skew = ArrivalSkew(rank: 0, entry: 0)
        skew.earliestEntry = entry[1].load(ordering: .relaxed)
        skew.latestEntry = entry[2].load(ordering: .relaxed)
        let ranks = entry[3].load(ordering: .relaxed)
        skew.earliestRank = Int32(bitPattern: UInt32(truncatingIfNeeded: ranks >> 32))
        skew.latestRank = Int32(bitPattern: UInt32(truncatingIfNeeded: ranks))
        return (entry[0].load(ordering: .relaxed), skew)
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
