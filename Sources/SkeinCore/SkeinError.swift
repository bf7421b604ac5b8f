/// The one error type Skein's communication layers throw: a code, the rank that saw it, and a message
/// that says what went wrong, where, and the likely cause.
public struct SkeinError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of failure this is; new codes can be added without breaking users.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Sendable {
            case invalidArgument, mismatch, desync, timeout, peerExited, aborted, rankFailed, unavailable, internalError
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// A caller passed something unusable: a root out of range, a count that does not fit.
        public static let invalidArgument = Code(.invalidArgument)
        /// Ranks passed different sizes, element types, roots or algorithms to the same call.
        public static let mismatch = Code(.mismatch)
        /// Ranks called different collectives at the same sequence number.
        public static let desync = Code(.desync)
        /// A peer did not answer before the deadline.
        public static let timeout = Code(.timeout)
        /// A peer's program ended (returned or threw) while this rank still waited for it.
        public static let peerExited = Code(.peerExited)
        /// Another rank failed this operation and told every rank to stop.
        public static let aborted = Code(.aborted)
        /// This rank itself was made to fail (simulated failure injection).
        public static let rankFailed = Code(.rankFailed)
        /// Something this build or transport does not have: the MPI backend not compiled in, a native
        /// operation the library lacks for an element type.
        public static let unavailable = Code(.unavailable)
        /// A broken invariant inside Skein: a bug to report.
        public static let internalError = Code(.internalError)

        public var description: String { value.rawValue }
    }

    public let code: Code
    /// The rank that raised the error, when known.
    public let rank: Int?
    /// The peer this error is about (the one that timed out, exited, or disagreed), when there is one.
    public let peer: Int?
    public let message: String

    public init(_ code: Code, rank: Int? = nil, peer: Int? = nil, _ message: String) {
        self.code = code
        self.rank = rank
        self.peer = peer
        self.message = message
    }

    public var description: String {
        let whereText = rank.map { "rank \($0): " } ?? ""
        return "\(code): \(whereText)\(message)"
    }
}
