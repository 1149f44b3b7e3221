import Foundation
import Glibc
import Testing

/// C/copy_methods.c, the copy_file_range-against-splice measurement quoted in
/// BENCHMARKS.md: it must build and both methods must copy byte for byte.
@Suite("The copy-methods measurement tool", .serialized, .timeLimit(.minutes(1)))
struct CopyMethodsTests {
    @Test("both methods copy a 3 MiB + 7 byte file exactly and report their times", arguments: ["cfr", "splice"])
    func copies(method: String) throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let directory = NSTemporaryDirectory() + "copy-methods-\(getpid())-\(method)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let binary = directory + "/copy_methods"
        try run(["cc", "-O2", "-Wall", "-Werror", "-o", binary, root.appendingPathComponent("C/copy_methods.c").path])

        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        let source = Data((0..<(3 * 1_048_576 + 7)).map { _ -> UInt8 in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 33)
        })
        try source.write(to: URL(fileURLWithPath: directory + "/in"))
        let output = try run([binary, method, directory + "/in", directory + "/out"])
        #expect(try Data(contentsOf: URL(fileURLWithPath: directory + "/out")) == source)
        let report = try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
        #expect(report["method"] as? String == method)
        #expect(((report["seconds"] as? NSNumber)?.doubleValue ?? -1) >= 0)
    }

    @Test("a bad method is a usage error, exit status 2")
    func badMethod() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let binary = NSTemporaryDirectory() + "copy_methods-usage-\(getpid())"
        defer { unlink(binary) }
        try run(["cc", "-O2", "-o", binary, root.appendingPathComponent("C/copy_methods.c").path])
        #expect(throws: ToolFailed.self) { try run([binary, "rsync", "/dev/null", "/dev/null"]) }
    }

    struct ToolFailed: Error { let status: Int32 }

    /// Runs a command to its end; its standard output. Throws on failure.
    @discardableResult
    private func run(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw ToolFailed(status: process.terminationStatus) }
        return String(decoding: data, as: UTF8.self)
    }
}
