import Foundation
import Synchronization

/// Counts the working memory a query's operators hold (join tables, aggregation states,
/// gathered inputs), not the tables it reads, against an optional limit; operators that can
/// spill (hash aggregation) look at the limit to decide to partition their input to disk.
public final class MemoryTracker: Sendable {
    public let limit: Int?
    private let state = Mutex<(current: Int, peak: Int)>((0, 0))

    public init(limit: Int?) { self.limit = limit }

    func reserve(_ bytes: Int) {
        state.withLock { s in
            s.current += bytes
            s.peak = max(s.peak, s.current)
        }
    }

    func release(_ bytes: Int) { state.withLock { $0.current -= bytes } }

    /// The most working memory held at once.
    public var peak: Int { state.withLock { $0.peak } }
}

extension Chunk {
    /// Bytes of the chunk's own buffers (string bytes live in shared heaps and are not counted).
    var workingBytes: Int {
        columns.reduce(0) { total, c in
            let width: Int
            switch c.type {
            case .bool: width = 1
            case .string: width = 12
            default: width = 8
            }
            return total + c.count * (width + (c.validity == nil ? 0 : 1))
        }
    }
}
