import SkeinCore

#if canImport(Glibc)
    import Glibc
#endif

extension Communicator {
    /// Measures α and β from rounds of a dissemination pattern, in which every rank sends to the
    /// rank d after it and receives from the rank d before it (d = 1, 2, 4, …), as the algorithms'
    /// rounds do: a least-squares line through the time per round over `messageSizes`. With two
    /// ranks this is a ping-pong; with more ranks than cores every rank is busy at once, so α
    /// includes the cost of ranks sharing a core, as it does in the collectives themselves (a token
    /// passed around the ranks, one busy at a time, found a third of it). γ comes from timing the
    /// float sum kernel, and on shared memory the board's synchronization from bare rounds, timed in
    /// batches alternating with the empty message round (`timeEmptyAgainstBoard`). Each
    /// receiver copies the payload into its own buffer, as a receive into user memory does, so a
    /// by-reference transport's β is the real cost of moving bytes between cores. Where ranks share
    /// a host's memory, β and γ are also measured past the cache (`CostParameters.memory`). Rank 0's
    /// figures go to every rank. A collective: every rank must call it.
    @discardableResult
    public func calibrate(
        messageSizes: [Int] = [0, 4_096, 65_536, 1 << 20], repetitions: Int = 100, timeout: Duration? = nil
    ) async throws(SkeinError) -> CostParameters {
        let sequence = nextSequence()
        let tag = Tag(context: context, sequence: sequence)
        let limit = timeout ?? self.timeout
        let deadline = MonotonicClock.deadline(after: limit, from: transport.now())
        var measured = state.withLock { $0.cost }
        var memoryTimes: (round: Double, kernel: Double, bytes: Int)?
        if size > 1 {
            let levels = TreeCost.ceilLog2(size)
            var points: [(bytes: Double, seconds: Double)] = []
            let scratch = AllocatedStorage(uninitializedByteCount: messageSizes.max() ?? 0)
            // On shared memory the empty round is timed beside the board's, below.
            for bytes in messageSizes where !(hasSharedMemory && bytes == 0) {
                let message = probe(AllocatedStorage(uninitializedByteCount: bytes), sequence: sequence)
                var samples: [Double] = []
                for _ in 0..<(max(3, repetitions / levels) + 2) {
                    samples.append(try await disseminationRound(message, tag: tag, deadline: deadline, into: scratch))
                }
                points.append((Double(bytes), Self.median(samples.dropFirst(2))))
            }
            // Before any board call: a peer that published a later call would make these rounds'
            // receives, still in this call, look like a desync.
            if hasSharedMemory {
                memoryTimes = try await timeMemoryRegime(tag: tag, deadline: deadline, timeout: timeout)
                let (empty, board) = try await timeEmptyAgainstBoard(repetitions: repetitions, deadline: deadline, timeout: timeout)
                points.append((0, empty))
                measured.sharedAlpha = board / Double(levels)
            }
            if rank == 0 {
                let fit = Self.fitLatencyAndBandwidth(points)
                measured.alpha = fit.alpha
                measured.beta = fit.beta
            }
        }
        if rank == 0 { measured.gamma = measureReductionSeconds() }
        // Past the cache: the slowest rank's figures, as β and γ no lower than in the cache.
        var memory: [Double] = [0, 0, 0]
        if let (round, kernel, bytes) = memoryTimes {
            memory = [
                max((round - measured.alpha) / Double(bytes), measured.beta), max(kernel / Double(bytes), measured.gamma),
                Double(CostParameters.MemoryRegime.limit(forCache: MemoryCopy.cacheBytes)),
            ]
        }
        let agreed = try await broadcast(
            [measured.alpha, measured.beta, measured.gamma, measured.sharedAlpha] + memory, root: 0, algorithm: BinomialBroadcast(),
            timeout: timeout)
        var parameters = transport.deliversByReference
            ? CostParameters.byReference(alpha: agreed[0], beta: agreed[1], gamma: agreed[2])
            : CostParameters(alpha: agreed[0], beta: agreed[1], gamma: agreed[2])
        parameters.sharedAlpha = agreed[3]
        if agreed[6] > 0 { parameters.memory = .init(beta: agreed[4], gamma: agreed[5], workingSetLimit: Int(agreed[6])) }
        state.withLock { state in
            state.cost = parameters
            state.forgetSelections(lastChoice)
        }
        return parameters
    }

    /// Times the memory regime on ranks that share a host: per level, dissemination rounds whose
    /// payloads and receive buffers together fill at least twice the last-level cache, copied with
    /// streaming stores as the algorithms copy at such sizes; and the float sum kernel on every rank
    /// at once over buffers as large, from a barrier to the barrier after the last rank's kernel,
    /// since ranks beyond the cores run their kernels after the others. Returns the slowest rank's
    /// medians (on every rank) and the message size.
    func timeMemoryRegime(tag: Tag, deadline: UInt64, timeout: Duration?) async throws(SkeinError) -> (round: Double, kernel: Double, bytes: Int) {
        // At least 256 KiB a message, so the bytes outweigh α; no more than the cache's share, so
        // that many ranks (256 of them: 3 × 256 KiB each) do not allocate gigabytes to calibrate.
        let bytes = max(MemoryCopy.cacheBytes / size, 256 << 10)
        let (payload, scratch) = (AllocatedStorage(uninitializedByteCount: bytes), AllocatedStorage(uninitializedByteCount: bytes))
        let operand = AllocatedStorage(uninitializedByteCount: bytes)
        for storage in [payload, scratch, operand] { memset(storage.base, 0, bytes) }
        let message = probe(payload, sequence: tag.sequence)
        var rounds: [Double] = []
        for _ in 0..<6 { rounds.append(try await disseminationRound(message, tag: tag, deadline: deadline, into: scratch, streaming: true)) }
        let reducer = Reducer(Float.self, .sum)
        var kernels: [Double] = []
        for _ in 0..<4 {
            try await barrier(timeout: timeout)
            let t0 = transport.now()
            reducer(into: scratch.base, scratch.base, operand.base, byteCount: bytes)
            try await barrier(timeout: timeout)
            kernels.append(Double(transport.now() &- t0) / 1e9)
        }
        // The first of each warmed the caches and the page tables.
        let medians = [Self.median(rounds.dropFirst()), Self.median(kernels.dropFirst())]
        let slowest = try await allreduce(medians, op: .max, timeout: timeout)
        return (slowest[0], slowest[1], bytes)
    }

    /// The empty dissemination round (the α point) and the board's bare round (`sharedMemoryRound`),
    /// each the median of its samples, taken in alternating batches so that a slow spell of the
    /// machine lands on both: the selector weighs one against the other, and measured a second apart
    /// a spell on one side alone sent every small call of a run the slower way (p = 3: the board's
    /// round took 0.67–0.74 µs per level in most calibrations, 1.3–2.0 in some). Each batch of
    /// message rounds is a call of its own, so that no board call comes between a call's messages.
    func timeEmptyAgainstBoard(repetitions: Int, deadline: UInt64, timeout: Duration?) async throws(SkeinError) -> (message: Double, board: Double) {
        let batches = 10
        let levels = TreeCost.ceilLog2(size)
        let scratch = AllocatedStorage(uninitializedByteCount: 0)
        var (messages, boards) = ([Double](), [Double]())
        // The first batch warms both paths up and is not kept.
        for batch in 0...batches {
            let sequence = nextSequence()
            let empty = probe(scratch, sequence: sequence)
            for _ in 0..<max(3, repetitions / levels / batches) {
                let seconds = try await disseminationRound(empty, tag: Tag(context: context, sequence: sequence), deadline: deadline, into: scratch)
                if batch > 0 { messages.append(seconds) }
            }
            for _ in 0..<max(3, 2 * repetitions / batches) {
                let t0 = transport.now()
                try await sharedMemoryRound(timeout: timeout)
                if batch > 0 { boards.append(Double(transport.now() &- t0) / 1e9) }
            }
        }
        return (Self.median(messages[...]), Self.median(boards[...]))
    }

    /// A calibration round's message of call `sequence`: all of `storage`.
    func probe(_ storage: AllocatedStorage, sequence: UInt64) -> Message {
        let signature = CallSignature(
            operation: .pointToPoint, algorithm: 0, dataType: .float32, reduceOp: .sum, root: 0, count: 0, sequence: sequence)
        return Message(
            signature: signature, skew: ArrivalSkew(rank: rank, entry: 0),
            chunks: [Chunk(storage: storage, offset: 0, byteCount: storage.byteCount, isWritable: false)])
    }

    /// One round of the dissemination pattern (every distance once) with `message`, each payload
    /// received copied into `scratch` (with streaming stores when `streaming`): seconds per level.
    func disseminationRound(
        _ message: Message, tag: Tag, deadline: UInt64, into scratch: AllocatedStorage, streaming: Bool = false
    ) async throws(SkeinError) -> Double {
        let t0 = transport.now()
        var distance = 1
        while distance < size {
            try transport.send(message, to: (rank + distance) % size, tag: tag)
            scratch.copy(try await transport.receive(from: (rank - distance + size) % size, tag: tag, deadline: deadline), streaming: streaming)
            distance *= 2
        }
        return Double(transport.now() &- t0) / 1e9 / Double(TreeCost.ceilLog2(size))
    }

    /// The middle of `samples` (the upper one of an even count).
    static func median(_ samples: ArraySlice<Double>) -> Double {
        samples.sorted()[samples.count / 2]
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

    /// α from the smallest message, β the least-squares slope of the rest through it. A free line
    /// fit lets the large messages' noise decide the intercept, which can land near zero or below.
    static func fitLatencyAndBandwidth(_ points: [(bytes: Double, seconds: Double)]) -> (alpha: Double, beta: Double) {
        let sorted = points.sorted { $0.bytes < $1.bytes }
        guard let first = sorted.first else { return (1e-9, 0) }
        let alpha = max(first.seconds, 1e-9)
        var sxy = 0.0, sxx = 0.0
        for p in sorted.dropFirst() {
            let dx = p.bytes - first.bytes
            sxy += dx * (p.seconds - first.seconds)
            sxx += dx * dx
        }
        return (alpha, sxx > 0 ? max(sxy / sxx, 0) : 0)
    }
}

extension Communicator {
    /// The sizes `tune` measures by default (bytes as `CollectiveAlgorithm` counts them): 8 B, then
    /// 768 B to 48 MiB a factor of 4 apart, and 24 KiB besides. Between two of them time is close to
    /// affine in the size, as interpolation assumes (8× apart, a cache boundary in between bent the
    /// line enough to pick a 1.5× slower algorithm at 2 MiB); 24 KiB halves the step where the
    /// board's curve crosses the message algorithms' and bends at the 32 KiB first-level cache (at
    /// 32 KiB, 12 and 48 KiB alone picked a 1.2× slower algorithm in most runs at p = 3–8). Sizes are
    /// 3 × 2^k, so that they fall between the powers of two that benchmarks use and
    /// `skein bench collectives` shows how well the profiles carry over.
    public static let tuningSizes = ([8, 3 << 13] + (4...12).map { 3 << (2 * $0) }).sorted()

    /// Times the algorithms of `operations` at `sizes` on these ranks and keeps the profiles, which
    /// the selector then prefers to the formulas: autotuning, as MPICH's tuning files and Open MPI's
    /// dynamic rules do. The formulas price what was not measured (other rank counts, the simulated
    /// transport). The algorithms timed are the candidates `including` accepts that can run each
    /// size; barrier runs once, with no bytes. `repetitions` as `timeAlgorithms` takes them (with 5
    /// instead of 15, a passing stall made the board's all-to-all look 2.5× slower than it was).
    /// Where the fastest at a size is not the fastest at a size next to it, the contenders are timed
    /// there once more and keep their faster figure: such a size holds a crossover or a stall, and a
    /// stall there bends the interpolated choice at every size around it.
    /// Every rank keeps the slowest rank's figures, so all select alike. A collective: every rank
    /// must call it. Returns the profiles kept.
    @discardableResult
    public func tune(
        operations: [CollectiveOperation] = CollectiveOperation.allCases, sizes: [Int] = Communicator.tuningSizes, repetitions: Int? = nil,
        including: (any CollectiveAlgorithm) -> Bool = { _ in true }, timeout: Duration? = nil
    ) async throws(SkeinError) -> [MeasuredProfile] {
        var profiles: [MeasuredProfile] = []
        let cost = self.cost
        for operation in operations where operation != .pointToPoint {
            let eligible = candidates(for: operation).filter(including)
            guard !eligible.isEmpty else { continue }
            let measuredSizes = operation == .barrier ? [0] : sizes
            // Per algorithm (as `eligible` lists them), its seconds at each size it can run.
            var points = [[Int: Double]](repeating: [:], count: eligible.count)
            func time(_ indices: [Int], bytes: Int) async throws(SkeinError) {
                let count = CollectiveSimulator.perRankCount(operation, ranks: size, bytes: bytes, elementWidth: 4)
                var input = [Float](repeating: Float(rank + 1), count: count), output: [Float] = []
                let seconds = try await timeAlgorithms(indices.map { eligible[$0] }, operation: operation, repetitions: repetitions) {
                    calls async throws(SkeinError) -> Void in
                    try await exercise(operation, input: &input, output: &output, count: count, timeout: timeout, times: calls)
                }
                for (index, time) in zip(indices, seconds) { points[index][bytes] = min(points[index][bytes] ?? .infinity, time) }
            }
            for bytes in measuredSizes {
                // The transport's own has no formula to say whether it can run; it always can.
                try await time(
                    eligible.indices.filter {
                        eligible[$0].code == NativeAlgorithm.code || eligible[$0].predictedSeconds(ranks: size, bytes: bytes, cost: cost).isFinite
                    }, bytes: bytes)
            }
            // A second look where the fastest differs from a neighbouring size's fastest: a crossover,
            // or a passing stall that slowed one candidate. The contenders run again there, each
            // keeping its faster figure. (Every rank holds the same figures, so all look alike.)
            let fastest = measuredSizes.map { bytes in
                eligible.indices.filter { points[$0][bytes] != nil }.min { points[$0][bytes]! < points[$1][bytes]! }
            }
            for (position, bytes) in measuredSizes.enumerated() {
                let contenders = Self.contenders(fastest, at: position).filter { points[$0][bytes] != nil }
                if contenders.count > 1 { try await time(contenders, bytes: bytes) }
            }
            for (algorithm, measured) in zip(eligible, points) where !measured.isEmpty {
                profiles.append(MeasuredProfile(algorithm, ranks: size, points: measured.map { (bytes: $0.key, seconds: $0.value) }))
            }
        }
        state.withLock { state in
            state.cost.keep(profiles)
            state.forgetSelections(lastChoice)
        }
        return profiles
    }

    /// The algorithms (indices) to time again at the size at `position`, given the fastest at each
    /// size: the fastest there and at the sizes next to it, where they are not all one; else none.
    public static func contenders(_ fastest: [Int?], at position: Int) -> [Int] {
        let near = Set((position - 1...position + 1).filter(fastest.indices.contains).compactMap { fastest[$0] })
        return near.count > 1 ? near.sorted() : []
    }

    /// Times the transport's own collectives (MPI's) so the selector can weigh them against Skein's
    /// algorithms: `tune` for those alone. A no-op on transports without native collectives.
    @discardableResult
    public func calibrateNative(
        sizes: [Int] = [8, 4_096, 262_144, 4 << 20], repetitions: Int = 5, timeout: Duration? = nil
    ) async throws(SkeinError) -> [MeasuredProfile] {
        guard native != nil else { return [] }
        return try await tune(sizes: sizes, repetitions: repetitions, including: { $0.code == NativeAlgorithm.code }, timeout: timeout)
    }

    /// For each of `algorithms` (all of one operation), the median over `repetitions` of the slowest
    /// rank's mean seconds per call, where `calls(n)` makes n calls back to back with that algorithm
    /// pinned (timed as `timeBatches` times). A pin the caller had is restored. A collective: every
    /// rank must call it with the same algorithms.
    public func timeAlgorithms(
        _ algorithms: [any CollectiveAlgorithm], operation: CollectiveOperation, repetitions: Int? = nil,
        _ calls: (_ count: Int) async throws(SkeinError) -> Void
    ) async throws(SkeinError) -> [Double] {
        guard !algorithms.isEmpty else { return [] }
        let userPin = state.withLock { $0.pins[Int(operation.rawValue)]?.algorithm }
        defer { pin(userPin, for: operation) }
        // Pinned, so no per-call cast to the operation's algorithm protocol is timed.
        return try await timeBatches(of: algorithms.count, repetitions: repetitions, prepare: { pin(algorithms[$0], for: operation) }) {
            _, count throws(SkeinError) in
            try await calls(count)
        }
    }

    /// The transport library's own `operation` (MPI's blocking `MPI_X`) timed as a C benchmark
    /// times it: batches of back-to-back calls on one pair of buffers, with nothing of Skein's
    /// between them (`NativeCollectives.runNativeLoop`), timed as `timeBatches` times. `count` as
    /// `exercise` takes it. Nil when the transport has no collectives of its own. A collective.
    public func timeNativeLoop(_ operation: CollectiveOperation, count: Int, repetitions: Int? = nil) async throws(SkeinError) -> Double? {
        guard let native, native.supportsNative(operation, dataType: .float32) else { return nil }
        let call = NativeCall(operation: operation, dataType: .float32, reduceOp: .sum, root: 0, count: count, blocking: true)
        let input = Chunk.partition([Float](repeating: Float(rank + 1), count: count), into: 1)[0]
        return try await timeBatches(of: 1, repetitions: repetitions) { _, calls throws(SkeinError) in
            try native.runNativeLoop(call, input: input, calls: calls)
        }[0]
    }

    /// For each of `candidates` ways of calling, the median over `repetitions` of the slowest rank's
    /// mean seconds per call, where `run(index, n)` makes n calls of candidate `index` and
    /// `prepare(index)` readies it outside the timing. Small calls run in batches of about a
    /// millisecond, as OSU and nccl-tests do, and the repetitions interleave the candidates, so drift
    /// in the machine's state cannot pass for a difference between them. `repetitions` nil: 15, or 7
    /// when a call takes over 20 ms. A collective.
    func timeBatches(
        of candidates: Int, repetitions: Int?, prepare: (Int) -> Void = { _ in },
        _ run: (_ index: Int, _ calls: Int) async throws(SkeinError) -> Void
    ) async throws(SkeinError) -> [Double] {
        var batches: [Int] = []
        var longest = 0.0
        for index in 0..<candidates {
            prepare(index)
            try await run(index, 1)
            try await barrier(algorithm: DisseminationBarrier())
            let t0 = transport.now()
            try await run(index, 1)
            let single = try await allreduce([Double(transport.now() &- t0) / 1e9], op: .max, algorithm: RecursiveDoublingAllreduce())[0]
            batches.append(max(1, min(2000, Int(1e-3 / max(single, 1e-9)))))
            longest = max(longest, single)
        }
        let rounds = max(repetitions ?? (longest > 0.02 ? 7 : 15), 1)
        var times = [[Double]](repeating: [], count: candidates)
        for _ in 0..<rounds {
            for index in 0..<candidates {
                prepare(index)
                try await barrier(algorithm: DisseminationBarrier())
                let t0 = transport.now()
                try await run(index, batches[index])
                times[index].append(Double(transport.now() &- t0) / 1e9 / Double(batches[index]))
            }
        }
        // One allreduce for every candidate's times (each has `rounds` of them).
        let slowest = try await allreduce(times.flatMap { $0 }, op: .max, algorithm: RecursiveDoublingAllreduce())
        return (0..<candidates).map { index in
            slowest[(index * rounds)..<((index + 1) * rounds)].sorted()[rounds / 2]
        }
    }

    /// Runs `times` calls of `operation` on Float buffers (reused across calls, as nccl-tests and
    /// OSU do) with the pinned or automatically chosen algorithm: `count` as
    /// `CollectiveSimulator.perRankCount` gives it; broadcast and allreduce in place. Each operation
    /// loops over the plain call a user makes: one call through a switch and an algorithm cast per
    /// call cost 60-100 ns more than an 8 B call's 200 at p = 1, all charged to the collective.
    public func exercise(
        _ operation: CollectiveOperation, input: inout [Float], output: inout [Float], count: Int, timeout: Duration? = nil, times: Int = 1
    ) async throws(SkeinError) {
        switch operation {
        case .broadcast: for _ in 0..<times { try await broadcast(&input, timeout: timeout) }
        case .reduce: for _ in 0..<times { try await reduce(input, into: &output, timeout: timeout) }
        case .allreduce: for _ in 0..<times { try await allreduce(&input, timeout: timeout) }
        case .allgather: for _ in 0..<times { try await allgather(input, into: &output, timeout: timeout) }
        case .reduceScatter: for _ in 0..<times { try await reduceScatter(input, into: &output, timeout: timeout) }
        case .scatter: for _ in 0..<times { try await scatter(input, totalCount: count, into: &output, timeout: timeout) }
        case .gather: for _ in 0..<times { try await gather(input, into: &output, timeout: timeout) }
        case .allToAll: for _ in 0..<times { try await allToAll(input, into: &output, timeout: timeout) }
        case .barrier: for _ in 0..<times { try await barrier(timeout: timeout) }
        case .pointToPoint: break
        }
    }
}

extension Communicator {
    /// Counts a call that runs outside `perform` (calibration's own rounds), so every rank's numbers stay alike.
    func nextSequence() -> UInt64 {
        let number = sequence.load(ordering: .relaxed) &+ 1
        sequence.store(number, ordering: .relaxed)
        return number
    }

    /// One bare synchronization on the shared-memory board (publish nothing, wait for every rank),
    /// without selection, validation or records around it: the floor under `SharedMemoryAlgorithm`,
    /// which calibration and the transport benchmark time. A collective: every rank must call it.
    public func sharedMemoryRound(timeout: Duration? = nil) async throws(SkeinError) {
        guard hasSharedMemory else {
            throw SkeinError(.unavailable, rank: rank, "this communicator's ranks share no memory (in-process ranks do, and MPI processes all on one host)")
        }
        let sequence = nextSequence()
        let start = transport.now()
        let signature = CallSignature(
            operation: .barrier, algorithm: SharedMemoryAlgorithm.code, dataType: .int32, reduceOp: .sum, root: 0, count: 0, sequence: sequence)
        _ = try await board.exchange(
            rank: rank, signature: signature, entry: start, byteCount: 0,
            deadline: MonotonicClock.deadline(after: timeout ?? self.timeout, from: start), fill: { _ in })
    }
}
