import Glibc

/// A value guarded by a `pthread_mutex_t`.
///
/// Used instead of `Synchronization.Mutex` because on Linux that one is
/// built on raw futexes, which ThreadSanitizer cannot see: every access under
/// it is reported as a race, and the sanitizer run this project keeps in CI
/// would drown in false positives. A pthread mutex costs the same when
/// uncontended (glibc takes the futex fast path).
final class Locked<Value>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    /// Out of line, as the mutex is. Stored inline, a value of no size (the
    /// loop's run-state lock guards `()`) has the object's own address, and
    /// ThreadSanitizer pairs the header read that starts every call, before
    /// the lock, with the last holder's access to the value: a race that is
    /// not there, reported whenever two threads take the lock at once.
    /// Through a pointer there is also no exclusivity check to pay for: the
    /// mutex already makes every access exclusive.
    private let value: UnsafeMutablePointer<Value>

    init(_ value: Value) {
        self.value = .allocate(capacity: 1)
        self.value.initialize(to: value)
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        value.deinitialize(count: 1)
        value.deallocate()
    }

    @inline(__always)
    func withLock<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value.pointee)
    }
}
