#if MPI
import CMPI
import SkeinCore

/// MPI's own collectives (`MPI_Iallreduce`, `MPI_Ibcast`, …), offered beside Skein's algorithms.
/// Each runs non-blocking on a communicator of its own and is polled like a receive, so it keeps the
/// deadline and dead-peer checks of every Skein call.
extension MPITransport {
    public func supportsNative(_ operation: CollectiveOperation, dataType: DataType) -> Bool {
        operation != .pointToPoint && Self.mpiType(dataType) != nil
    }

    static func mpiType(_ type: DataType) -> MPI_Datatype? {
        switch type {
        case .float32: skein_mpi_float()
        case .float64: skein_mpi_double()
        case .int32: skein_mpi_int32()
        case .int64: skein_mpi_int64()
        case .float16: nil  // MPI 3.1 has no half-precision type (MPICH's MPIX_C_FLOAT16 is an extension)
        }
    }

    static func mpiOp(_ op: ReduceOp) -> MPI_Op? {
        switch op {
        case .sum: skein_mpi_sum()
        case .product: skein_mpi_prod()
        case .min: skein_mpi_min()
        case .max: skein_mpi_max()
        }
    }

    public func runNative(_ call: NativeCall, input: Chunk, deadline: UInt64) async throws(SkeinError) -> Chunk {
        let (request, type, op) = try nativeRequest(call, input: input)
        let output = Chunk(storage: request.output, offset: 0, byteCount: request.output.byteCount, isWritable: true)
        if call.blocking {
            try postBlocking(call, request: request, type: type, op: op, times: 1)
            return output
        }
        let rc = engine.withLock { _ in
            post(call, request: request, type: type, op: op, width: call.dataType.byteWidth)
        }
        guard rc == MPI_SUCCESS else {
            throw SkeinError(.internalError, rank: rank, "native MPI \(call.operation) failed to start: \(Self.errorString(rc))")
        }
        do {
            _ = try await wait(on: nil, context: nil, deadline: deadline, what: "native MPI \(call.operation)") { _ -> Bool? in
                var done: Int32 = 0
                let rc = MPI_Test(&request.request, &done, skein_mpi_status_ignore())
                return rc != MPI_SUCCESS || done != 0 ? true : nil
            }
        } catch {
            // MPI cannot cancel a collective: its buffers must outlive this call.
            engine.withLock { $0.abandoned.append(request) }
            throw error
        }
        return output
    }

    public func runNativeLoop(_ call: NativeCall, input: Chunk, calls: Int) throws(SkeinError) {
        let (request, type, op) = try nativeRequest(call, input: input)
        try postBlocking(call, request: request, type: type, op: op, times: calls)
    }

    /// A request for `call` with its output buffer, and MPI's type and operation for it; or why MPI
    /// cannot run it.
    private func nativeRequest(_ call: NativeCall, input: Chunk) throws(SkeinError) -> (NativeRequest, MPI_Datatype, MPI_Op) {
        guard let type = Self.mpiType(call.dataType), let op = Self.mpiOp(call.reduceOp) else {
            throw SkeinError(
                .unavailable, rank: rank,
                "MPI has no native \(call.operation) for \(call.dataType); use one of Skein's algorithms (they handle every element type)")
        }
        let outputCount = call.outputCount(rank: rank, size: size)
        let limit = Int(Int32.max)
        guard call.count <= limit, outputCount <= limit else {
            throw SkeinError(.unavailable, rank: rank, "\(call.count) elements exceed MPI's count limit of 2^31−1 for one native call")
        }
        let output = AllocatedStorage(uninitializedByteCount: outputCount * call.dataType.byteWidth)
        return (NativeRequest(input: input, output: output, size: size), type, op)
    }

    /// Makes the blocking form of `call` (`MPI_Allreduce`, not `MPI_Iallreduce`) `times` times on
    /// `request`'s buffers. MPI_THREAD_MULTIPLE lets the progress thread go on beside it; with less,
    /// the lock is held through each call.
    private func postBlocking(_ call: NativeCall, request: NativeRequest, type: MPI_Datatype, op: MPI_Op, times: Int) throws(SkeinError) {
        var blocking = call
        blocking.blocking = true
        let width = call.dataType.byteWidth
        let multiple = threadLevel >= skein_mpi_thread_multiple()
        for _ in 0..<times {
            let rc = multiple
                ? post(blocking, request: request, type: type, op: op, width: width)
                : engine.withLock { _ in post(blocking, request: request, type: type, op: op, width: width) }
            guard rc == MPI_SUCCESS else {
                throw SkeinError(.peerExited, rank: rank, "blocking MPI \(call.operation) failed: \(Self.errorString(rc))")
            }
        }
    }

    private func post(_ call: NativeCall, request: NativeRequest, type: MPI_Datatype, op: MPI_Op, width: Int) -> Int32 {
        let count = Int32(call.count)
        let root = Int32(call.root)
        let send = request.sendPointer
        let receive = UnsafeMutableRawPointer(request.output.base)
        let blocks = BlockPartition(count: call.count, parts: size)
        let b = call.blocking, comm = nativeComm
        switch call.operation {
        case .broadcast:
            if rank == call.root { receive.copyMemory(from: send, byteCount: call.count * width) }
            return b ? MPI_Bcast(receive, count, type, root, comm) : MPI_Ibcast(receive, count, type, root, comm, &request.request)
        case .reduce:
            return b ? MPI_Reduce(send, receive, count, type, op, root, comm) : MPI_Ireduce(send, receive, count, type, op, root, comm, &request.request)
        case .allreduce:
            return b ? MPI_Allreduce(send, receive, count, type, op, comm) : MPI_Iallreduce(send, receive, count, type, op, comm, &request.request)
        case .allgather:
            return b
                ? MPI_Allgather(send, count, type, receive, count, type, comm)
                : MPI_Iallgather(send, count, type, receive, count, type, comm, &request.request)
        case .gather:
            return b
                ? MPI_Gather(send, count, type, receive, count, type, root, comm)
                : MPI_Igather(send, count, type, receive, count, type, root, comm, &request.request)
        case .reduceScatter:
            for peer in 0..<size { request.counts[peer] = Int32(blocks.range(peer).count) }
            return b
                ? MPI_Reduce_scatter(send, receive, request.counts, type, op, comm)
                : MPI_Ireduce_scatter(send, receive, request.counts, type, op, comm, &request.request)
        case .scatter:
            for peer in 0..<size {
                request.counts[peer] = Int32(blocks.range(peer).count)
                request.displacements[peer] = Int32(blocks.range(peer).lowerBound)
            }
            let mine = Int32(blocks.range(rank).count)
            return b
                ? MPI_Scatterv(send, request.counts, request.displacements, type, receive, mine, type, root, comm)
                : MPI_Iscatterv(send, request.counts, request.displacements, type, receive, mine, type, root, comm, &request.request)
        case .allToAll:
            let mine = Int32(blocks.range(rank).count)
            for peer in 0..<size {
                request.counts[peer] = Int32(blocks.range(peer).count)
                request.displacements[peer] = Int32(blocks.range(peer).lowerBound)
                request.receiveCounts[peer] = mine
                request.receiveDisplacements[peer] = mine * Int32(peer)
            }
            return b
                ? MPI_Alltoallv(
                    send, request.counts, request.displacements, type, receive, request.receiveCounts, request.receiveDisplacements, type, comm)
                : MPI_Ialltoallv(
                    send, request.counts, request.displacements, type, receive, request.receiveCounts, request.receiveDisplacements, type,
                    comm, &request.request)
        case .barrier:
            return b ? MPI_Barrier(comm) : MPI_Ibarrier(comm, &request.request)
        case .pointToPoint:
            return MPI_ERR_OP
        }
    }
}

/// A native call's request and everything MPI reads or writes until it completes.
final class NativeRequest: @unchecked Sendable {
    // @unchecked: used by one task, and after abandonment only kept alive, never touched.
    var request: MPI_Request? = skein_mpi_request_null()
    let input: Chunk
    let output: AllocatedStorage
    let counts: UnsafeMutablePointer<Int32>
    let displacements: UnsafeMutablePointer<Int32>
    let receiveCounts: UnsafeMutablePointer<Int32>
    let receiveDisplacements: UnsafeMutablePointer<Int32>
    /// Somewhere valid to point at when the input is empty (MPI wants an address even for 0 elements).
    private static let placeholder = AllocatedStorage(uninitializedByteCount: 64)

    init(input: Chunk, output: AllocatedStorage, size: Int) {
        self.input = input
        self.output = output
        counts = .allocate(capacity: size)
        displacements = .allocate(capacity: size)
        receiveCounts = .allocate(capacity: size)
        receiveDisplacements = .allocate(capacity: size)
    }

    deinit {
        counts.deallocate()
        displacements.deallocate()
        receiveCounts.deallocate()
        receiveDisplacements.deallocate()
    }

    var sendPointer: UnsafeRawPointer {
        // The chunk's storage outlives the request (held above), so its address stays valid.
        input.withUnsafeBytes { $0.baseAddress } ?? UnsafeRawPointer(Self.placeholder.base)
    }
}
#endif
