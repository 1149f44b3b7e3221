import Glibc

/// Which I/O backend an ``EventLoop`` runs on.
///
/// ```swift
/// let loop = try EventLoop(backend: .epoll)   // force epoll
/// let loop2 = try EventLoop()                 // RINGLOOP_BACKEND, else .auto
/// print(loop2.backend)                        // .uring or .epoll: what actually runs
/// ```
///
/// `.auto` sets up io_uring and falls back to epoll when the kernel refuses it
/// (EPERM from `kernel.io_uring_disabled` or seccomp, ENOSYS, ENOMEM, or a
/// missing opcode); ``EventLoop/backendFallbackReason`` says why.
public enum Backend: String, Sendable, CaseIterable, CustomStringConvertible {
    /// io_uring when the kernel allows it, otherwise epoll.
    case auto
    /// Completion-based I/O through io_uring. Fails loudly where unavailable.
    case uring
    /// Readiness-based I/O through epoll, with completions emulated.
    case epoll

    /// The environment variable that overrides the default backend.
    public static let environmentVariable = "RINGLOOP_BACKEND"

    /// The backend a loop uses when none is given: `RINGLOOP_BACKEND` when it
    /// is set to `auto`, `uring` or `epoll`, otherwise `.auto`.
    ///
    /// - Throws: ``EventLoopError/invalidArgument(_:)`` when the variable holds
    ///   anything else, so a typo never silently picks a backend.
    public static func fromEnvironment() throws(EventLoopError) -> Backend {
        let raw = getenv(environmentVariable).map { String(cString: $0) }
        return try parse(environmentValue: raw)
    }

    /// Parses a `RINGLOOP_BACKEND` value; `nil` or empty means `.auto`.
    static func parse(environmentValue raw: String?) throws(EventLoopError) -> Backend {
        guard let raw, !raw.isEmpty else { return .auto }
        guard let backend = Backend(rawValue: raw.lowercased()) else {
            throw .invalidArgument("\(environmentVariable)=\(raw); expected auto, uring or epoll")
        }
        return backend
    }

    public var description: String { rawValue }
}
