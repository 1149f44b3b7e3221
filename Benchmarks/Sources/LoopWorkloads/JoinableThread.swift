import Glibc
import RingLoop

/// A joinable pthread, without Foundation.
public struct JoinableThread {
    let handle: pthread_t

    final class Body: @unchecked Sendable {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }

    public static func start(_ body: @escaping @Sendable () -> Void) throws -> JoinableThread {
        let box = Unmanaged.passRetained(Body(body))
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { raw in
            Unmanaged<Body>.fromOpaque(raw!).takeRetainedValue().run()
            return nil
        }, box.toOpaque())
        guard rc == 0 else {
            box.release()
            throw Errno(rc)
        }
        return JoinableThread(handle: thread)
    }

    public func join() { pthread_join(handle, nil) }
}
