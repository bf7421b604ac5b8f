import SkeinCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What this build knows about MPI: whether the backend was compiled in, and whether this process
/// was started by an MPI launcher.
public enum MPIBackend {
    /// True when Skein was built with `--traits MPI`.
    public static var isCompiledIn: Bool {
        #if MPI
        true
        #else
        false
        #endif
    }

    /// What to do when MPI is wanted but not compiled in.
    public static let buildHint = """
        this skein was built without the MPI backend. Install MPI (apt-get install openmpi-bin libopenmpi-dev) \
        and build with the trait: swift build -c release --traits MPI (then run it under mpirun -n P)
        """

    /// Environment variables that Open MPI, MPICH/Hydra, PMIx and Slurm set in the processes they start.
    static let launcherVariables = ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", "MPI_LOCALNRANKS"]

    /// True when this process was started by mpirun, mpiexec or srun with an MPI job around it.
    public static var launchedByLauncher: Bool {
        launcherVariables.contains { getenv($0) != nil }
    }
}
