/// The error Skein's task runtime throws: a code, what it is about (task, object, function), and a
/// message that says what went wrong and the likely cause.
public struct RuntimeError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is; new codes can be added without breaking users.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Sendable {
            case unregisteredFunction, wrongArgumentType, foreignReference, freedObject, dependencyCycle, taskFailed,
                workerLost, timeout, shutDown
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// `submit(named:)` named no function registered on this runtime.
        public static let unregisteredFunction = Code(.unregisteredFunction)
        /// An argument (or an awaited ref) does not have the type the function (or `get`) expects.
        public static let wrongArgumentType = Code(.wrongArgumentType)
        /// A ref made by another runtime was passed to this one.
        public static let foreignReference = Code(.foreignReference)
        /// The object was freed: no ref to it remained, or the runtime dropped it.
        public static let freedObject = Code(.freedObject)
        /// A wait that can never end: an actor call waits for a result that only a later call of the
        /// same actor (or work queued behind it) can produce.
        public static let dependencyCycle = Code(.dependencyCycle)
        /// The task threw; `underlying` is its error, `task` its name.
        public static let taskFailed = Code(.taskFailed)
        /// The worker running the task (or holding the object) was lost and retries are spent.
        public static let workerLost = Code(.workerLost)
        /// A `get` or `wait` passed its timeout.
        public static let timeout = Code(.timeout)
        /// The runtime was shut down.
        public static let shutDown = Code(.shutDown)

        public var description: String { value.rawValue }
    }

    public let code: Code
    /// The name of the task the error is about, when there is one.
    public let task: String?
    /// The error the task threw, for `.taskFailed`.
    public let underlying: (any Error)?
    public let message: String

    public init(_ code: Code, task: String? = nil, underlying: (any Error)? = nil, _ message: String) {
        self.code = code
        self.task = task
        self.underlying = underlying
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
