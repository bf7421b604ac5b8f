/// One collective call as a library with its own collectives (MPI) receives it: Skein's meaning of
/// `count` per operation (see `CollectiveAlgorithm`), with the rank's whole input in one chunk.
public struct NativeCall: Sendable {
    public var operation: CollectiveOperation
    public var dataType: DataType
    public var reduceOp: ReduceOp
    public var root: Int
    /// Elements as the caller passed them: the vector (broadcast, reduce, allreduce, reduce-scatter),
    /// each rank's part (allgather, gather), the root's whole buffer (scatter), each rank's whole
    /// send buffer (all-to-all), 0 for barrier.
    public var count: Int
    /// Make the library's blocking call on the calling thread (`MPI_Allreduce`, not `MPI_Iallreduce`):
    /// what a C program would call, for benchmarks; it holds the thread until done and has no deadline.
    public var blocking: Bool

    public init(operation: CollectiveOperation, dataType: DataType, reduceOp: ReduceOp, root: Int, count: Int, blocking: Bool = false) {
        self.blocking = blocking
        self.operation = operation
        self.dataType = dataType
        self.reduceOp = reduceOp
        self.root = root
        self.count = count
    }

    /// Elements of this rank's result among `size` ranks (0 where the operation leaves it nothing).
    public func outputCount(rank: Int, size: Int) -> Int {
        switch operation {
        case .broadcast, .allreduce: count
        case .reduce: rank == root ? count : 0
        case .allgather: count * size
        case .gather: rank == root ? count * size : 0
        case .reduceScatter, .scatter: BlockPartition(count: count, parts: size).range(rank).count
        case .allToAll: BlockPartition(count: count, parts: size).range(rank).count * size
        case .barrier, .pointToPoint: 0
        }
    }
}

/// A transport whose library has its own implementation of the collectives (MPI's `MPI_Allreduce`
/// and kin), offered to the communicator as one more algorithm so that the cost model, the user and
/// the benchmark can set Skein's algorithms beside it.
public protocol NativeCollectives: Transport {
    /// True when the library can run `operation` on elements of `dataType`.
    func supportsNative(_ operation: CollectiveOperation, dataType: DataType) -> Bool

    /// Runs the library's own operation on this rank's whole input; returns this rank's whole output
    /// (`call.outputCount` elements). Throws `.timeout` or `.peerExited` as `receive` does.
    func runNative(_ call: NativeCall, input: Chunk, deadline: UInt64) async throws(SkeinError) -> Chunk

    /// Makes `calls` blocking calls of the library's own operation back to back on one pair of
    /// buffers, with nothing of Skein's between them, as the loop of a C benchmark (OSU, IMB) does:
    /// the bare cost of the library's call, for benchmarks. Holds the thread; has no deadline.
    func runNativeLoop(_ call: NativeCall, input: Chunk, calls: Int) throws(SkeinError)
}

extension NativeCollectives {
    public func runNativeLoop(_ call: NativeCall, input: Chunk, calls: Int) throws(SkeinError) {
        throw SkeinError(.unavailable, rank: rank, "this transport's collectives run only through runNative, not in a bare loop")
    }
}
