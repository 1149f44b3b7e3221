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

    /// The fraction of the file's pages in the page cache, from mincore(2).
    /// This VM reclaims cache: minutes after a run only a small part of the
    /// file may still be resident, so buffered runs check rather than assume.
    static func residency(_ path: String) -> Double? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0, status.st_size > 0 else { return nil }
        let length = Int(status.st_size)
        guard let map = mmap(nil, length, PROT_READ, MAP_SHARED, fd, 0), map != MAP_FAILED else { return nil }
        defer { munmap(map, length) }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let pages = (length + page - 1) / page
        var vector = [UInt8](repeating: 0, count: pages)
        guard mincore(map, length, &vector) == 0 else { return nil }
        return Double(vector.reduce(0) { $0 + Int($1 & 1) }) / Double(pages)
    }

    /// Warms the file until at least 99% of it is cached; returns the
    /// residency found before and after.
    static func ensureCached(_ path: String) -> (before: Double, after: Double) {
        let before = residency(path) ?? 0
        if before >= 0.99 { return (before, before) }
        warm(path)
        return (before, residency(path) ?? 0)
    }

    /// The filesystem type under `path`, as `findmnt` (or `stat -f`) names it.
    static func filesystem(of path: String) -> String {
        for command in [["findmnt", "-n", "-o", "FSTYPE,SOURCE", "-T", path], ["stat", "-f", "-c", "%T", path]] {
            if let result = try? execute(command, timeout: 10), result.succeeded, !result.stdout.trimmed.isEmpty {
                return result.stdout.trimmed
            }
        }
        return "unknown"
    }
}
