import Glibc

/// The process's limit on open descriptors (`RLIMIT_NOFILE`), which caps
/// how many connections a server can hold.
///
/// Most shells start programs with a soft limit of 1,024 under a much higher
/// hard one. A server past it gets EMFILE on accept: RingLoop backs off and
/// logs "accept failed; retrying with backoff" (Docs/Reliability.md), but
/// connects beyond the limit wait. Go's runtime raises the soft limit to
/// the hard one at start; asyncio and SwiftNIO leave it to the program.
/// RingLoop leaves it to the program too, and this is the one call to make:
///
/// ```swift
/// try DescriptorLimit.raiseToMaximum()      // e.g. 1,024 → 524,288
/// try EventLoop.run { … }
/// ```
///
/// Descriptor numbers above 1,023 cannot go into a `select(2)` set
/// (`FD_SETSIZE`): raise the limit only in a process that does not use
/// `select`, as RingLoop does not.
public enum DescriptorLimit {
    /// The soft limit in force: how many descriptors the process may have
    /// open at once.
    public static var current: Int { Int(clamping: read().rlim_cur) }

    /// The hard limit: the most the soft one can be raised to without
    /// privilege.
    public static var maximum: Int { Int(clamping: read().rlim_max) }

    /// Raises the soft limit to the hard one and returns the limit now in
    /// force. Nothing changes when it is there already.
    ///
    /// - Throws: ``IOError`` naming `setrlimit(RLIMIT_NOFILE)` and the errno.
    @discardableResult
    public static func raiseToMaximum() throws(IOError) -> Int {
        var limit = read()
        guard limit.rlim_cur < limit.rlim_max else { return Int(clamping: limit.rlim_cur) }
        limit.rlim_cur = limit.rlim_max
        guard setrlimit(resource, &limit) == 0 else {
            throw IOError(operation: "setrlimit(RLIMIT_NOFILE)", errno: .current,
                          detail: "raising the soft limit to the hard limit, \(limit.rlim_max)")
        }
        return Int(clamping: limit.rlim_cur)
    }

    private static let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)

    private static func read() -> rlimit {
        var limit = rlimit()
        // getrlimit cannot fail for a valid resource and a valid pointer.
        _ = getrlimit(resource, &limit)
        return limit
    }
}
