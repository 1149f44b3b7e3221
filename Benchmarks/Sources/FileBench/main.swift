import Glibc
import RingLoop

// Random 4 KiB reads with a fixed number in flight, on one RingLoop loop:
// the file half of the I/O comparison (fio --ioengine=io_uring is the reference).
//
//   FileBench PATH --backend uring|epoll [--direct] [--depth 32] [--seconds 5]
//
// Prints one JSON line: reads per second and the process CPU time per read.

struct Options {
    var path = ""
    var backend = Backend.uring
    var direct = false
    var depth = 32
    var seconds = 5.0
}

func parse() -> Options? {
    var options = Options()
    var args = CommandLine.arguments.dropFirst()
    guard let path = args.popFirst() else { return nil }
    options.path = path
    while let flag = args.popFirst() {
        switch flag {
        case "--direct": options.direct = true
        case "--backend": guard let b = args.popFirst().flatMap(Backend.init(rawValue:)) else { return nil }; options.backend = b
        case "--depth": guard let d = args.popFirst().flatMap({ Int($0) }), d > 0 else { return nil }; options.depth = d
        case "--seconds": guard let s = args.popFirst().flatMap({ Double($0) }), s > 0 else { return nil }; options.seconds = s
        default: return nil
        }
    }
    return options
}

func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

/// Loop-thread-only counters shared by the reader tasks.
final class Counters: @unchecked Sendable {
    var reads = 0
    var rng = UInt64(0x9E37_79B9_7F4A_7C15)
    func nextBlock(_ blocks: Int64) -> Int64 {
        rng = rng &* 6364136223846793005 &+ 1442695040888963407
        return Int64((rng >> 11) % UInt64(blocks))
    }
}

guard let options = parse() else {
    print("usage: FileBench PATH [--backend uring|epoll] [--direct] [--depth N] [--seconds S]")
    exit(2)
}

let result = try EventLoop.run(backend: options.backend) { () async throws -> String in
    let loop = try EventLoop.running()
    let file = try await File.open(options.path, options.direct ? File.Options.read.direct : .read)
    let blocks = try await file.size / 4096
    guard blocks > 0 else { throw IOError(operation: "FileBench", errno: Errno(EINVAL), path: options.path, detail: "file smaller than 4 KiB") }
    let counters = Counters()
    let deadline = loop.time + .milliseconds(Int64(options.seconds * 1000))
    let cpuStart = cpuSeconds()
    let start = loop.time
    try await withThrowingTaskGroup(of: Void.self) { group in
        for _ in 0..<options.depth {
            group.addTask {
                let buffer = try IOBuffer(capacity: 4096, alignment: 4096)
                while loop.time < deadline {
                    _ = try await file.read(into: buffer, at: counters.nextBlock(blocks) * 4096)
                    counters.reads += 1
                }
            }
        }
        try await group.waitForAll()
    }
    let elapsed = loop.time - start
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    let cpu = cpuSeconds() - cpuStart
    try await file.close()
    return "{\"backend\":\"\(loop.backend)\",\"direct\":\(options.direct),\"depth\":\(options.depth),"
        + "\"reads_per_s\":\(Int(Double(counters.reads) / seconds)),\"cpu_us_per_read\":\(cpu / Double(counters.reads) * 1e6)}"
}
print(result)
