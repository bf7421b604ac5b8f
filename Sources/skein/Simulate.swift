import ArgumentParser
import Foundation
import SkeinCore
import SkeinTransports
import SkeinCollectives

extension CollectiveOperation: ExpressibleByArgument {
    public init?(argument: String) {
        let key = argument.lowercased().replacingOccurrences(of: "-", with: "").replacingOccurrences(of: "_", with: "")
        guard let match = Self.allCases.first(where: { $0.description.replacingOccurrences(of: "-", with: "") == key }) else { return nil }
        self = match
    }
    public static var allValueStrings: [String] { allCases.filter { $0 != .pointToPoint }.map(\.description) }

    /// The operations a comma-separated `--ops` names, or every collective for `all`.
    static func list(_ text: String) throws -> [CollectiveOperation] {
        guard text != "all" else { return allCases.filter { $0 != .pointToPoint } }
        return try text.split(separator: ",").map {
            guard let op = CollectiveOperation(argument: String($0)) else { throw ValidationError("unknown operation \($0)") }
            return op
        }
    }
}

/// Predicts and simulates every algorithm of one operation at any scale.
struct Simulate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Predict (α-β-γ formula) and simulate (virtual clock, phantom payloads) every algorithm of an operation.")

    @Argument(help: "The operation: \(CollectiveOperation.allValueStrings.joined(separator: ", ")).") var operation: CollectiveOperation
    @Option(help: "Number of ranks.") var ranks = 64
    @Option(help: "Message size (see `skein bench --help` for what it means per operation), e.g. 8, 64KiB, 1GiB.") var bytes = ByteSize(bytes: 1 << 20)
    @Option(help: "Latency α in seconds per message.") var alpha = 2e-6
    @Option(help: "Link bandwidth in bytes per second (β = 1/bandwidth).") var bandwidth = 10e9
    @Option(help: "Reduction throughput in bytes per second (γ = 1/throughput).") var reduction = 20e9
    @Option(help: "Root rank for rooted operations.") var root = 0
    @Flag(help: "One JSON object per algorithm.") var json = false

    func validate() throws {
        guard ranks >= 1 else { throw ValidationError("--ranks must be at least 1") }
        guard (0..<ranks).contains(root) else { throw ValidationError("--root must be in 0..<\(ranks)") }
        guard operation != .pointToPoint else { throw ValidationError("point-to-point has no algorithms to compare") }
        guard alpha >= 0, bandwidth > 0, reduction > 0 else { throw ValidationError("α must be ≥ 0 and throughputs > 0") }
    }

    func run() throws {
        let cost = CostParameters(alpha: alpha, beta: 1 / bandwidth, gamma: 1 / reduction)
        let model = NetworkModel(alpha: cost.alpha, beta: cost.beta, gamma: cost.gamma)
        let pick = CostModel.select(operation, ranks: ranks, bytes: bytes.bytes, cost: cost).algorithm
        if !json {
            print("\(operation) of \(bytes) on \(ranks) ranks; α = \(formatSeconds(alpha)), bandwidth \(bandwidth / 1e9) GB/s, reduction \(reduction / 1e9) GB/s")
            print("algorithm".padding(toLength: 22, withPad: " ", startingAt: 0) + "predicted".leftPad(12) + "simulated".leftPad(12) + "messages".leftPad(12) + "wall".leftPad(10))
        }
        for algorithm in AlgorithmRegistry.algorithms(for: operation) {
            let predicted = algorithm.predictedSeconds(ranks: ranks, bytes: bytes.bytes, cost: cost)
            let started = Date()
            let outcome = try CollectiveSimulator.run(algorithm, ranks: ranks, bytes: bytes.bytes, model: model, root: root)
            let wall = Date().timeIntervalSince(started)
            let picked = algorithm.name == pick.name
            if json {
                print(#"{"operation":"\#(operation)","algorithm":"\#(algorithm.name)","ranks":\#(ranks),"bytes":\#(bytes.bytes),"predicted_seconds":\#(predicted),"simulated_seconds":\#(outcome.seconds),"messages":\#(outcome.messages),"selected":\#(picked),"wall_seconds":\#(wall)}"#)
            } else {
                print(algorithm.name.padding(toLength: 22, withPad: " ", startingAt: 0) + formatSeconds(predicted).leftPad(12)
                    + formatSeconds(outcome.seconds).leftPad(12) + "\(outcome.messages)".leftPad(12)
                    + String(format: "%.2f s", wall).leftPad(10) + (picked ? "  ← pick" : ""))
            }
        }
    }
}

extension String {
    func leftPad(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
