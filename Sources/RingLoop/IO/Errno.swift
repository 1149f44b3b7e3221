import Glibc

/// An operating-system error number with its symbolic name.
///
/// Every RingLoop error that comes from a system call carries one, so a log
/// line reads `ECONNREFUSED (Connection refused)` rather than `111`.
///
/// ```swift
/// let e = Errno(ECONNREFUSED)
/// print(e)          // ECONNREFUSED (Connection refused)
/// ```
public struct Errno: Error, Hashable, Sendable, CustomStringConvertible {
    /// The raw, positive errno value.
    public var rawValue: Int32

    /// Accepts either sign, so a kernel result such as `-EAGAIN` can be passed as is.
    public init(_ rawValue: Int32) { self.rawValue = rawValue == .min ? .max : Swift.abs(rawValue) }

    /// The errno of the calling thread, read right after a failed call.
    public static var current: Errno { Errno(errno) }

    /// The symbolic name, such as `"EAGAIN"`; `"E<number>"` for values not in the table.
    public var name: String { Errno.names[rawValue] ?? "E\(rawValue)" }

    /// The C library's message for this errno.
    public var message: String { String(cString: strerror(rawValue)) }

    public var description: String { "\(name) (\(message))" }

    private static let names: [Int32: String] = [
        EPERM: "EPERM", ENOENT: "ENOENT", ESRCH: "ESRCH", EINTR: "EINTR", EIO: "EIO",
        ENXIO: "ENXIO", E2BIG: "E2BIG", ENOEXEC: "ENOEXEC", EBADF: "EBADF", ECHILD: "ECHILD",
        EAGAIN: "EAGAIN", ENOMEM: "ENOMEM", EACCES: "EACCES", EFAULT: "EFAULT", EBUSY: "EBUSY",
        EEXIST: "EEXIST", EXDEV: "EXDEV", ENODEV: "ENODEV", ENOTDIR: "ENOTDIR", EISDIR: "EISDIR",
        EINVAL: "EINVAL", ENFILE: "ENFILE", EMFILE: "EMFILE", ENOTTY: "ENOTTY", EFBIG: "EFBIG",
        ENOSPC: "ENOSPC", ESPIPE: "ESPIPE", EROFS: "EROFS", EMLINK: "EMLINK", EPIPE: "EPIPE",
        ERANGE: "ERANGE", ENAMETOOLONG: "ENAMETOOLONG", ENOSYS: "ENOSYS", ENOTEMPTY: "ENOTEMPTY",
        ELOOP: "ELOOP", ETIME: "ETIME", ENOTSOCK: "ENOTSOCK", EDESTADDRREQ: "EDESTADDRREQ",
        EMSGSIZE: "EMSGSIZE", EPROTOTYPE: "EPROTOTYPE", ENOPROTOOPT: "ENOPROTOOPT",
        EPROTONOSUPPORT: "EPROTONOSUPPORT", EOPNOTSUPP: "EOPNOTSUPP", EAFNOSUPPORT: "EAFNOSUPPORT",
        EADDRINUSE: "EADDRINUSE", EADDRNOTAVAIL: "EADDRNOTAVAIL", ENETDOWN: "ENETDOWN",
        ENETUNREACH: "ENETUNREACH", ECONNABORTED: "ECONNABORTED", ECONNRESET: "ECONNRESET",
        ENOBUFS: "ENOBUFS", EISCONN: "EISCONN", ENOTCONN: "ENOTCONN", ETIMEDOUT: "ETIMEDOUT",
        ECONNREFUSED: "ECONNREFUSED", EHOSTUNREACH: "EHOSTUNREACH", EALREADY: "EALREADY",
        EINPROGRESS: "EINPROGRESS", ECANCELED: "ECANCELED", EOVERFLOW: "EOVERFLOW",
        EHOSTDOWN: "EHOSTDOWN", ESHUTDOWN: "ESHUTDOWN", ENODATA: "ENODATA",
    ]
}

/// A libc return value in the style of io_uring's completions, so the
/// backends that call libc report results the same way: the value when it
/// is not negative, `-errno` when the call failed.
@inline(__always) func kernelResult(_ rc: Int32) -> Int32 { rc < 0 ? -errno : rc }
@inline(__always) func kernelResult(_ rc: Int) -> Int32 { rc < 0 ? -errno : Int32(truncatingIfNeeded: rc) }
