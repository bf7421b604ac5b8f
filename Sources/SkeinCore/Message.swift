/// The collective operations Skein offers; point-to-point is used by calibration.
public enum CollectiveOperation: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case broadcast, reduce, allreduce, allgather, reduceScatter, scatter, gather, allToAll, barrier, pointToPoint

    public var description: String {
        switch self {
        case .broadcast: "broadcast"
        case .reduce: "reduce"
        case .allreduce: "allreduce"
        case .allgather: "allgather"
        case .reduceScatter: "reduce-scatter"
        case .scatter: "scatter"
        case .gather: "gather"
        case .allToAll: "all-to-all"
        case .barrier: "barrier"
        case .pointToPoint: "point-to-point"
        }
    }
}

/// Names one message stream: a communicator's context and the sequence number of a call in it.
/// Transports match messages by (source, tag) and keep each stream in order.
public struct Tag: Hashable, Sendable, CustomStringConvertible {
    public var context: UInt32
    public var sequence: UInt64

    public init(context: UInt32, sequence: UInt64) {
        self.context = context
        self.sequence = sequence
    }

    public var description: String { "\(context)#\(sequence)" }
}

/// What a collective call was, as every rank must agree on it. Travels in each message so that a
/// disagreement is caught on the first message instead of turning into garbage or a hang.
public struct CallSignature: Sendable, Equatable {
    public var operation: CollectiveOperation
    public var algorithm: UInt8
    public var dataType: DataType
    public var reduceOp: ReduceOp
    public var root: Int32
    /// The element count the caller passed (per-rank contribution for gather-like operations).
    public var count: Int64
    public var sequence: UInt64

    public init(
        operation: CollectiveOperation, algorithm: UInt8, dataType: DataType, reduceOp: ReduceOp,
        root: Int32, count: Int64, sequence: UInt64
    ) {
        self.operation = operation
        self.algorithm = algorithm
        self.dataType = dataType
        self.reduceOp = reduceOp
        self.root = root
        self.count = count
        self.sequence = sequence
    }
}

/// When ranks entered a call, as far as the sender knows: propagated with the data, so after an
/// allreduce every rank knows which rank came last and by how much, at the cost of a few bytes.
public struct ArrivalSkew: Sendable, Equatable {
    // Declared widest first: it travels in every message, and this order needs no padding.
    public var earliestEntry: UInt64
    public var latestEntry: UInt64
    public var earliestRank: Int32
    public var latestRank: Int32

    public init(rank: Int, entry: UInt64) {
        earliestEntry = entry
        latestEntry = entry
        earliestRank = Int32(rank)
        latestRank = Int32(rank)
    }

    public mutating func merge(_ other: ArrivalSkew) {
        if other.earliestEntry < earliestEntry || (other.earliestEntry == earliestEntry && other.earliestRank < earliestRank) {
            earliestEntry = other.earliestEntry
            earliestRank = other.earliestRank
        }
        if other.latestEntry > latestEntry || (other.latestEntry == latestEntry && other.latestRank < latestRank) {
            latestEntry = other.latestEntry
            latestRank = other.latestRank
        }
    }

    /// Nanoseconds between the first and the last known arrival.
    public var spread: UInt64 { latestEntry - earliestEntry }
}

/// A message's chunks. Most messages carry one, kept inline: an array per message was an
/// allocation and a shared reference count on every send.
public struct ChunkList: RandomAccessCollection, ExpressibleByArrayLiteral, Sendable {
    private enum Storage: Sendable {
        case none
        case one(Chunk)
        case many([Chunk])
    }
    private let storage: Storage

    public init(_ chunks: [Chunk]) {
        switch chunks.count {
        case 0: storage = .none
        case 1: storage = .one(chunks[0])
        default: storage = .many(chunks)
        }
    }

    public init(single chunk: Chunk) { storage = .one(chunk) }
    public init(arrayLiteral elements: Chunk...) { self.init(elements) }

    public var startIndex: Int { 0 }
    public var endIndex: Int {
        switch storage {
        case .none: 0
        case .one: 1
        case .many(let chunks): chunks.count
        }
    }

    public subscript(index: Int) -> Chunk {
        switch storage {
        case .none: preconditionFailure("index \(index) of an empty chunk list")
        case .one(let chunk):
            precondition(index == 0, "index \(index) of a one-chunk list")
            return chunk
        case .many(let chunks): return chunks[index]
        }
    }
}

/// One message: the call it belongs to, the sender's skew knowledge, and the payload by reference.
public struct Message: Sendable {
    public var signature: CallSignature
    public var skew: ArrivalSkew
    public var chunks: ChunkList

    public init(signature: CallSignature, skew: ArrivalSkew, chunks: [Chunk]) {
        self.init(signature: signature, skew: skew, chunks: ChunkList(chunks))
    }

    public init(signature: CallSignature, skew: ArrivalSkew, chunks: ChunkList) {
        self.signature = signature
        self.skew = skew
        self.chunks = chunks
    }

    public var byteCount: Int {
        var total = 0
        for chunk in chunks { total += chunk.byteCount }
        return total
    }
}
