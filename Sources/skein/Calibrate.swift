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
        let operations = try CollectiveOperation.list(ops)
        let tune = tune
        // The calibrated formulas, and the same with the tuned profiles kept.
        let outcomes = await InProcessGroup.run(size: ranks) { transport -> (CostParameters, CostParameters) in
            let comm = Communicator(transport: transport)
            let formulas = try await comm.calibrate()
            if tune { try await comm.tune(operations: operations) }
            return (formulas, comm.cost)
        }
        let (cost, tuned) = try outcomes[0].get()
        print("in-process, \(ranks) ranks: \(cost)")
        print(String(format: "α = %.3e s, β = %.3e s/B, γ = %.3e s/B", cost.alpha, cost.beta, cost.gamma))
        guard tune else { return }
        for operation in operations {
            let columns = CostModel.candidates(operation, native: false, sharedMemory: true, sharedAddressSpace: true).compactMap { algorithm in
                tuned.measured.first { $0.describes(algorithm, ranks: ranks) }.map { (algorithm, $0) }
            }
            guard let sizes = columns.first?.1.bytes else { continue }
            print("\n\(operation), \(ranks) ranks: measured (formula) per algorithm; * = the pick from the measurements, + = the formulas' where it differs")
            print("bytes".leftPad(10) + columns.map { $0.0.name.leftPad(24) }.joined())
            for bytes in sizes.map({ Int($0) }) {
                let pick = CostModel.select(operation, ranks: ranks, bytes: bytes, cost: tuned, sharedMemory: true, sharedAddressSpace: true).algorithm.name
                let modelPick = CostModel.select(operation, ranks: ranks, bytes: bytes, cost: cost, sharedMemory: true, sharedAddressSpace: true).algorithm.name
                let cells = columns.map { algorithm, profile -> String in
                    // Only sizes it ran (the board stops at what its slots hold).
                    guard let index = profile.bytes.firstIndex(of: Double(bytes)) else { return "-".leftPad(24) }
                    let mark = algorithm.name == pick ? "*" : algorithm.name == modelPick ? "+" : " "
                    let formula = formatSeconds(algorithm.modelSeconds(ranks: ranks, bytes: bytes, cost: cost))
                    return (mark + formatSeconds(profile.seconds[index]) + " (" + formula + ")").leftPad(24)
                }
                print(formatBytes(bytes).leftPad(10) + cells.joined())
            }
        }
    }
}
