import SkeinCore

// Each operation has two forms: one returns a new array; the other writes into a caller's buffer
// (`into:`, or `inout` for allreduce and broadcast), whose storage is reused when it already has the
// result's length, so a loop that repeats a large collective allocates and page-faults nothing (as
// DDP's in-place allreduce and benchmarks such as nccl-tests assume). Both forms share the helper
// that describes the call, and the entry points are inlinable so callers run them specialised.

extension Communicator {
    /// Runs `call` with `values` split into the schedule's input blocks; returns the output blocks
    /// (nil where the algorithm wrote the result into the call's destination). `explicit`: the plan
    /// of an algorithm passed with the call, made by the entry point, whose own protocol's optional
    /// existential, handed on here as an optional `any CollectiveAlgorithm`, was converted through
    /// outlined value-witness copies on every call (5% of an 8 B broadcast), nil or not.
    @inlinable
    func run<T: SkeinElement>(_ values: [T], _ call: Call, explicit: Plan?) async throws(SkeinError) -> [Chunk]? {
        try await perform(call, explicit: explicit) {
            Chunk.partition(values, into: $0, copyingSmall: call.inPlace)
        } copyInput: { target in
            values.withUnsafeBytes {
                if let from = $0.baseAddress, let to = target.baseAddress { MemoryCopy.copy(to: to, from: from, byteCount: min($0.count, target.count)) }
            }
        }
    }

    /// `output` resized to `count` elements and made unique, and its memory: an algorithm may write
    /// the result there directly, and `write` copies the output blocks there. The pointer outlives the closure, but `output`
    /// is the caller's `inout`, which nobody else may touch until the call returns, so its storage
    /// stays where it is.
    @inlinable
    func destination<T: SkeinElement>(_ output: inout [T], count: Int) -> UnsafeMutableRawBufferPointer {
        if output.count != count { output = [T](unsafeUninitializedCapacity: count) { _, initialized in initialized = count } }
        return output.withUnsafeMutableBytes { $0 }
    }

    /// Describes one call: its byte size for the model (per rank × size for gather-like operations),
    /// the reduction when `op` is given, and what is wrong with the arguments, if anything.
    @inlinable
    func describe<T: SkeinElement>(
        _ operation: CollectiveOperation, _: T.Type, count: Int, perRank: Bool = false, op: ReduceOp? = nil, root: Int? = nil,
        timeout: Duration?
    ) -> Call {
        let factor = perRank ? size : 1
        let (elements, o1) = count.multipliedReportingOverflow(by: factor)
        let (bytes, o2) = elements.multipliedReportingOverflow(by: MemoryLayout<T>.stride)
        let fits = !o1 && !o2 && count >= 0
        var call = Call(
            operation: operation, dataType: T.dataType, reduceOp: op ?? .sum, reducer: op.map { Reducer(T.self, $0) },
            root: root ?? 0, count: count, modelBytes: fits ? bytes : 0, timeout: timeout)
        if let root, !(0..<size).contains(root) {
            call.problem = .rootOutOfRange
        } else if !fits {
            call.problem = .sizeDoesNotFit(factor: factor, width: MemoryLayout<T>.stride)
        }
        return call
    }

    @inlinable
    func scatterCall<T: SkeinElement>(_ values: [T], totalCount: Int, root: Int, timeout: Duration?) -> Call {
        var call = describe(.scatter, T.self, count: totalCount, root: root, timeout: timeout)
        if call.problem == nil && rank == root && values.count != totalCount { call.problem = .scatterCount(passed: values.count) }
        return call
    }
}

extension Communicator {
    /// Every rank gets the root's `values`. Every rank passes an array of the same length
    /// (the contents of non-roots' arrays are ignored).
    @inlinable
    public func broadcast<T: SkeinElement>(
        _ values: [T], root: Int = 0, algorithm: (any BroadcastAlgorithm)? = nil, timeout: Duration? = nil
    ) async throws(SkeinError) -> [T] {
        let call = describe(.broadcast, T.self, count: values.count, root: root, timeout: timeout)
        return assemble(try await run(values, call, explicit: algorithm.map { plan(running: $0, for: call) }), as: T.self, inputCount: values.count)
    }

    /// `broadcast`, with the result written into `values` on every rank.
    @inlinable
    public func broadcast<T: SkeinElement>(
        _ values: inout [T], root: Int = 0, algorithm: (any BroadcastAlgorithm)? = nil, timeout: Duration? = nil
    ) async throws(SkeinError) {
        var call = describe(.broadcast, T.self, count: values.count, root: root, timeout: timeout)
        call.writes(into: destination(&values, count: values.count))
        let chunks = try await run(values, call, explicit: algorithm.map { plan(running: $0, for: call) })
        if rank != root { write(chunks, into: &values) }  // the root's values are the result already
    }

    /// The element-wise `op` of every rank's `values`, at the root (nil on the other ranks).
    @inlinable
    public func reduce<T: SkeinElement>(
        _ values: [T], op: ReduceOp = .sum, root: Int = 0, algorithm: (any ReduceAlgorithm)? = nil, timeout: Duration? = nil
    ) async throws(SkeinError) -> [T]? {
        let call = describe(.reduce, T.self, count: values.count, op: op, root: root, timeout: timeout)
        let chunks = try await run(values, call, explicit: algorithm.map { plan(running: $0, for: call) })
        return rank == root ? assemble(chunks, as: T.self, inputCount: values.count) : nil
    }

    /// `reduce`, with the result written into `output` at the root (left alone elsewhere; after an
    /// error its contents are unspecified).
    @inlinable
    public func reduce<T: SkeinElement>(
        _ values: [T], into output: inout [T], op: ReduceOp = .sum, root: Int = 0, algorithm: (any ReduceAlgorithm)? = nil,
        timeout: Duration? = nil
    ) async throws(SkeinError) {
        var call = describe(.reduce, T.self, count: values.count, op: op, root: root, timeout: timeout)
        call.writes(into: rank == root ? destination(&output, count: values.count) : nil)
        let chunks = try await run(values, call, explicit: algorithm.map { plan(running: $0, for: call) })
        if rank == root { write(chunks, into: &output, inputCount: values.count) }
    }

    /// The element-wise `op` of every rank's `values`, on every rank, bit-identical everywhere.
    @inlinable
    public func allreduce<T: SkeinElement>(
        _ values: [T], op: ReduceOp = .sum, algorithm: (any AllreduceAlgorithm)? = nil, timeout: Duration? = nil
    ) async throws(SkeinError) -> [T] {
        let call = describe(.allreduce, T.self, count: values.count, op: op, timeout: timeout)
        return assemble(try await run(values, call, explicit: algorithm.map { plan(running: $0, for: call) }), as: T.self, inputCount: values.count)
    }

    /// In-place allreduce: `values` becomes the element-wise `op` over every rank, bit-identical
    /// everywhere. Reuses the array's storage, so a training loop allocates nothing per step
    /// (if a peer still reads this rank's input when the result is written, copy-on-write keeps it safe).
    @inlinable
    public func allreduce<T: SkeinElement>(
        _ values: inout [T], op: ReduceOp = .sum, algorithm: (any AllreduceAlgorithm)? = nil, timeout: Duration? = nil
    ) async throws(SkeinError) {
        // No other reference to `values` may outlive `run`, or writing the result would copy it.
        var call = describe(.allreduce, T.self, count: values.count, op: op, timeout: timeout)
        call.writes(into: destination(&values, count: values.count))
        call.inPlace = true
        let chunks = try await run(values, call, explicit: algorithm.map { plan(running: $0, for: call) })
        write(chunks, into: &values)
    }

    /// Every rank's `values` (all of the same length), concatenated in rank order, on every rank.
    @inlinable
    public func allgather<T: SkeinElement>(
        _ values: [T], algorithm: (any AllgatherAlgorithm)? = nil, timeout: Duration? = nil
    ) async throws(SkeinError) -> [T] {
        let call = describe(.allgather, T.self, count: values.count, perRank: true, timeout: timeout)
        return assemble(try await run(values, call, explicit: algorithm.map { plan(running: $0, for: call) }), as: T.self, inputCount: values.count)
    }

    /// `allgather`, with the result written into `output`.
    @inlinable
    public func allgather<T: SkeinElement>(
        _ values: [T], into output: inout [T], algorithm: (any AllgatherAlgorithm)? = nil, timeout: Duration? = nil
    ) async throws(SkeinError) {
        var call = describe(.allgather, T.self, count: values.count, perRank: true, timeout: timeout)
        call.writes(into: destination(&output, count: values.count * size))
        write(try await run(values, call, explicit: algorithm.map { plan(running: $0, for: call) }), into: &output, inputCount: values.count)
    }

    /// This rank's block of the element-wise `op` of every rank's `values`. The n elements split
    /// into `size` contiguous blocks, the first n mod size one element longer; rank r gets block r.
    @inlinable
    public func reduceScatter<T: SkeinElement>(
        _ values: [T], op: ReduceOp = .sum, algorithm: (any ReduceScatterAlgorithm)? = nil, timeout: Duration? = nil
    ) async throws(SkeinError) -> [T] {
        let call = describe(.reduceScatter, T.self, count: values.count, op: op, timeout: timeout)
        return assemble(try await run(values, call, explicit: algorithm.map { plan(running: $0, for: call) }), as: T.self, inputCount: values.count)
    }

    /// `reduceScatter`, with this rank's block written into `output`.
    @inlinable
    public func reduceScatter<T: SkeinElement>(
        _ values: [T], into output: inout [T], op: ReduceOp = .sum, algorithm: (any ReduceScatterAlgorithm)? = nil,
        timeout: Duration? = nil
    ) async throws(SkeinError) {
        var call = describe(.reduceScatter, T.self, count: values.count, op: op, timeout: timeout)
        call.writes(into: destination(&output, count: BlockPartition(count: values.count, parts: size).range(rank).count))
        write(try await run(values, call, explicit: algorithm.map { plan(running: $0, for: call) }), into: &output, inputCount: values.count)
    }

    /// Rank r gets block r of the root's `values` (`totalCount` elements split as in `reduceScatter`).
    /// Every rank passes `totalCount`; only the root's `values` are read (others may pass `[]`).
    @inlinable
    public func scatter<T: SkeinElement>(
        _ values: [T], totalCount: Int, root: Int = 0, algorithm: (any ScatterAlgorithm)? = nil, timeout: Duration? = nil
    ) async throws(SkeinError) -> [T] {
        let call = scatterCall(values, totalCount: totalCount, root: root, timeout: timeout)
        return assemble(try await run(values, call, explicit: algorithm.map { plan(running: $0, for: call) }), as: T.self, inputCount: values.count)
    }

    /// `scatter`, with this rank's block written into `output`.
    @inlinable
    public func scatter<T: SkeinElement>(
        _ values: [T], totalCount: Int, into output: inout [T], root: Int = 0, algorithm: (any ScatterAlgorithm)? = nil,
        timeout: Duration? = nil
    ) async throws(SkeinError) {
        var call = scatterCall(values, totalCount: totalCount, root: root, timeout: timeout)
        // Sized only for a valid call: a `totalCount` that cannot exist must fail, not allocate.
        call.writes(into: call.problem == nil ? destination(&output, count: BlockPartition(count: totalCount, parts: size).range(rank).count) : nil)
        write(try await run(values, call, explicit: algorithm.map { plan(running: $0, for: call) }), into: &output, inputCount: values.count)
    }

    /// Every rank's `values` (all of the same length), concatenated in rank order, at the root (nil elsewhere).
    @inlinable
    public func gather<T: SkeinElement>(
        _ values: [T], root: Int = 0, algorithm: (any GatherAlgorithm)? = nil, timeout: Duration? = nil
    ) async throws(SkeinError) -> [T]? {
        let call = describe(.gather, T.self, count: values.count, perRank: true, root: root, timeout: timeout)
        let chunks = try await run(values, call, explicit: algorithm.map { plan(running: $0, for: call) })
        return rank == root ? assemble(chunks, as: T.self, inputCount: values.count) : nil
    }

    /// `gather`, with the result written into `output` at the root (left alone elsewhere).
    @inlinable
    public func gather<T: SkeinElement>(
        _ values: [T], into output: inout [T], root: Int = 0, algorithm: (any GatherAlgorithm)? = nil, timeout: Duration? = nil
    ) async throws(SkeinError) {
        var call = describe(.gather, T.self, count: values.count, perRank: true, root: root, timeout: timeout)
        call.writes(into: rank == root ? destination(&output, count: values.count * size) : nil)
        let chunks = try await run(values, call, explicit: algorithm.map { plan(running: $0, for: call) })
        if rank == root { write(chunks, into: &output, inputCount: values.count) }
    }

    /// Each rank splits its `values` into `size` blocks (as in `reduceScatter`) and sends block j to
    /// rank j; returns the blocks received, in sender order. All ranks pass the same count.
    @inlinable
    public func allToAll<T: SkeinElement>(
        _ values: [T], algorithm: (any AllToAllAlgorithm)? = nil, timeout: Duration? = nil
    ) async throws(SkeinError) -> [T] {
        let call = describe(.allToAll, T.self, count: values.count, timeout: timeout)
        return assemble(try await run(values, call, explicit: algorithm.map { plan(running: $0, for: call) }), as: T.self, inputCount: values.count)
    }

    /// `allToAll`, with the result written into `output`.
    @inlinable
    public func allToAll<T: SkeinElement>(
        _ values: [T], into output: inout [T], algorithm: (any AllToAllAlgorithm)? = nil, timeout: Duration? = nil
    ) async throws(SkeinError) {
        var call = describe(.allToAll, T.self, count: values.count, timeout: timeout)
        call.writes(into: destination(&output, count: BlockPartition(count: values.count, parts: size).range(rank).count * size))
        write(try await run(values, call, explicit: algorithm.map { plan(running: $0, for: call) }), into: &output, inputCount: values.count)
    }

    /// Returns once every rank has called it.
    @inlinable
    public func barrier(algorithm: (any BarrierAlgorithm)? = nil, timeout: Duration? = nil) async throws(SkeinError) {
        let call = Call(operation: .barrier, dataType: .int32, count: 0, modelBytes: 0, timeout: timeout)
        _ = try await perform(call, explicit: algorithm.map { plan(running: $0, for: call) }) { _ in [] } copyInput: { _ in }
    }
}
