import SkeinCore

extension Communicator {
    /// Measures α and β by ping-pong between ranks 0 and 1 (a least-squares line through half
    /// round-trip times over `messageSizes`) and γ by timing the float sum kernel, on this
    /// communicator's own transport; rank 0's figures go to every rank, which all adopt them.
    /// A collective: every rank must call it.
    @discardableResult
    public func calibrate(
        messageSizes: [Int] = [0, 4_096, 65_536, 1 << 20], repetitions: Int = 200, timeout: Duration? = nil
    ) async throws(SkeinError) -> CostParameters {
        let sequence = state.withLock { state -> UInt64 in
            state.sequence += 1
            return state.sequence
        }
        let tag = Tag(context: context, sequence: sequence)
        let limit = timeout ?? self.timeout
        let deadline = transport.now() &+ UInt64(limit.components.seconds) &* 1_000_000_000
        let signature = CallSignature(
            operation: .pointToPoint, algorithm: 0, dataType: .float32, reduceOp: .sum, root: 0, count: 0, sequence: sequence)
        var measured = state.withLock { $0.cost }
        if size > 1 && rank <= 1 {
            var points: [(bytes: Double, seconds: Double)] = []
            for bytes in messageSizes {
                let payload = Chunk(
                    storage: AllocatedStorage(uninitializedByteCount: bytes), offset: 0, byteCount: bytes, isWritable: false)
                let message = Message(signature: signature, skew: ArrivalSkew(rank: rank, entry: 0), chunks: [payload])
                var samples: [Double] = []
                for _ in 0..<(repetitions + 10) {
                    let t0 = transport.now()
                    if rank == 0 {
                        try transport.send(message, to: 1, tag: tag)
                        _ = try await transport.receive(from: 1, tag: tag, deadline: deadline)
                    } else {
                        _ = try await transport.receive(from: 0, tag: tag, deadline: deadline)
                        try transport.send(message, to: 0, tag: tag)
                    }
                    samples.append(Double(transport.now() &- t0) / 2e9)
                }
                samples.removeFirst(10)
                samples.sort()
                points.append((Double(bytes), samples[samples.count / 2]))
            }
            if rank == 0 {
                let fit = Self.fitLine(points)
                measured.alpha = max(fit.intercept, 1e-9)
                measured.beta = max(fit.slope, 0)
                measured.gamma = measureReductionSeconds()
            }
        } else if size == 1 {
            measured.gamma = measureReductionSeconds()
        }
        let agreed = try await broadcast(
            [measured.alpha, measured.beta, measured.gamma], root: 0, algorithm: BinomialBroadcast(), timeout: timeout)
        let parameters = CostParameters(alpha: agreed[0], beta: agreed[1], gamma: agreed[2])
        state.withLock { state in
            state.cost = parameters
            state.selections.removeAll()
        }
        return parameters
    }

    /// Seconds per byte of the float sum kernel (best of several runs over 4 MiB operands).
    func measureReductionSeconds() -> Double {
        let bytes = 4 << 20
        let operand = Chunk.partition([Float](repeating: 1, count: bytes / 4), into: 1)[0]
        var target = Chunk(storage: AllocatedStorage(uninitializedByteCount: bytes), offset: 0, byteCount: bytes, isWritable: true)
        target = target.reduced(with: operand, incomingIsLeft: false, by: Reducer(Float.self, .sum))
        let reducer = Reducer(Float.self, .sum)
        var best = Double.infinity
        for _ in 0..<8 {
            let t0 = transport.now()
            target = target.reduced(with: operand, incomingIsLeft: false, by: reducer)
            transport.chargeReduction(byteCount: bytes)
            best = min(best, Double(transport.now() &- t0) / 1e9)
        }
        return max(best / Double(bytes), 1e-13)
    }

    static func fitLine(_ points: [(bytes: Double, seconds: Double)]) -> (intercept: Double, slope: Double) {
        let n = Double(points.count)
        let mx = points.reduce(0) { $0 + $1.bytes } / n, my = points.reduce(0) { $0 + $1.seconds } / n
        var sxy = 0.0, sxx = 0.0
        for p in points {
            sxy += (p.bytes - mx) * (p.seconds - my)
            sxx += (p.bytes - mx) * (p.bytes - mx)
        }
        let slope = sxx > 0 ? sxy / sxx : 0
        return (my - slope * mx, slope)
    }
}
