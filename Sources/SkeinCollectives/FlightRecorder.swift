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

/// A fixed-size ring of the last calls' records, cheap enough to leave on: atomic words that the
/// calling rank writes without a lock (a lock per call cost a locked instruction, which waited for
/// the slot lines the call had just written to reach the peer's core), and that `last` reads as a
/// seqlock, skipping an entry a call is rewriting. Names of algorithms are kept as numbers
/// (`CallNames`, under the communicator's lock).
final class FlightRecorder: @unchecked Sendable {
    // @unchecked: the words are atomics, allocated once and freed with the object.
    /// Per entry: the sequence number of the call that began it (0 while it is written, stored last
    /// with release), the operation and byte count, start, algorithm's name number, prediction
    /// (its bits), end, earliest entry, latest entry, the two ranks, and the sequence number of
    /// the call whose end and skew these are (stored last with release).
    private let words: UnsafeMutablePointer<Atomic<UInt64>>
    let capacity: Int
    /// Entries begun: the next one goes to `begun % capacity`. Written by the calling rank alone.
    private let begun = Atomic<Int>(0)
    private static let stride = 10

    init(capacity: Int) {
        self.capacity = capacity
        words = .allocate(capacity: capacity * Self.stride)
        for index in 0..<(capacity * Self.stride) { (words + index).initialize(to: Atomic(0)) }
    }

    deinit {
        words.deinitialize(count: capacity * Self.stride)
        words.deallocate()
    }

    /// Notes what call `sequence` knows as it begins; returns its entry, for `finish`. Only the
    /// rank's calls write, one at a time.
    @inline(__always)
    func begin(sequence: UInt64, operation: CollectiveOperation, bytes: Int, start: UInt64, name: Int, predicted: Double) -> Int {
        let count = begun.load(ordering: .relaxed)
        let index = count % capacity
        begun.store(count &+ 1, ordering: .relaxed)
        let entry = words + index * Self.stride
        entry[0].store(0, ordering: .relaxed)
        atomicMemoryFence(ordering: .releasing)
        entry[1].store(UInt64(operation.rawValue) << 56 | UInt64(truncatingIfNeeded: bytes) & (1 << 56 - 1), ordering: .relaxed)
        entry[2].store(start, ordering: .relaxed)
        entry[3].store(UInt64(truncatingIfNeeded: name), ordering: .relaxed)
        entry[4].store(predicted.bitPattern, ordering: .relaxed)
        entry[0].store(sequence, ordering: .releasing)
        return index
    }

    /// Notes the end and skew of call `sequence`, begun in entry `index`.
    @inline(__always)
    func finish(_ index: Int, sequence: UInt64, end: UInt64, skew: ArrivalSkew) {
        let entry = words + index * Self.stride
        entry[5].store(end, ordering: .relaxed)
        entry[6].store(skew.earliestEntry, ordering: .relaxed)
        entry[7].store(skew.latestEntry, ordering: .relaxed)
        entry[8].store(UInt64(UInt32(bitPattern: skew.earliestRank)) << 32 | UInt64(UInt32(bitPattern: skew.latestRank)), ordering: .relaxed)
        entry[9].store(sequence, ordering: .releasing)
    }

    /// The last `count` records, oldest first (a call still running shows its start as its end);
    /// `name` gives an algorithm's name by number, `error` a failed call's error by sequence number.
    func last(_ count: Int, name: (Int) -> String, error: (UInt64) -> SkeinError?) -> [CollectiveRecord] {
        let total = begun.load(ordering: .relaxed)
        let first = max(0, total - min(count, capacity))
        return (first..<total).compactMap { read($0 % capacity, name: name, error: error) }
    }

    /// Entry `index`, unless a call rewrites it meanwhile.
    private func read(_ index: Int, name: (Int) -> String, error: (UInt64) -> SkeinError?) -> CollectiveRecord? {
        let entry = words + index * Self.stride
        let sequence = entry[0].load(ordering: .acquiring)
        guard sequence != 0 else { return nil }
        let shape = entry[1].load(ordering: .relaxed)
        let start = entry[2].load(ordering: .relaxed)
        let number = Int(truncatingIfNeeded: entry[3].load(ordering: .relaxed))
        let predicted = Double(bitPattern: entry[4].load(ordering: .relaxed))
        let ended = entry[9].load(ordering: .acquiring) == sequence
        let end = entry[5].load(ordering: .relaxed)
        var skew = ArrivalSkew(rank: 0, entry: start)
        if ended {
            skew.earliestEntry = entry[6].load(ordering: .relaxed)
            skew.latestEntry = entry[7].load(ordering: .relaxed)
            let ranks = entry[8].load(ordering: .relaxed)
            skew.earliestRank = Int32(bitPattern: UInt32(truncatingIfNeeded: ranks >> 32))
            skew.latestRank = Int32(bitPattern: UInt32(truncatingIfNeeded: ranks))
        }
        atomicMemoryFence(ordering: .acquiring)
        guard entry[0].load(ordering: .relaxed) == sequence, let operation = CollectiveOperation(rawValue: UInt8(truncatingIfNeeded: shape >> 56))
        else { return nil }
        var record = CollectiveRecord(
            sequence: sequence, operation: operation, algorithm: name(number), bytes: Int(truncatingIfNeeded: shape & (1 << 56 - 1)),
            start: start, end: ended ? end : start, predictedSeconds: predicted, skew: skew)
        record.error = error(sequence)
        return record
    }
}

/// Algorithms' names by number, for the flight recorder, whose words hold no strings.
struct CallNames {
    private(set) var names: [String] = []
    private var numbers: [String: Int] = [:]

    /// The number of `name`, given one the first time.
    mutating func number(_ name: String) -> Int {
        if let known = numbers[name] { return known }
        names.append(name)
        numbers[name] = names.count - 1
        return names.count - 1
    }

    func name(_ number: Int) -> String { names.indices.contains(number) ? names[number] : "?" }
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
