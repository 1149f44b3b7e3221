import Glibc
@testable import RingLoop
import Testing

extension AllSuites {
    /// asyncio's add_reader / add_writer on descriptors the application owns.
    @Suite("Readers and writers", .serialized, .checksResources, .timeLimit(.minutes(1)))
    struct ReaderWriterTests {
        /// A non-blocking, close-on-exec pipe.
        static func nonblockingPipe() throws -> [Int32] {
            var p: [Int32] = [-1, -1]
            guard pipe(&p) == 0 else { throw Errno.current }
            for fd in p {
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            }
            return p
        }

        /// Lets the loop run a few short sleeps, so ready watches get their callbacks.
        static func settle(_ loop: EventLoop) async throws {
            for _ in 0..<5 { try await loop.sleep(for: .milliseconds(2)) }
        }

        @Test("a reader is called while its descriptor is readable (level-triggered), and not after removeReader, even from its own callback",
              arguments: allBackends)
        func readerIsLevelTriggered(backend: Backend) async throws {
            let p = try Self.nonblockingPipe()
            defer { close(p[0]); close(p[1]) }
            let (calls, left, removed, removedAgain, secondReads) = try await onLoop(backend) { [p] loop -> (Int, Int, Bool, Bool, [UInt8]) in
                let calls = Box(0)
                let removed = Box(false)
                try loop.addReader(p[0]) {
                    var byte: UInt8 = 0
                    _ = read(p[0], &byte, 1)   // one byte per call: the rest keeps it readable
                    calls.value += 1
                    if calls.value == 5 { removed.value = try loop.removeReader(p[0]) }
                }
                try await Self.settle(loop)
                #expect(calls.value == 0, "called with nothing to read")
                _ = write(p[1], Array("0123456789".utf8), 10)
                try await Self.settle(loop)
                let removedAgain = try loop.removeReader(p[0])
                // Five bytes are still there: a new reader is called for them.
                var got: [UInt8] = []
                try loop.addReader(p[0]) {
                    var buffer = [UInt8](repeating: 0, count: 64)
                    let n = read(p[0], &buffer, 64)
                    if n > 0 { got += buffer.prefix(n) }
                }
                try await Self.settle(loop)
                #expect(try loop.removeReader(p[0]))
                var probe: UInt8 = 0
                return (calls.value, read(p[0], &probe, 1), removed.value, removedAgain, got)
            }
            #expect(calls == 5, "the reader ran after it was removed, or not once per readable round")
            #expect(removed)
            #expect(!removedAgain, "removeReader of a removed reader said it removed one")
            #expect(secondReads == Array("56789".utf8))
            #expect(left == -1, "bytes were left unread")
        }

        @Test("a writer is called while writable, beside a reader on the other end; replacing a callback; a throwing callback is reported and the watch stays",
              arguments: allBackends)
        func writerAndReader(backend: Backend) async throws {
            struct Oops: Error {}
            var s: [Int32] = [-1, -1]
            try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &s) == 0)
            defer { close(s[0]); close(s[1]) }
            let (writes, received, first, second, reports) = try await onLoop(backend) { [s] loop -> (Int, [UInt8], Int, Int, [String]) in
                let reports = Box<[String]>([])
                loop.setExceptionHandler { _, context in reports.value.append(context.message) }
                let writes = Box(0)
                try loop.addWriter(s[0]) {
                    writes.value += 1
                    _ = write(s[0], Array("w\(writes.value)".utf8), 2)
                    if writes.value == 3 { try loop.removeWriter(s[0]) }
                }
                var received: [UInt8] = []
                let first = Box(0), second = Box(0)
                try loop.addReader(s[1]) { first.value += 1 }
                try loop.addReader(s[1]) {   // replaces the first callback
                    second.value += 1
                    var buffer = [UInt8](repeating: 0, count: 64)
                    let n = read(s[1], &buffer, 64)
                    if n > 0 { received += buffer.prefix(n) }
                    if second.value == 1 { throw Oops() }
                }
                while received.count < 6 { try await loop.sleep(for: .milliseconds(1)) }
                try await Self.settle(loop)
                #expect(try loop.removeReader(s[1]))
                return (writes.value, received, first.value, second.value, reports.value)
            }
            #expect(writes == 3)
            #expect(received == Array("w1w2w3".utf8))
            #expect(first == 0, "the replaced callback ran")
            #expect(second >= 2, "the reader stopped after its callback threw")
            #expect(reports.count == 1 && reports.first?.contains("reader callback of descriptor \(s[1])") == true, "\(reports)")
        }

        @Test("a reader added before the loop runs is called once it runs", arguments: allBackends)
        func addedBeforeRunning(backend: Backend) async throws {
            let p = try Self.nonblockingPipe()
            defer { close(p[0]); close(p[1]) }
            let got = try await onNewThread { () -> [UInt8] in
                let loop = try EventLoop(backend: backend)
                defer {
                    try? loop.close()
                    expectClosedClean(loop)
                }
                var got: [UInt8] = []
                try loop.addReader(p[0]) {
                    var byte: UInt8 = 0
                    if read(p[0], &byte, 1) == 1 { got.append(byte) }
                    if got.count == 3 { loop.stop() }
                }
                try loop.callLater(.milliseconds(5)) { _ = write(p[1], "abc", 3) }
                try loop.callLater(.seconds(10)) { loop.stop() }   // a bound, should the reader never run
                try loop.runForever()
                return got
            }
            #expect(got == Array("abc".utf8))
        }

        @Test("what cannot be watched is refused, naming the descriptor: not open, a regular file, a directory; and from another thread",
              arguments: allBackends)
        func badDescriptors(backend: Backend) async throws {
            let path = temporaryPath("watched-file")
            let file = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
            let directory = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            defer { close(file); close(directory); unlink(path) }
            let (errors, offLoop) = try await onLoop(backend) { loop -> ([IOError?], EventLoopError?) in
                var errors: [IOError?] = []
                for (fd, reader) in [(Int32(-1), true), (Int32(1_000_000), false), (file, true), (directory, false)] {
                    do {
                        if reader { try loop.addReader(fd) {} } else { try loop.addWriter(fd) {} }
                        errors.append(nil)
                    } catch let error as IOError { errors.append(error) }
                }
                let offLoop = try await loop.offload { () -> EventLoopError? in
                    do { try loop.addReader(0) {}; return nil } catch let error as EventLoopError { return error } catch { return nil }
                }
                #expect(try !loop.removeReader(file), "a refused reader was installed")
                return (errors, offLoop)
            }
            #expect(errors.map { $0?.errno?.rawValue } == [EBADF, EBADF, EPERM, EPERM])
            #expect(errors.map { $0?.fd } == [-1, 1_000_000, file, directory])
            #expect(errors[2]?.description.contains("read and write it with File") == true, "\(String(describing: errors[2]))")
            #expect(offLoop == .wrongThread(operation: "addReader"))
        }

        @Test("a reader left on a number closed without removeReader is replaced when the number comes back as another file",
              arguments: allBackends)
        func closedWithoutRemove(backend: Backend) async throws {
            let (calledNew, calledOld, reused) = try await onLoop(backend) { loop -> (Bool, Int, Bool) in
                let a = try Self.nonblockingPipe()
                let calledOld = Box(0)
                try loop.addReader(a[0]) { calledOld.value += 1 }
                try await Self.settle(loop)   // its wait is under way
                close(a[0]); close(a[1])
                let b = try Self.nonblockingPipe()
                let calledNew = Box(false)
                try loop.addReader(b[0]) {
                    var byte: UInt8 = 0
                    _ = read(b[0], &byte, 1)
                    calledNew.value = true
                }
                try await Self.settle(loop)
                _ = write(b[1], "z", 1)
                for _ in 0..<500 where !calledNew.value { try await loop.sleep(for: .milliseconds(1)) }
                try loop.removeReader(b[0])
                close(b[0]); close(b[1])
                return (calledNew.value, calledOld.value, b[0] == a[0])
            }
            if !reused { Issue.record("the test needs the number reused; it was not") }
            #expect(calledNew, "the reader of the new file was never called: the old watch was kept")
            #expect(calledOld == 0)
        }

        @Test("a number reused after removeReader and close is watched afresh; closing the loop ends the watches and leaves the descriptors open",
              arguments: allBackends)
        func reusedNumberAndLoopClose(backend: Backend) async throws {
            let (fresh, reused, kept) = try await onLoop(backend) { loop -> (Bool, Bool, [Int32]) in
                let a = try Self.nonblockingPipe()
                let seen = Box(0)
                try loop.addReader(a[0]) {
                    var buffer = [UInt8](repeating: 0, count: 8)
                    _ = read(a[0], &buffer, 8)
                    seen.value += 1
                }
                try await Self.settle(loop)   // registered by a wait that blocks
                _ = write(a[1], "x", 1)
                while seen.value == 0 { try await loop.sleep(for: .milliseconds(1)) }
                // Removed, closed and the number reused at once, before the
                // watch's task has unwound.
                try loop.removeReader(a[0])
                close(a[0]); close(a[1])
                // The lowest free numbers come back: the same ones.
                let b = try Self.nonblockingPipe()
                let fresh = Box(false)
                try loop.addReader(b[0]) { fresh.value = true }
                try await Self.settle(loop)   // waiting now, not finding "y" at once
                _ = write(b[1], "y", 1)
                for _ in 0..<500 where !fresh.value { try await loop.sleep(for: .milliseconds(1)) }
                // Left installed: the loop's close must end it.
                try loop.addWriter(b[1]) {}
                return (fresh.value, b[0] == a[0], b)
            }
            defer { close(kept[0]); close(kept[1]) }
            #expect(fresh, "a reader on a reused descriptor number was never called")
            if !reused { Issue.record("the test needs the number reused; it was not (\(kept))") }
            #expect(fcntl(kept[0], F_GETFD) != -1 && fcntl(kept[1], F_GETFD) != -1, "closing the loop closed a watched descriptor")
        }
    }
}
