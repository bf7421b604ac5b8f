import ArgumentParser
import Foundation
import SkeinCore
import SkeinMPI

/// Which transport a command runs on.
enum TransportChoice: String, ExpressibleByArgument, CaseIterable {
    case auto, inprocess, mpi
}

/// A transport this build lacks: printed as the error, without the usage text a ValidationError adds.
struct UnavailableTransport: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// This process's rank of an MPI job, when the command runs under mpirun or srun.
struct MPISession {
    let transport: any Transport
    let banner: String
    private let sleeper: () async -> Void
    private let finisher: () -> Void
    private let rester: (Bool) -> Void

    /// The MPI transport if `choice` asks for it (or, for `auto`, if an MPI launcher started this
    /// process); nil for in-process ranks. Throws, with how to build it, when MPI is not compiled in.
    static func start(_ choice: TransportChoice) throws -> MPISession? {
        let wanted = choice == .mpi || (choice == .auto && MPIBackend.launchedByLauncher)
        guard wanted else { return nil }
        #if MPI
        let mpi = try MPITransport.start()
        return MPISession(
            transport: mpi,
            banner: "\(mpi.size) MPI processes (\(MPITransport.libraryVersion), \(mpi.threadLevelName) granted) on \(Set(mpi.hosts).sorted().joined(separator: ", "))"
                + (mpi.oversubscribed ? "; more processes than cores, so waits yield their core" : ""),
            sleeper: { await mpi.sleepUntilAll() },
            finisher: { mpi.shutdown() },
            rester: { mpi.setResting($0) })
        #else
        if choice == .auto {
            FileHandle.standardError.write(Data("skein: started by an MPI launcher, but \(MPIBackend.buildHint); running on in-process ranks\n".utf8))
            return nil
        }
        throw UnavailableTransport(message: "--transport mpi: \(MPIBackend.buildHint)")
        #endif
    }

    /// Waits, asleep, until every rank arrives (a rank that works alone meanwhile keeps the cores).
    func sleepUntilAll() async { await sleeper() }

    /// Lets outstanding messages finish and finalises MPI.
    func finish() { finisher() }

    /// Tells the transport this process makes no MPI calls for a while (its progress thread then
    /// wakes rarely), or makes them again.
    func setResting(_ resting: Bool) { rester(resting) }
}

/// mpirun binds each process to a core by default (`--bind-to core`), which squeezes in-process
/// ranks started inside it onto that one core.
enum CoreBinding {
    /// True when this process may run on fewer CPUs than the machine has online.
    static var isBound: Bool {
        #if os(Linux)
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed_list:") })
        else { return false }
        let online = ProcessInfo.processInfo.activeProcessorCount
        let allowed = line.dropFirst("Cpus_allowed_list:".count).trimmingCharacters(in: .whitespaces)
        return allowed != (online == 1 ? "0" : "0-\(online - 1)")
        #else
        return false
        #endif
    }
}
