import Glibc
@testable import RingLoop
import Testing

/// A pipe whose read end is opened as `/dev/stdin` would be (through
/// /proc/self/fd), and whose write end the test writes with plain calls.
private struct TestPipe {
    let readPath: String
    let writeEnd: Int32
    private let readEnd: Int32

    init() throws {
        var ends: [Int32] = [0, 0]
        try #require(pipe(&ends) == 0)
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        readEnd = ends[0]
        writeEnd = ends[1]
        readPath = "/proc/self/fd/\(ends[0])"
    }

    /// Closes the test's own read end once the loop has opened its copy.
    func closeReadEnd() { close(readEnd) }

    func write(_ text: String) {
        let bytes = Array(text.utf8)
        #expect(Glibc.write(writeEnd, bytes, bytes.count) == bytes.count)
    }

    func closeWriteEnd() { close(writeEnd) }
}

extension AllSuites {
    /// FileReader: asyncio's StreamReader calls over files, pipes and FIFOs.
    @Suite("File readers", .serialized, .checksResources, .timeLimit(.minutes(2)))
    struct FileReaderTests {
        @Test("lines of a file across chunk boundaries, CRLF, empty lines, a last line without its newline and bad UTF-8",
              arguments: allBackends)
        func linesOfAFile(backend: Backend) async throws {
            let path = temporaryPath("lines")
            defer { unlink(path) }
            let content = Array("first\n\nthird line\r\n".utf8) + [0x66, 0xFF, 0x0A]
                + (0..<500).flatMap { Array("line \($0) \(String(repeating: "x", count: $0 % 37))\n".utf8) }
                + Array("no newline at the end".utf8)
            let expected = content.split(separator: 0x0A, omittingEmptySubsequences: false).map(Array.init)
            let (lines, bytes, viaFile) = try await onLoop(backend) { _ -> ([String], [[UInt8]], [String]) in
                try await writeFile(path, content)
                let file = try await File.open(path)
                // A chunk of 7 bytes: lines straddle reads, and the queue compacts.
                var lines: [String] = []
                for try await line in try FileReader(file, chunkSize: 7).lines { lines.append(line) }
                try await file.close()
                let again = try await File.open(path)
                var bytes: [[UInt8]] = []
                for try await line in try FileReader(again, chunkSize: 64).byteLines { bytes.append(line) }
                try await again.close()
                let third = try await File.open(path)
                var viaFile: [String] = []
                for try await line in third.lines { viaFile.append(line) }
                try await third.close()
                return (lines, bytes, viaFile)
            }
            #expect(bytes == expected)
            #expect(lines == expected.map { String(decoding: $0, as: UTF8.self) })
            #expect(lines[2] == "third line\r")
            #expect(lines[3] == "f\u{FFFD}")
            #expect(lines.last == "no newline at the end")
            #expect(viaFile == lines)
        }

        @Test("readUntil, readExactly and read(upTo:) share one queue; an early end is IncompleteReadError with the bytes",
              arguments: allBackends)
        func mixedReads(backend: Backend) async throws {
            let path = temporaryPath("mixed")
            defer { unlink(path) }
            let body = pattern(3000)
            let content = Array("Content-Length: 3000\r\nX: y\r\n\r\n".utf8) + body + Array("tail".utf8)
            try await onLoop(backend) { _ in
                try await writeFile(path, content)
                let file = try await File.open(path)
                let reader = try FileReader(file, chunkSize: 5)
                #expect(!reader.isAtEOF)
                let header = try await reader.readUntil(anyOf: [Array("\n\n".utf8), Array("\r\n\r\n".utf8)])
                #expect(header == Array("Content-Length: 3000\r\nX: y\r\n\r\n".utf8))
                #expect(try await reader.readExactly(3000) == body)
                #expect(try await reader.read(upTo: 2) == Array("ta".utf8))
                do {
                    _ = try await reader.readExactly(10)
                    Issue.record("readExactly past the end returned")
                } catch let error as IncompleteReadError {
                    #expect(error.partial == Array("il".utf8))
                    #expect(error.expected == 10)
                    #expect(error.operation == "readExactly")
                }
                #expect(reader.isAtEOF)
                #expect(try await reader.read(upTo: 10) == [])
                #expect(try await reader.readLine() == nil)
                do {
                    _ = try await reader.readUntil(Array("x".utf8))
                    Issue.record("readUntil past the end returned")
                } catch let error as IncompleteReadError {
                    #expect(error.partial == [] && error.expected == nil)
                }
                try await file.close()
            }
        }

        @Test("a line longer than the limit throws LimitOverrunError naming the path, and its bytes stay readable",
              arguments: allBackends)
        func limitOverrun(backend: Backend) async throws {
            let path = temporaryPath("overrun")
            defer { unlink(path) }
            let long = String(repeating: "a", count: 100)
            try await onLoop(backend) { _ in
                try await writeFile(path, Array("\(long)\nshort\n".utf8))
                let file = try await File.open(path)
                let reader = try FileReader(file, limit: 64, chunkSize: 16)
                do {
                    _ = try await reader.readLine()
                    Issue.record("a 100-byte line under a 64-byte limit was returned")
                } catch let error as LimitOverrunError {
                    #expect(error.limit == 64 && error.operation == "readLine")
                    #expect(error.path == path)
                    #expect(error.description.contains(path), "\(error)")
                }
                // Nothing was taken: the long line comes out another way, then the next line.
                var rest: [UInt8] = []
                while rest.count < 101 { rest += try await reader.read(upTo: 101 - rest.count) }
                #expect(rest == Array("\(long)\n".utf8))
                #expect(try await reader.readLine() == "short")
                #expect(try await reader.readLine() == nil)
                try await file.close()
            }
        }

        @Test("lines from a pipe opened as /dev/stdin is: partial writes wait, the writer's close ends them",
              arguments: allBackends)
        func pipeLines(backend: Backend) async throws {
            let pipe = try TestPipe()
            let lines = try await onLoop(backend) { loop -> [String] in
                let file = try await File.open(pipe.readPath)
                pipe.closeReadEnd()
                let writer = loop.spawn {
                    for piece in ["hel", "lo\nwor", "ld\n", "", "last"] {
                        pipe.write(piece)
                        try await loop.sleep(for: .milliseconds(5))
                    }
                    pipe.closeWriteEnd()
                }
                var lines: [String] = []
                for try await line in try FileReader(file).lines { lines.append(line) }
                try await writer.value
                try await file.close()
                return lines
            }
            #expect(lines == ["hello", "world", "last"])
        }

        @Test("a cancelled read loses no byte; a second reader meanwhile is EBUSY", arguments: allBackends)
        func cancelAndBusy(backend: Backend) async throws {
            let pipe = try TestPipe()
            defer { pipe.closeWriteEnd() }
            try await onLoop(backend) { loop in
                let file = try await File.open(pipe.readPath)
                pipe.closeReadEnd()
                let reader = try FileReader(file)
                pipe.write("par")
                let waiting = loop.spawn { try await reader.readLine() }
                try await loop.sleep(for: .milliseconds(20))
                do {
                    _ = try await reader.readLine()
                    Issue.record("a second reader was let in")
                } catch let error as IOError {
                    #expect(error.errno?.rawValue == EBUSY, "\(error)")
                    #expect(error.path == pipe.readPath)
                }
                waiting.cancel()
                await #expect(throws: CancellationError.self) { try await waiting.value }
                pipe.write("tial\nnext\n")
                #expect(try await reader.readLine() == "partial")
                #expect(try await reader.readLine() == "next")
                try await file.close()
            }
        }

        @Test("bad arguments are IOErrors naming what was wrong", arguments: allBackends)
        func badArguments(backend: Backend) async throws {
            let path = temporaryPath("bad")
            defer { unlink(path) }
            let errors = try await onLoop(backend) { _ -> [IOError] in
                try await writeFile(path, Array("abc\n".utf8))
                let file = try await File.open(path)
                var errors: [IOError] = []
                for make in [{ try FileReader(file, limit: 0) }, { try FileReader(file, chunkSize: 0) }] {
                    do { _ = try make() } catch let error as IOError { errors.append(error) }
                }
                let reader = try FileReader(file)
                do { _ = try await reader.readExactly(-1) } catch let error as IOError { errors.append(error) }
                do { _ = try await reader.read(upTo: 0) } catch let error as IOError { errors.append(error) }
                do { _ = try await reader.readUntil([]) } catch let error as IOError { errors.append(error) }
                #expect(try await reader.readLine() == "abc", "the failed calls took nothing")
                try await file.close()
                // A closed file: the read says so.
                let closed = try FileReader(file)
                do { _ = try await closed.readLine() } catch let error as IOError { errors.append(error) }
                return errors
            }
            #expect(errors.count == 6)
            #expect(errors.allSatisfy { $0.path == path })
            #expect(errors.prefix(5).allSatisfy { $0.errno?.rawValue == EINVAL })
            #expect(errors[0].description.contains("limit must be at least 1 byte, got 0"), "\(errors[0])")
            #expect(errors[1].description.contains("chunkSize must be at least 1 byte, got 0"), "\(errors[1])")
            #expect(errors[2].description.contains("count must not be negative"), "\(errors[2])")
            #expect(errors[3].description.contains("maxBytes must be positive"), "\(errors[3])")
            #expect(errors[4].description.contains("separator is empty"), "\(errors[4])")
            #expect(errors[5].errno?.rawValue == EBADF, "\(errors[5])")
        }
    }
}
