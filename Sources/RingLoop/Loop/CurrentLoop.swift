import Glibc

/// The loop running on the current thread, kept in a pthread key: the
/// backing store of ``EventLoop/current``.
enum CurrentLoop {
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    /// Unretained: a loop is only current while its `runForever` frame keeps it alive.
    static var loop: EventLoop? {
        get {
            guard let raw = pthread_getspecific(key) else { return nil }
            return Unmanaged<EventLoop>.fromOpaque(raw).takeUnretainedValue()
        }
        set {
            pthread_setspecific(key, newValue.map { Unmanaged.passUnretained($0).toOpaque() })
        }
    }
}
