import CUring

/// A point on the loop's monotonic clock (`CLOCK_MONOTONIC`), in nanoseconds.
///
/// This is what ``EventLoop/time`` returns and what ``EventLoop/callAt(_:_:)``
/// takes: the analogue of asyncio's `loop.time()`. It is a plain integer so the
/// timer heap compares deadlines without any `Duration` arithmetic.
///
/// ```swift
/// let deadline = loop.time + .milliseconds(250)
/// try loop.callAt(deadline) { print("a quarter second later") }
/// ```
public struct LoopInstant: Comparable, Hashable, Sendable, CustomStringConvertible {
    /// Nanoseconds since an arbitrary, fixed point (boot, on Linux).
    public var nanoseconds: UInt64

    /// The instant `nanoseconds` after the clock's fixed point (compare
    /// ``now``'s ``nanoseconds``).
    @inlinable
    public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }

    /// The current monotonic time.
    public static var now: LoopInstant { LoopInstant(nanoseconds: cu_monotonic_ns()) }

    public static func < (lhs: LoopInstant, rhs: LoopInstant) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    /// Moves the instant by `duration`, clamping at the clock's ends instead of trapping.
    public static func + (lhs: LoopInstant, rhs: Duration) -> LoopInstant {
        let delta = rhs.clampedNanoseconds
        if delta >= 0 {
            let (sum, overflow) = lhs.nanoseconds.addingReportingOverflow(UInt64(delta))
            return LoopInstant(nanoseconds: overflow ? .max : sum)
        }
        let magnitude = delta.magnitude
        return LoopInstant(nanoseconds: lhs.nanoseconds > magnitude ? lhs.nanoseconds - magnitude : 0)
    }

    /// Moves the instant back by `duration`, clamping as `+` does.
    public static func - (lhs: LoopInstant, rhs: Duration) -> LoopInstant { lhs + (.zero - rhs) }

    /// The signed distance from `rhs` to `lhs`.
    public static func - (lhs: LoopInstant, rhs: LoopInstant) -> Duration {
        if lhs.nanoseconds >= rhs.nanoseconds {
            return .nanoseconds(Int64(clamping: lhs.nanoseconds - rhs.nanoseconds))
        }
        return .zero - .nanoseconds(Int64(clamping: rhs.nanoseconds - lhs.nanoseconds))
    }

    public var description: String {
        let s = Double(nanoseconds) / 1e9
        return "LoopInstant(\(s)s)"
    }
}

extension Duration {
    /// The duration in whole nanoseconds, clamped to `Int64`'s range.
    var clampedNanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (secNs, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        let (total, overflow2) = secNs.addingReportingOverflow(attoseconds / 1_000_000_000)
        if overflow2 { return seconds < 0 ? .min : .max }
        return total
    }
}
