import SkeinCore

extension Communicator {
    /// Every rank gets the root's `values`. Every rank passes an array of the same length
    /// (the contents of non-roots' arrays are ignored).
    @inlinable
    public func broadcast<T: SkeinElement>(
        _ values: [T], root: Int = 0, algorithm: (any BroadcastAlgorithm)? = nil, timeout: Duration? = nil
    ) async throws(SkeinError) -> [T] {
        let (bytes, overflow) = byteCount(values.count, width: MemoryLayout<T>.stride)
        let call = Call(operation: .broadcast, pinned: algorithm, dataType: T.dataType, root: root, count: values.count, modelBytes: bytes, timeout: timeout)
        let chunks = try await perform(call, validation: checkRoot(root) ?? overflow) { Chunk.partition(values, into: $0.inputSlots.count) }
        return assemble(chunks, as: T.self)
    }

    /// The element-wise `op` of every rank's `values`, at the root (nil on the other ranks).
    @inlinable
    public func reduce<T: SkeinElement>(
        _ values: [T], op: ReduceOp = .sum, root: Int = 0, algorithm: (any ReduceAlgorithm)? = nil, timeout: Duration? = nil
    ) async throws(SkeinError) -> [T]? {
        let (bytes, overflow) = byteCount(values.count, width: MemoryLayout<T>.stride)
        let call = Call(
            operation: .reduce, pinned: algorithm, dataType: T.dataType, reduceOp: op, reducer: Reducer(T.self, op), root: root,
            count: values.count, modelBytes: bytes, timeout: timeout)
        let chunks = try await perform(call, validation: checkRoot(root) ?? overflow) { Chunk.partition(values, into: $0.inputSlots.count) }
        return rank == root ? assemble(chunks, as: T.self) : nil
    }

    /// The element-wise `op` of every rank's `values`, on every rank, bit-identical everywhere.
    @inlinable
    public func allreduce<T: SkeinElement>(
        _ values: [T], op: ReduceOp = .sum, algorithm: (any AllreduceAlgorithm)? = nil, timeout: Duration? = nil
    ) async throws(SkeinError) -> [T] {
        let (bytes, overflow) = byteCount(values.count, width: MemoryLayout<T>.stride)
        let call = Call(
            operation: .allreduce, pinned: algorithm, dataType: T.dataType, reduceOp: op, reducer: Reducer(T.self, op),
            count: values.count, modelBytes: bytes, timeout: timeout)
        let chunks = try await perform(call, validation: overflow) { Chunk.partition(values, into: $0.inputSlots.count) }
        return assemble(chunks, as: T.self)
    }

    /// In-place allreduce: `values` becomes the element-wise `op` over every rank, bit-identical
    /// everywhere. Reuses the array's storage, so a training loop allocates nothing per step
    /// (if a peer still reads this rank's input when the result is written, copy-on-write keeps it safe).
    @inlinable
    public func allreduce<T: SkeinElement>(
        _ values: inout [T], op: ReduceOp = .sum, algorithm: (any AllreduceAlgorithm)? = nil, timeout: Duration? = nil
    ) async throws(SkeinError) {
        let (bytes, overflow) = byteCount(values.count, width: MemoryLayout<T>.stride)
        let call = Call(
            operation: .allreduce, pinned: algorithm, dataType: T.dataType, reduceOp: op, reducer: Reducer(T.self, op),
            count: values.count, modelBytes: bytes, timeout: timeout)
        // No other reference to `values` may outlive `perform`, or writing the result would copy it.
        let chunks = try await perform(call, validation: overflow) { Chunk.partition(values, into: $0.inputSlots.count) }
        write(chunks, into: &values)
    }

    /// Every rank's `values` (all of the same length), concatenated in rank order, on every rank.
    @inlinable
    public func allgather<T: SkeinElement>(
        _ values: [T], algorithm: (any AllgatherAlgorithm)? = nil, timeout: Duration? = nil
    ) async throws(SkeinError) -> [T] {
        let (bytes, overflow) = byteCount(values.count, times: size, width: MemoryLayout<T>.stride)
        let call = Call(operation: .allgather, pinned: algorithm, dataType: T.dataType, count: values.count, modelBytes: bytes, timeout: timeout)
        let chunks = try await perform(call, validation: overflow) { Chunk.partition(values, into: $0.inputSlots.count) }
        return assemble(chunks, as: T.self)
    }

    /// This rank's block of the element-wise `op` of every rank's `values`. The n elements split
    /// into `size` contiguous blocks, the first n mod size one element longer; rank r gets block r.
    @inlinable
    public func reduceScatter<T: SkeinElement>(
        _ values: [T], op: ReduceOp = .sum, algorithm: (any ReduceScatterAlgorithm)? = nil, timeout: Duration? = nil
    ) async throws(SkeinError) -> [T] {
        let (bytes, overflow) = byteCount(values.count, width: MemoryLayout<T>.stride)
        let call = Call(
            operation: .reduceScatter, pinned: algorithm, dataType: T.dataType, reduceOp: op, reducer: Reducer(T.self, op),
            count: values.count, modelBytes: bytes, timeout: timeout)
        let chunks = try await perform(call, validation: overflow) { Chunk.partition(values, into: $0.inputSlots.count) }
        return assemble(chunks, as: T.self)
    }

    /// Rank r gets block r of the root's `values` (`totalCount` elements split as in `reduceScatter`).
    /// Every rank passes `totalCount`; only the root's `values` are read (others may pass `[]`).
    @inlinable
    public func scatter<T: SkeinElement>(
        _ values: [T], totalCount: Int, root: Int = 0, algorithm: (any ScatterAlgorithm)? = nil, timeout: Duration? = nil
    ) async throws(SkeinError) -> [T] {
        let (bytes, overflow) = byteCount(totalCount, width: MemoryLayout<T>.stride)
        var validation = checkRoot(root) ?? overflow
        if rank == root && values.count != totalCount {
            validation = invalid("scatter root passed \(values.count) elements but totalCount \(totalCount)")
        }
        let call = Call(operation: .scatter, pinned: algorithm, dataType: T.dataType, root: root, count: totalCount, modelBytes: bytes, timeout: timeout)
        let chunks = try await perform(call, validation: validation) { Chunk.partition(values, into: $0.inputSlots.count) }
        return assemble(chunks, as: T.self)
    }

    /// Every rank's `values` (all of the same length), concatenated in rank order, at the root (nil elsewhere).
    @inlinable
    public func gather<T: SkeinElement>(
        _ values: [T], root: Int = 0, algorithm: (any GatherAlgorithm)? = nil, timeout: Duration? = nil
    ) async throws(SkeinError) -> [T]? {
        let (bytes, overflow) = byteCount(values.count, times: size, width: MemoryLayout<T>.stride)
        let call = Call(operation: .gather, pinned: algorithm, dataType: T.dataType, root: root, count: values.count, modelBytes: bytes, timeout: timeout)
        let chunks = try await perform(call, validation: checkRoot(root) ?? overflow) { Chunk.partition(values, into: $0.inputSlots.count) }
        return rank == root ? assemble(chunks, as: T.self) : nil
    }

    /// Each rank splits its `values` into `size` blocks (as in `reduceScatter`) and sends block j to
    /// rank j; returns the blocks received, in sender order. All ranks pass the same count.
    @inlinable
    public func allToAll<T: SkeinElement>(
        _ values: [T], algorithm: (any AllToAllAlgorithm)? = nil, timeout: Duration? = nil
    ) async throws(SkeinError) -> [T] {
        let (bytes, overflow) = byteCount(values.count, width: MemoryLayout<T>.stride)
        let call = Call(operation: .allToAll, pinned: algorithm, dataType: T.dataType, count: values.count, modelBytes: bytes, timeout: timeout)
        let chunks = try await perform(call, validation: overflow) { Chunk.partition(values, into: $0.inputSlots.count) }
        return assemble(chunks, as: T.self)
    }

    /// Returns once every rank has called it.
    public func barrier(algorithm: (any BarrierAlgorithm)? = nil, timeout: Duration? = nil) async throws(SkeinError) {
        let call = Call(operation: .barrier, pinned: algorithm, dataType: .int32, count: 0, modelBytes: 0, timeout: timeout)
        _ = try await perform(call, validation: nil) { _ in [] }
    }
}

// MARK: results into a caller's buffer
//
// The forms above return a new array per call. These write into `output`, whose storage is reused
// when it already has the result's length: a loop that repeats a large collective then allocates
// (and page-faults) nothing, as benchmarks such as nccl-tests and OSU assume.
extension Communicator {
    /// `broadcast`, with the result written into `values` on every rank.
    @inlinable
    public func broadcast<T: SkeinElement>(
        _ values: inout [T], root: Int = 0, algorithm: (any BroadcastAlgorithm)? = nil, timeout: Duration? = nil
    ) async throws(SkeinError) {
        let (bytes, overflow) = byteCount(values.count, width: MemoryLayout<T>.stride)
        let call = Call(operation: .broadcast, pinned: algorithm, dataType: T.dataType, root: root, count: values.count, modelBytes: bytes, timeout: timeout)
        let chunks = try await perform(call, validation: checkRoot(root) ?? overflow) { Chunk.partition(values, into: $0.inputSlots.count) }
        if rank != root { write(chunks, into: &values) }  // the root's values are the result already
    }

    /// `allgather`, with the result written into `output`.
    @inlinable
    public func allgather<T: SkeinElement>(
        _ values: [T], into output: inout [T], algorithm: (any AllgatherAlgorithm)? = nil, timeout: Duration? = nil
    ) async throws(SkeinError) {
        let (bytes, overflow) = byteCount(values.count, times: size, width: MemoryLayout<T>.stride)
        let call = Call(operation: .allgather, pinned: algorithm, dataType: T.dataType, count: values.count, modelBytes: bytes, timeout: timeout)
        let chunks = try await perform(call, validation: overflow) { Chunk.partition(values, into: $0.inputSlots.count) }
        write(chunks, into: &output)
    }

    /// `reduceScatter`, with this rank's block written into `output`.
    @inlinable
    public func reduceScatter<T: SkeinElement>(
        _ values: [T], into output: inout [T], op: ReduceOp = .sum, algorithm: (any ReduceScatterAlgorithm)? = nil,
        timeout: Duration? = nil
    ) async throws(SkeinError) {
        let (bytes, overflow) = byteCount(values.count, width: MemoryLayout<T>.stride)
        let call = Call(
            operation: .reduceScatter, pinned: algorithm, dataType: T.dataType, reduceOp: op, reducer: Reducer(T.self, op),
            count: values.count, modelBytes: bytes, timeout: timeout)
        let chunks = try await perform(call, validation: overflow) { Chunk.partition(values, into: $0.inputSlots.count) }
        write(chunks, into: &output)
    }

    /// `scatter`, with this rank's block written into `output`.
    @inlinable
    public func scatter<T: SkeinElement>(
        _ values: [T], totalCount: Int, into output: inout [T], root: Int = 0, algorithm: (any ScatterAlgorithm)? = nil,
        timeout: Duration? = nil
    ) async throws(SkeinError) {
        let (bytes, overflow) = byteCount(totalCount, width: MemoryLayout<T>.stride)
        var validation = checkRoot(root) ?? overflow
        if rank == root && values.count != totalCount {
            validation = invalid("scatter root passed \(values.count) elements but totalCount \(totalCount)")
        }
        let call = Call(operation: .scatter, pinned: algorithm, dataType: T.dataType, root: root, count: totalCount, modelBytes: bytes, timeout: timeout)
        let chunks = try await perform(call, validation: validation) { Chunk.partition(values, into: $0.inputSlots.count) }
        write(chunks, into: &output)
    }

    /// `gather`, with the result written into `output` at the root (left alone elsewhere).
    @inlinable
    public func gather<T: SkeinElement>(
        _ values: [T], into output: inout [T], root: Int = 0, algorithm: (any GatherAlgorithm)? = nil, timeout: Duration? = nil
    ) async throws(SkeinError) {
        let (bytes, overflow) = byteCount(values.count, times: size, width: MemoryLayout<T>.stride)
        let call = Call(operation: .gather, pinned: algorithm, dataType: T.dataType, root: root, count: values.count, modelBytes: bytes, timeout: timeout)
        let chunks = try await perform(call, validation: checkRoot(root) ?? overflow) { Chunk.partition(values, into: $0.inputSlots.count) }
        if rank == root { write(chunks, into: &output) }
    }

    /// `allToAll`, with the result written into `output`.
    @inlinable
    public func allToAll<T: SkeinElement>(
        _ values: [T], into output: inout [T], algorithm: (any AllToAllAlgorithm)? = nil, timeout: Duration? = nil
    ) async throws(SkeinError) {
        let (bytes, overflow) = byteCount(values.count, width: MemoryLayout<T>.stride)
        let call = Call(operation: .allToAll, pinned: algorithm, dataType: T.dataType, count: values.count, modelBytes: bytes, timeout: timeout)
        let chunks = try await perform(call, validation: overflow) { Chunk.partition(values, into: $0.inputSlots.count) }
        write(chunks, into: &output)
    }

    /// `reduce`, with the result written into `output` at the root (left alone elsewhere).
    @inlinable
    public func reduce<T: SkeinElement>(
        _ values: [T], into output: inout [T], op: ReduceOp = .sum, root: Int = 0, algorithm: (any ReduceAlgorithm)? = nil,
        timeout: Duration? = nil
    ) async throws(SkeinError) {
        let (bytes, overflow) = byteCount(values.count, width: MemoryLayout<T>.stride)
        let call = Call(
            operation: .reduce, pinned: algorithm, dataType: T.dataType, reduceOp: op, reducer: Reducer(T.self, op), root: root,
            count: values.count, modelBytes: bytes, timeout: timeout)
        let chunks = try await perform(call, validation: checkRoot(root) ?? overflow) { Chunk.partition(values, into: $0.inputSlots.count) }
        if rank == root { write(chunks, into: &output) }
    }
}
