import Foundation

/// A cgroup per measured server, so its CPU time is counted whole: cgroup
/// accounting keeps the time of threads that have exited (io_uring's io-wq
/// workers come and go between two schedstat readings) and charges what ran
/// in the server's context. cgroup v2 (`cpu.stat`) where mounted, else v1's
/// cpuacct; nil where neither is writable (not root, a container without
/// delegation), and the load client falls back to schedstat.
struct CPUAccounting {
    /// The directory new groups are made in.
    let root: String

    static func detect() -> CPUAccounting? {
        let manager = FileManager.default
        let candidates = [
            ("/sys/fs/cgroup", "cgroup.controllers"),          // pure v2
            ("/sys/fs/cgroup/unified", "cgroup.controllers"),  // hybrid: v2 beside v1
            ("/sys/fs/cgroup/cpuacct", "cpuacct.usage"),       // v1
        ]
        for (path, marker) in candidates where manager.fileExists(atPath: "\(path)/\(marker)") {
            let root = "\(path)/ringloop-compare-\(getpid())"
            if (try? manager.createDirectory(atPath: root, withIntermediateDirectories: true)) != nil {
                return CPUAccounting(root: root)
            }
        }
        return nil
    }

    /// A fresh group holding `pid` (all its threads); nil if the move failed.
    func group(for pid: pid_t, name: String) -> String? {
        let path = "\(root)/\(name)"
        guard (try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)) != nil else { return nil }
        do {
            try "\(pid)\n".write(toFile: "\(path)/cgroup.procs", atomically: false, encoding: .utf8)
            return path
        } catch {
            rmdir(path)
            return nil
        }
    }

    /// Removes a group once its process has been reaped.
    func remove(_ path: String) { rmdir(path) }

    func removeAll() {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [] {
            if FileManager.default.fileExists(atPath: "\(root)/\(name)/cgroup.procs") { rmdir("\(root)/\(name)") }
        }
        rmdir(root)
    }
}

/// CPU pinning with taskset: the server on one CPU, the load client on
/// another, so neither steals the other's core and a server's helper threads
/// (thread pools, io-wq) share its one core, as its loop does.
struct Pinning {
    let server: String
    let client: String

    /// nil on a single-core machine or without taskset.
    static func detect() -> Pinning? {
        guard ProcessInfo.processInfo.activeProcessorCount >= 2, which("taskset") != nil else { return nil }
        return Pinning(server: "1", client: "0")
    }

    func server(_ command: [String]) -> [String] { ["taskset", "-c", server] + command }
    func client(_ command: [String]) -> [String] { ["taskset", "-c", client] + command }
}
