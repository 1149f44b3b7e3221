import Glibc
@testable import RingLoop
import Testing

extension AllSuites {
    @Suite("Vectored file I/O", .serialized, .checksResources, .timeLimit(.minutes(1)))
    struct VectoredFileTests {
        @Test("writev then readv across three buffers; an empty vector is an error naming the file", arguments: allBackends)
        func vectored(backend: Backend) async throws {
            let path = temporaryPath("vec")
            defer { unlink(path) }
            let (written, read, parts) = try await onLoop(backend) { _ -> (Int, Int, [[UInt8]]) in
                let file = try await File.open(path, .readWrite(create: true, truncate: true))
                let written = try await file.write([IOBuffer(Array("abc".utf8)), IOBuffer(Array("defg".utf8)), IOBuffer(Array("h".utf8))], at: 0)
                let targets = [try IOBuffer(capacity: 2), try IOBuffer(capacity: 5), try IOBuffer(capacity: 10)]
                let read = try await file.read(into: targets, at: 0)
                do {
                    _ = try await file.read(into: [], at: 0)
                    Issue.record("an empty vector was accepted")
                } catch let error as IOError {
                    #expect(error.code == .invalidArgument && error.path == path, "\(error)")
                }
                try await file.close()
                return (written, read, targets.map(\.bytes))
            }
            #expect(written == 8)
            #expect(read == 8)
            #expect(parts == [Array("ab".utf8), Array("cdefg".utf8), Array("h".utf8)])
        }
    }
}
