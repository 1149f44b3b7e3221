import Glibc

/// An I/O operation that failed: which operation, on which fd or path, and the
/// errno with its symbolic name.
///
/// Match on ``code`` for the common cases:
///
/// ```swift
/// do {
///     let stream = try await SocketStream.connect(host: "127.0.0.1", port: 9)
/// } catch let error as IOError where error.code == .connectionRefused {
///     print("nobody listens there:", error)   // connect(fd 7, 127.0.0.1:9): ECONNREFUSED (Connection refused)
/// }
/// ```
public struct IOError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The cases worth matching on; everything else is ``Code/other``.
    public enum Code: Sendable, Equatable {
        case connectionRefused      // ECONNREFUSED
        case connectionReset        // ECONNRESET
        case brokenPipe             // EPIPE
        case addressInUse           // EADDRINUSE
        case timedOut               // ETIMEDOUT
        case noSuchFile             // ENOENT
        case permissionDenied       // EACCES, EPERM
        case tooManyOpenFiles       // EMFILE, ENFILE
        case badFileDescriptor      // EBADF (for example writing to a read-only fd)
        case invalidArgument        // EINVAL
        /// The descriptor, stream or listener was closed: before the call, or
        /// while the operation was in flight (the detail says which).
        case closed
        /// Host name resolution failed (`getaddrinfo`).
        case nameResolution
        case other
    }

    /// The operation, such as `"connect"` or `"open"`.
    public var operation: String
    /// The errno; `nil` for failures that have none (name resolution).
    public var errno: Errno?
    /// The file descriptor involved, when there was one.
    public var fd: Int32?
    /// The path or address involved, when known.
    public var path: String?
    /// Extra words, for failures an errno does not describe.
    public var detail: String?

    /// An error for `operation`, with what is known of its cause and subject.
    ///
    /// ```swift
    /// throw IOError(operation: "open", errno: Errno(ENOENT), path: "/etc/missing")
    /// // open(/etc/missing): ENOENT (No such file or directory)
    /// ```
    public init(operation: String, errno: Errno?, fd: Int32? = nil, path: String? = nil, detail: String? = nil) {
        self.operation = operation
        self.errno = errno
        self.fd = fd
        self.path = path
        self.detail = detail
    }

    /// The matchable category of this error.
    public var code: Code {
        if let detail, detail.hasPrefix(IOError.closedDetail) { return .closed }
        guard let errno else { return operation == "getaddrinfo" ? .nameResolution : .other }
        switch errno.rawValue {
        case ECONNREFUSED: return .connectionRefused
        case ECONNRESET: return .connectionReset
        case EPIPE: return .brokenPipe
        case EADDRINUSE: return .addressInUse
        case ETIMEDOUT: return .timedOut
        case ENOENT: return .noSuchFile
        case EACCES, EPERM: return .permissionDenied
        case EMFILE, ENFILE: return .tooManyOpenFiles
        case EBADF: return .badFileDescriptor
        case EINVAL: return .invalidArgument
        default: return .other
        }
    }

    /// The peer went away: ECONNRESET, EPIPE or ECONNABORTED (asyncio's
    /// `ConnectionResetError`, `BrokenPipeError` and `ConnectionAbortedError`).
    /// For a server it is a client hanging up, not a fault: load tools such as
    /// wrk end their connections with a reset.
    ///
    /// ```swift
    /// do {
    ///     while try await connection.read(into: buffer) > 0 { try await connection.writeAll(buffer) }
    /// } catch let error as IOError where error.isDisconnect {
    ///     // the client left
    /// }
    /// ```
    public var isDisconnect: Bool {
        guard let errno else { return false }
        return errno.rawValue == ECONNRESET || errno.rawValue == EPIPE || errno.rawValue == ECONNABORTED
    }

    /// Starts the detail of every `.closed` error; ``code`` matches on it.
    static let closedDetail = "the descriptor was closed"

    public var description: String {
        var subject: [String] = []
        if let fd, fd >= 0 { subject.append("fd \(fd)") }  // -1: already closed, says nothing
        if let path { subject.append(path) }
        var text = operation + (subject.isEmpty ? "" : "(\(subject.joined(separator: ", ")))")
        if let errno { text += ": \(errno)" }
        if let detail { text += (errno == nil ? ": " : " — ") + detail }
        return text
    }
}

/// Thrown by ``withTimeout(_:_:)`` when the time ran out first: the analogue
/// of asyncio's `TimeoutError`.
public struct TimeoutError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The limit that expired.
    public var duration: Duration
    public var description: String { "The operation timed out after \(duration)." }
}
