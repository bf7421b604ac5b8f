import Testing
import Synchronization
import SkeinCore
import SkeinTransports
import SkeinCollectives
import SkeinTestSupport

/// The communicator's path to a transport's own collectives (MPI's, under the MPI backend), tested
/// without MPI: `NaiveNativeTransport` implements every operation the naive way (each rank sends its
/// whole input to every rank and computes its own result), independently of Skein's algorithms.
@Suite("Native collectives: the communicator's path to a transport's own implementation")
struct NativeAlgorithmTests {
    @Test("Every operation pinned to native matches the naive reference", arguments: [1, 2, 3, 4])
    func everyOperation(ranks p: Int) async {
        for operation in CollectiveOperation.allCases where operation != .pointToPoint {
            let counts = operation == .barrier ? [0] : [0, 1, p + 1, 3001]
            for (index, count) in counts.enumerated() {
                let op = ReduceOp.allCases[index % ReduceOp.allCases.count]
                let seed = UInt64(operation.rawValue) * 1000 + UInt64(p * 10 + index)
                let (inputs, root) = randomCase(Float.self, ranks: p, count: count, op: op, seed: seed)
                let outcomes = await InProcessGroup.run(size: p) { transport -> [Float]? in
                    let comm = Communicator(transport: NaiveNativeTransport(base: transport))
                    return try await runCollective(
                        operation, algorithm: NativeAlgorithm(operation), on: comm, input: inputs[comm.rank], count: count, op: op, root: root)
                }
                for (rank, outcome) in outcomes.enumerated() {
                    switch outcome {
                    case .success(let result):
                        let difference = checkRank(rank, result: result, operation: operation, inputs: inputs, op: op, root: root)
                        #expect(difference == nil, "native \(operation) \(op) p=\(p) n=\(count) seed \(seed): \(difference ?? "")")
                    case .failure(let error):
                        Issue.record("native \(operation) p=\(p) n=\(count) seed \(seed): rank \(rank) threw \(error)")
                    }
                }
            }
        }
    }

    @Test("A native call on a transport without one, or for an element type it lacks, is .unavailable on every rank")
    func unavailable() async {
        let plain = await InProcessGroup.run(size: 2) { transport in
            try await Communicator(transport: transport).allreduce([Float(1)], algorithm: NativeAlgorithm(.allreduce))
        }
        let lacking = await InProcessGroup.run(size: 2) { transport in
            try await Communicator(transport: NaiveNativeTransport(base: transport)).allreduce([Float16(1)], algorithm: NativeAlgorithm(.allreduce))
        }
        let failures: [(any Error)?] = plain.map { $0.failureError } + lacking.map { $0.failureError }
        for failure in failures {
            let code = (failure as? SkeinError)?.code
            #expect(code == SkeinError.Code.unavailable, "expected .unavailable, got \(String(describing: failure))")
        }
    }

    @Test("A measured native profile interpolates linearly between sizes and extends the last segment")
    func profile() {
        let profile = MeasuredProfile(NativeAlgorithm(.allreduce), ranks: 4, points: [(1000, 2e-6), (8, 1e-6), (9000, 10e-6)])
        #expect(profile.seconds(bytes: 0) == 1e-6)
        #expect(abs(profile.seconds(bytes: 504) - 1.5e-6) < 1e-12)
        #expect(abs(profile.seconds(bytes: 5000) - 6e-6) < 1e-12)
        #expect(abs(profile.seconds(bytes: 17000) - 18e-6) < 1e-12)
        #expect(NativeAlgorithm(.allreduce).predictedSeconds(ranks: 3, bytes: 8, cost: .inProcessDefault) == .infinity)
    }

    @Test("The selector weighs the measured native time against Skein's formulas, for element types it has")
    func selection() async throws {
        // α = 1 µs: the best Skein allreduce of 8 B on 4 ranks takes 2α (recursive doubling) = 2 µs.
        var model = CostParameters(alpha: 1e-6, beta: 1e-10, gamma: 1e-10)
        model.measured = [MeasuredProfile(NativeAlgorithm(.allreduce), ranks: 4, points: [(8, 0.5e-6), (1 << 20, 1.0)])]
        let cost = model
        #expect(CostModel.select(.allreduce, ranks: 4, bytes: 8, cost: cost, native: true).algorithm.name == "native")
        #expect(CostModel.select(.allreduce, ranks: 4, bytes: 8, cost: cost, native: false).algorithm.name == "recursive-doubling")
        #expect(CostModel.select(.allreduce, ranks: 4, bytes: 1 << 20, cost: cost, native: true).algorithm.name != "native")
        #expect(CostModel.select(.broadcast, ranks: 4, bytes: 8, cost: cost, native: true).algorithm.name != "native")

        let (inputs, _) = randomCase(Float.self, ranks: 4, count: 2, op: .sum, seed: 77)
        let picks = await InProcessGroup.run(size: 4) { transport -> [String] in
            let comm = Communicator(transport: NaiveNativeTransport(base: transport), cost: cost)
            let sum = try await comm.allreduce(inputs[comm.rank])
            #expect(checkRank(comm.rank, result: sum, operation: .allreduce, inputs: inputs, op: .sum, root: 0) == nil)
            _ = try await comm.allreduce([Float16](repeating: 1, count: 4))  // no native Float16: Skein's own runs
            return comm.flightRecord(last: 2).map(\.algorithm)
        }
        for outcome in picks { #expect(try outcome.get() == ["native", "recursive-doubling"]) }
    }

    @Test("calibrateNative measures every operation and feeds the selector")
    func calibration() async throws {
        let outcomes = await InProcessGroup.run(size: 3) { transport -> [MeasuredProfile] in
            let comm = Communicator(transport: NaiveNativeTransport(base: transport))
            let profiles = try await comm.calibrateNative(sizes: [8, 4096], repetitions: 2)
            #expect(comm.cost.measured == profiles)
            return profiles
        }
        let profiles = try outcomes[0].get()
        #expect(profiles.count == CollectiveOperation.allCases.count - 1)
        #expect(profiles.allSatisfy { $0.ranks == 3 && $0.seconds.allSatisfy { $0 > 0 } })
        for outcome in outcomes.dropFirst() { #expect(try outcome.get() == profiles) }  // every rank keeps the same figures
    }
}

extension Result {
    var failureError: (any Error)? {
        if case .failure(let error) = self { return error }
        return nil
    }
}

/// A transport with "native" collectives done the naive way: every rank sends its whole input to
/// every rank, then computes its own result from all of them, reducing in rank order.
final class NaiveNativeTransport: NativeCollectives, Sendable {
    let base: InProcessTransport
    private let calls = Mutex<UInt64>(0)

    init(base: InProcessTransport) { self.base = base }

    var rank: Int { base.rank }
    var size: Int { base.size }
    var deliversByReference: Bool { base.deliversByReference }
    func send(_ message: Message, to peer: Int, tag: SkeinCore.Tag) throws(SkeinError) { try base.send(message, to: peer, tag: tag) }
    func receive(from peer: Int, tag: SkeinCore.Tag, deadline: UInt64) async throws(SkeinError) -> Message {
        try await base.receive(from: peer, tag: tag, deadline: deadline)
    }
    func abort(context: UInt32, because error: SkeinError) { base.abort(context: context, because: error) }
    func now() -> UInt64 { base.now() }

    func supportsNative(_ operation: CollectiveOperation, dataType: DataType) -> Bool { dataType == .float32 || operation == .barrier }

    func runNative(_ call: NativeCall, input: Chunk, deadline: UInt64) async throws(SkeinError) -> Chunk {
        guard call.dataType == .float32 || call.operation == .barrier else { throw SkeinError(.unavailable, rank: rank, "no native \(call.dataType)") }
        let sequence = calls.withLock { calls -> UInt64 in
            calls += 1
            return calls
        }
        let tag = SkeinCore.Tag(context: 0xFFFF_0000, sequence: sequence)
        let signature = CallSignature(
            operation: call.operation, algorithm: 0, dataType: .float32, reduceOp: call.reduceOp, root: Int32(call.root), count: Int64(call.count),
            sequence: sequence)
        let mine: [Float] = input.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        for peer in 0..<size where peer != rank {
            try base.send(Message(signature: signature, skew: ArrivalSkew(rank: rank, entry: 0), chunks: Chunk.partition(mine, into: 1)), to: peer, tag: tag)
        }
        var all: [[Float]] = []
        for peer in 0..<size {
            if peer == rank {
                all.append(mine)
            } else {
                let message = try await base.receive(from: peer, tag: tag, deadline: deadline)
                all.append(message.chunks.flatMap { chunk in chunk.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) } })
            }
        }
        let blocks = BlockPartition(count: call.count, parts: size)
        let result: [Float]
        switch call.operation {
        case .broadcast: result = all[call.root]
        case .reduce: result = rank == call.root ? Reference.reduce(all, call.reduceOp) : []
        case .allreduce: result = Reference.reduce(all, call.reduceOp)
        case .allgather: result = all.flatMap { $0 }
        case .gather: result = rank == call.root ? all.flatMap { $0 } : []
        case .reduceScatter: result = Array(Reference.reduce(all, call.reduceOp)[blocks.range(rank)])
        case .scatter: result = Array(all[call.root][blocks.range(rank)])
        case .allToAll: result = all.flatMap { $0[blocks.range(rank)] }
        case .barrier, .pointToPoint: result = []
        }
        return Chunk.partition(result, into: 1)[0]
    }
}
