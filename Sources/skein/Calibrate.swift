import ArgumentParser
import SkeinCore
import SkeinTransports
import SkeinCollectives

/// Measures α, β, γ on in-process ranks and prints them.
struct Calibrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Measure α, β (ping-pong) and γ (reduction) on in-process ranks.")

    @Option(help: "Number of in-process ranks.") var ranks = 2

    func run() async throws {
        let outcomes = await InProcessGroup.run(size: ranks) { transport in
            try await Communicator(transport: transport).calibrate()
        }
        let cost = try outcomes[0].get()
        print("in-process, \(ranks) ranks: \(cost)")
        print(String(format: "α = %.3e s, β = %.3e s/B, γ = %.3e s/B", cost.alpha, cost.beta, cost.gamma))
    }
}
