import Glibc
@testable import RingLoop
import Testing

extension AllSuites {
    /// The main actor on a loop that runs on the main thread, as in a
    /// program's top-level code. The test runner's own main thread is
    /// libdispatch's, so this runs a built program (`main-actor-check`).
    @Suite("The main actor on a loop on the main thread", .serialized, .timeLimit(.minutes(1)),
           .enabled(if: Child.productExists("main-actor-check"),
                    "needs the main-actor-check product next to the test bundle (swift build --build-tests)"))
    struct MainActorTests {
        @Test("top-level globals, MainActor.run, @MainActor functions doing loop I/O and handlers: none waits forever",
              arguments: allBackends)
        func mainActorServed(backend: Backend) throws {
            let (status, output) = try Child(["main-actor-check"], environment: ["RINGLOOP_BACKEND": backend.rawValue])
                .finish(limit: .seconds(20))
            #expect(status == 0, "\(output)")
            let expected = [
                "backend \(backend)",
                "global 1",
                "main thread true",            // main-actor code runs on the loop's thread
                "main-actor read 16",          // and uses the loop's I/O there
                "task value 10",
                "hops 1001",
                "queued before the loop true", // a job waiting since before the loop ran
                "zero timeout timed out",      // a timer that fires before its wait is recorded
                "request and reply 300",       // a serve handler isolated to the main actor, each
                                               // of its waits woken however late it is recorded
                "handler main actor iterated one", // for-await over its lines there
                "handler main actor iterated two",
                "second loop 1001",            // a later loop on the main thread serves it too
                "unclosed loop 1002",          // and one dropped without close()
                "dropped",                     // whose deinit closed it
            ]
            #expect(output.split(separator: "\n").map(String.init) == expected, "\(output)")
        }

        @Test("a loop on another thread does not touch the main queue", arguments: allBackends)
        func otherThreadsHaveNoBridge(backend: Backend) async throws {
            let made = try await onLoop(backend) { loop in loop.mainActorBridge != nil }
            #expect(!made, "only the main thread may drain libdispatch's main queue")
        }
    }
}
