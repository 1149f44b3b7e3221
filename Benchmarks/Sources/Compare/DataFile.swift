import Foundation

/// The 1 GiB file the file workloads read. Written once with incompressible,
/// non-zero data (a sparse or zero file would read faster than a real one),
/// then reused while its size is right.
enum DataFile {
    static let size: Int64 = 1 << 30

    static func prepare(at path: String, log: (String) -> Void) throws {
        if let attributes = try? FileManager.default.attributesOfItem(atPath: path),
           (attributes[.size] as? NSNumber)?.int64Value == size {
            return
        }
        log("writing the 1 GiB data file \(path)")
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw CompareError("cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        var chunk = [UInt64](repeating: 0, count: 1 << 17)  // 1 MiB
        for _ in 0..<(size >> 20) {
            for i in chunk.indices {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                chunk[i] = state
            }
            let written = chunk.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard written == 1 << 20 else {
                let reason = written < 0 ? String(cString: strerror(errno)) : "short write"
                unlink(path)
                throw CompareError("cannot write \(path): \(reason)")
            }
        }
        guard fsync(fd) == 0 else { throw CompareError("cannot fsync \(path): \(String(cString: strerror(errno)))") }
    }

    /// Reads the whole file once so buffered workloads start from a warm page cache.
    static func warm(_ path: String) {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while buffer.withUnsafeMutableBytes({ read(fd, $0.baseAddress, $0.count) }) > 0 {}
    }
}
