import CompareCore
import LoopWorkloads
import RingLoop

/// The file workload on RingLoop: `depth` reader tasks on one loop, each with
/// its own page-aligned buffer (O_DIRECT needs the alignment), a slot of a
/// `RegisteredBuffers` pool when `registered`.
func ringLoopReads(path: String, backend: Backend, direct: Bool, plan: ReadPlan, depth: Int, registered: Bool = false) throws -> ReadTally {
    try EventLoop.run(backend: backend) {
        let file = try await File.open(path, direct ? File.Options.read.direct : .read)
        let pool = registered ? try RegisteredBuffers(count: depth, size: plan.blockSize) : nil
        let tally = try await withThrowingTaskGroup(of: ReadTally.self) { group in
            plan.start()
            for worker in 0..<depth {
                group.addTask {
                    let buffer = try pool?.buffers[worker] ?? IOBuffer(capacity: plan.blockSize, alignment: 4096)
                    var random = SplitMix64(seed: UInt64(worker) + 1)
                    var tally = ReadTally()
                    while let offset = plan.nextOffset(&random) {
                        tally.bytes += try await file.read(into: buffer, at: offset)
                        tally.reads += 1
                    }
                    return tally
                }
            }
            return try await group.reduce(ReadTally(), +)
        }
        try await file.close()
        return tally
    }
}
