import ArgumentParser
import Foundation
import SkeinCore
import SkeinTransports
import SkeinCollectives

/// Measures α, β, γ on in-process ranks and prints them; with `--tune`, also each algorithm's times.
struct Calibrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure α, β (ping-pong) and γ (reduction) on in-process ranks; with --tune, time every algorithm as the selector will use it.")

    @Option(help: "Number of in-process ranks.") var ranks = 2
    @Flag(help: "Also time every algorithm of every operation at Communicator.tuningSizes and print the profiles and the picks.")
    var tune = false
    @Option(help: "With --tune: comma-separated operations, or all.") var ops = "all"

    func run() async throws {
        let operations: [CollectiveOperation] = ops == "all"
            ? CollectiveOperation.allCases.filter { $0 != .pointToPoint }
            : try ops.split(separator: ",").map {
                guard let op = CollectiveOperation(argument: String($0)) else { throw ValidationError("unknown operation \($0)") }
                return op
            }
        let tune = tune
        let outcomes = await InProcessGroup.run(size: ranks) { transport -> (CostParameters, [MeasuredProfile]) in
            let comm = Communicator(transport: transport)
            let cost = try await comm.calibrate()
            return (cost, tune ? try await comm.tune(operations: operations) : [])
        }
        let (cost, profiles) = try outcomes[0].get()
        print("in-process, \(ranks) ranks: \(cost)")
        print(String(format: "α = %.3e s, β = %.3e s/B, γ = %.3e s/B", cost.alpha, cost.beta, cost.gamma))
        guard tune else { return }
        var tuned = cost
        tuned.keep(profiles)
        for operation in operations {
            let measured = profiles.filter { $0.operation == operation.rawValue }
            guard let sizes = measured.first?.bytes else { continue }
            let algorithms = CostModel.candidates(operation, native: false, sharedMemory: true).filter { a in measured.contains { $0.describes(a, ranks: ranks) } }
            print("\n\(operation), \(ranks) ranks: measured (formula) per algorithm; * = the pick from the measurements, + = the formulas' where it differs")
            print("bytes".leftPad(10) + algorithms.map { $0.name.leftPad(24) }.joined())
            let shareCores = ranks > ProcessInfo.processInfo.activeProcessorCount
            for bytes in sizes.map({ Int($0) }) {
                let pick = CostModel.select(operation, ranks: ranks, bytes: bytes, cost: tuned, sharedMemory: true, ranksShareCores: shareCores).algorithm.name
                let modelPick = CostModel.select(operation, ranks: ranks, bytes: bytes, cost: cost, sharedMemory: true, ranksShareCores: shareCores).algorithm.name
                let cells = algorithms.map { a -> String in
                    guard let seconds = tuned.measuredSeconds(of: a, ranks: ranks, bytes: bytes),
                        measured.first(where: { $0.describes(a, ranks: ranks) })!.bytes.contains(Double(bytes))
                    else { return "-".leftPad(24) }
                    let mark = a.name == pick ? "*" : a.name == modelPick ? "+" : " "
                    return (mark + formatSeconds(seconds) + " (" + formatSeconds(a.predictedSeconds(ranks: ranks, bytes: bytes, cost: cost)) + ")").leftPad(24)
                }
                print(formatBytes(bytes).leftPad(10) + cells.joined())
            }
        }
    }
}
