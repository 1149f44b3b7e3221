import CompareCore
import Foundation

/// The machine and the versions a result belongs to, stated with every table.
enum MachineInfo {
    static func machine() -> [Report.Fact] {
        let cpu = firstLine(of: "/proc/cpuinfo", startingWith: "model name").map { $0.components(separatedBy: ":").last!.trimmed }
        let memory = firstLine(of: "/proc/meminfo", startingWith: "MemTotal").flatMap { line in
            line.split(separator: " ").dropFirst().first.flatMap { Double($0) }.map { String(format: "%.0f GiB", $0 / 1_048_576) }
        }
        let os = firstLine(of: "/etc/os-release", startingWith: "PRETTY_NAME=").map {
            $0.dropFirst("PRETTY_NAME=".count).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        }
        return [
            .init(name: "cores", value: String(ProcessInfo.processInfo.activeProcessorCount)),
            .init(name: "CPU", value: cpu ?? "unknown"),
            .init(name: "memory", value: memory ?? "unknown"),
            .init(name: "kernel", value: (try? String(contentsOfFile: "/proc/sys/kernel/osrelease", encoding: .utf8))?.trimmed ?? "unknown"),
            .init(name: "OS", value: os ?? "unknown"),
        ]
    }

    /// What a rerun needs to match: the RingLoop commit and whether the tree
    /// was dirty, the virtualisation, the io_uring set-up the kernel
    /// accepted, and the filesystem under the data file. Steal time over the
    /// run is added by the runner when it ends.
    static func reproducibility(tools: Toolbox, dataFile: String) -> [Report.Fact] {
        let root = URL(fileURLWithPath: tools.benchmarks).deletingLastPathComponent().path
        let commit = (try? execute(["git", "-C", root, "rev-parse", "HEAD"], timeout: 30))?.stdout.trimmed ?? "unknown"
        let dirty = (try? execute(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"], timeout: 30))
            .map { $0.stdout.trimmed.isEmpty ? "clean" : "dirty (uncommitted changes)" } ?? "unknown"
        var virtualisation = "none detected"
        if let detected = try? execute(["systemd-detect-virt"], timeout: 10), !detected.stdout.trimmed.isEmpty {
            virtualisation = detected.stdout.trimmed
        } else if let flags = firstLine(of: "/proc/cpuinfo", startingWith: "flags"), flags.contains(" hypervisor") {
            virtualisation = "hypervisor (cpuinfo flag)"
        }
        let product = (try? String(contentsOfFile: "/sys/class/dmi/id/product_name", encoding: .utf8))?.trimmed
        if let product, !product.isEmpty { virtualisation += ", \(product)" }
        var facts: [Report.Fact] = [
            .init(name: "RingLoop commit", value: commit),
            .init(name: "tree", value: dirty),
            .init(name: "virtualisation", value: virtualisation),
            .init(name: "data file filesystem", value: DataFile.filesystem(of: URL(fileURLWithPath: dataFile).deletingLastPathComponent().path)),
        ]
        if let info = try? execute([tools.worker, "uring-info"], timeout: 30), info.succeeded {
            facts.append(.init(name: "io_uring", value: info.stdout.trimmed))
        }
        return facts
    }

    /// The machine's steal time so far, in seconds (/proc/stat).
    static func stealSeconds() -> Double {
        guard let line = firstLine(of: "/proc/stat", startingWith: "cpu "),
              let steal = line.split(separator: " ").dropFirst().dropFirst(7).first.flatMap({ Double($0) })
        else { return 0 }
        return steal / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    static func versions(tools: Toolbox) -> [Report.Fact] {
        /// The first line a command prints, without a leading "Swift version " or "Python ".
        func output(_ command: [String], dropping prefix: String = "") -> String? {
            guard let result = try? execute(command, timeout: 30), result.succeeded,
                  let line = (result.stdout + result.stderr).split(separator: "\n").first?.trimmed
            else { return nil }
            return line.hasPrefix(prefix) ? String(line.dropFirst(prefix.count)) : line
        }
        var facts: [Report.Fact] = [
            .init(name: "Swift", value: output(["swift", "--version"], dropping: "Swift version ") ?? "unknown"),
            .init(name: "SwiftNIO", value: resolvedVersion("swift-nio", in: tools.benchmarks) ?? "unknown"),
            .init(name: "liburing", value: output(["pkg-config", "--modversion", "liburing"]) ?? "unknown"),
            .init(name: "C compiler", value: output(["cc", "--version"], dropping: "cc ") ?? "unknown"),
        ]
        if let python = tools.python {
            facts.append(.init(name: "Python", value: output([python, "--version"], dropping: "Python ") ?? "unknown"))
            facts.append(.init(name: "uvloop", value: output([python, "-c", "import uvloop; print(uvloop.__version__)"]) ?? "not installed"))
        }
        if let fio = tools.fio { facts.append(.init(name: "fio", value: output([fio, "--version"]) ?? "unknown")) }
        if let go = tools.go { facts.append(.init(name: "Go", value: output([go, "version"], dropping: "go version ") ?? "unknown")) }
        facts.append(.init(name: "libuv", value: output(["pkg-config", "--modversion", "libuv"]) ?? "not installed"))
        return facts
    }

    /// A package's version as Package.resolved pins it.
    private static func resolvedVersion(_ identity: String, in directory: String) -> String? {
        guard let data = FileManager.default.contents(atPath: "\(directory)/Package.resolved"),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let pins = object["pins"] as? [[String: Any]],
              let pin = pins.first(where: { ($0["identity"] as? String) == identity }),
              let state = pin["state"] as? [String: Any]
        else { return nil }
        return state["version"] as? String
    }

    static func firstLine(of path: String, startingWith prefix: String) -> String? {
        (try? String(contentsOfFile: path, encoding: .utf8))?.split(separator: "\n").first { $0.hasPrefix(prefix) }.map(String.init)
    }
}

extension StringProtocol {
    var trimmed: String { trimmingCharacters(in: .whitespacesAndNewlines) }
}
