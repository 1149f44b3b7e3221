import Glibc
@testable import RingLoop
import Testing

extension AllSuites {
    /// FIFOs, Unix-domain socket paths and /proc files opened as files: the
    /// descriptors whose kernel rules differ from a regular file's.
    @Suite("Special files", .serialized, .checksResources, .timeLimit(.minutes(2)))
    struct SpecialFileTests {
        @Test("opening a FIFO with no reader for writing, or a Unix-domain socket's path, is ENXIO with the reason", arguments: allBackends)
        func noDeviceIsExplained(backend: Backend) async throws {
            let fifo = temporaryPath("enxio-fifo"), socketPath = temporaryPath("enxio.sock")
            try #require(mkfifo(fifo, 0o600) == 0)
            defer { unlink(fifo); unlink(socketPath) }
            let errors = try await onLoop(backend) { _ -> [IOError?] in
                let listener = try await SocketListener.bind(unixPath: socketPath)
                var errors: [IOError?] = []
                for (path, options) in [(fifo, File.Options.write(create: false, truncate: false)), (socketPath, .read)] {
                    do { try await File.open(path, options).close(); errors.append(nil) } catch let error as IOError { errors.append(error) }
                }
                // The helpers open through File.open and say the same.
                do { try await writeFile(fifo, [1]); errors.append(nil) } catch let error as IOError { errors.append(error) }
                try await listener.close()
                return errors
            }
            #expect(errors.map { $0?.errno?.rawValue } == [ENXIO, ENXIO, ENXIO])
            #expect(errors[0]?.description.contains("a FIFO with no reader") == true, "\(String(describing: errors[0]))")
            #expect(errors[1]?.description.contains("SocketStream.connect(unixPath:)") == true, "\(String(describing: errors[1]))")
            #expect(errors[2]?.description.contains("a FIFO with no reader") == true, "\(String(describing: errors[2]))")
            #expect(errors.allSatisfy { $0?.path == fifo || $0?.path == socketPath })
        }

        @Test("a /proc file that refuses pwrite (seq_file: /proc/self/comm) takes writeFile and File.write on both backends",
              arguments: allBackends)
        func procFileWithoutPositionalWrites(backend: Backend) async throws {
            let path = "/proc/self/comm"
            // Plain system calls, outside the loop: the name to restore. (The
            // kernels this runs on refuse pwrite on this file with ESPIPE,
            // which is what the epoll backend's pool has to get around.)
            let fd = open(path, O_RDWR | O_CLOEXEC)
            try #require(fd >= 0)
            var name = [UInt8](repeating: 0, count: 64)
            let length = read(fd, &name, name.count)
            close(fd)
            try #require(length > 1)
            // The test renames its own process: put the name back however it ends.
            defer {
                let fd = open(path, O_WRONLY | O_CLOEXEC)
                _ = write(fd, name, length - 1)
                close(fd)
            }
            let (viaWriteFile, viaFileWrite) = try await onLoop(backend) { _ -> ([UInt8], [UInt8]) in
                try await writeFile(path, Array("rl-proc-one".utf8))
                let first = try await readFile(path)
                let file = try await File.open(path, .write(create: false, truncate: false))
                let buffer = IOBuffer(Array("rl-proc-two".utf8))
                let n = try await file.write(buffer)
                try await file.close()
                #expect(n == buffer.count)
                return (first, try await readFile(path))
            }
            #expect(String(decoding: viaWriteFile, as: UTF8.self) == "rl-proc-one\n")
            #expect(String(decoding: viaFileWrite, as: UTF8.self) == "rl-proc-two\n")
        }

        @Test("a FIFO has no position: positional I/O is ESPIPE on both backends; readAll, writeFile and copyFile take it in order",
              arguments: allBackends)
        func fifoIsAStream(backend: Backend) async throws {
            let fifo = temporaryPath("fifo-stream"), source = temporaryPath("fifo-source"), copy = temporaryPath("fifo-copy")
            try #require(mkfifo(fifo, 0o600) == 0)
            defer { for path in [fifo, source, copy] { unlink(path) } }
            let payload = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
            let (positional, batch, waited, firstCount, firstBytes, end, readBack, copied) = try await onLoop(backend) { loop in
                let file = try await File.open(fifo)
                var positional: [Int32?] = []
                for attempt in 0..<3 {
                    do {
                        switch attempt {
                        case 0: _ = try await file.read(into: try IOBuffer(capacity: 8), at: 0)
                        case 1: _ = try await file.write(IOBuffer([1]), at: 0)
                        default: try await file.writeAll([1], at: 5)
                        }
                    } catch let error as IOError { positional.append(error.errno?.rawValue) }
                }
                let batch = try await file.read(batch: [(try IOBuffer(capacity: 8), 0)])
                // No writer yet: a read waits for the first one (on epoll too,
                // where the non-blocking FIFO would read 0 at once), and reads
                // the end of file once the last writer has gone.
                let buffer = try IOBuffer(capacity: 16)
                let done = Locked(false)
                let early = loop.spawn {
                    defer { done.withLock { $0 = true } }
                    return try await file.read(into: buffer)
                }
                try await loop.sleep(for: .milliseconds(20))
                let waited = !done.withLock { $0 }
                let first = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
                _ = write(first, "x", 1)
                close(first)
                let firstRead = (try await early.value, buffer.withUnsafeBytes { Array($0) })
                let end = try await file.read(into: buffer)
                try await file.close()
                // A new reader: the old one has seen its writer go, so it
                // would read the end of file before the next writer opened.
                let reader = try await File.open(fifo)
                // writeFile into the FIFO while readAll drains it: in order, whole.
                let writer = loop.spawn { try await writeFile(fifo, payload) }
                let readBack = try await reader.readAll()
                try await writer.value
                try await reader.close()
                // copyFile from the FIFO while a writer fills it.
                try await writeFile(source, payload)
                let feeder = loop.spawn {
                    // Until copyFile has opened the reading end, opening the
                    // FIFO to write fails with ENXIO.
                    for _ in 0..<500 {
                        do { return try await copyFile(from: source, to: fifo) } catch let error as IOError where error.errno?.rawValue == ENXIO {}
                        try await loop.sleep(for: .milliseconds(2))
                    }
                    Issue.record("the FIFO's reading end never opened")
                }
                try await copyFile(from: fifo, to: copy)
                try await feeder.value
                return (positional, batch, waited, firstRead.0, firstRead.1, end, readBack, try await readFile(copy))
            }
            #expect(positional == [ESPIPE, ESPIPE, ESPIPE])
            #expect(waited, "a read of a FIFO with no writer yet returned at once")
            #expect(firstCount == 1 && firstBytes == Array("x".utf8))
            #expect(end == 0, "the writer's close is the end of file")
            if case .failure(let error) = batch.first { #expect(error.errno?.rawValue == ESPIPE) } else { Issue.record("a positional batch read of a FIFO succeeded") }
            #expect(readBack == payload)
            #expect(copied == payload)
        }
    }
}
