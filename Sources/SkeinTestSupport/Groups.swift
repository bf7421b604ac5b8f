import SkeinCore
import SkeinTransports
import SkeinCollectives

/// The transports every collective is tested on.
public enum TransportKind: String, CaseIterable, Sendable, CustomStringConvertible {
    case inProcess, simulated
    public var description: String { rawValue }
}

/// A network model for tests on the simulated transport: 1 µs, 10 GB/s, 5 GB/s reduction.
public let testNetwork = NetworkModel(alpha: 1e-6, beta: 1e-10, gamma: 2e-10)

/// Runs `body` on `size` ranks, each with its own communicator, and returns every rank's outcome.
public func runGroup<R: Sendable>(
    _ kind: TransportKind, size: Int, timeout: Duration = .seconds(30),
    _ body: @escaping @Sendable (Communicator) async throws -> R
) async -> [Result<R, any Error>] {
    switch kind {
    case .inProcess:
        return await InProcessGroup.run(size: size) { transport in
            try await body(Communicator(transport: transport, timeout: timeout))
        }
    case .simulated:
        return await SimulatedGroup.run(size: size, model: testNetwork) { transport in
            try await body(Communicator(transport: transport, timeout: timeout))
        }.results
    }
}

/// Like `runGroup`, but throws the first rank's error.
public func runGroupOrThrow<R: Sendable>(
    _ kind: TransportKind, size: Int, timeout: Duration = .seconds(30),
    _ body: @escaping @Sendable (Communicator) async throws -> R
) async throws -> [R] {
    try await runGroup(kind, size: size, timeout: timeout, body).map { try $0.get() }
}
