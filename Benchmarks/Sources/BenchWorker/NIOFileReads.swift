import CompareCore
import LoopWorkloads
import NIOCore
import NIOPosix
import _NIOFileSystem

/// The file workload the idiomatic SwiftNIO way: NIOFileSystem, whose reads
/// run on its thread pool and return a fresh `ByteBuffer` each, `depth` tasks
/// at once. NonBlockingFileIO is deprecated in its favour.
func nioReads(path: String, plan: ReadPlan, depth: Int) throws -> ReadTally {
    try MultiThreadedEventLoopGroup.singleton.any().makeFutureWithTask {
        try await FileSystem.shared.withFileHandle(forReadingAt: FilePath(path)) { file in
            try await withThrowingTaskGroup(of: ReadTally.self) { group in
                plan.start()
                for worker in 0..<depth {
                    group.addTask {
                        var random = SplitMix64(seed: UInt64(worker) + 1)
                        var tally = ReadTally()
                        while let offset = plan.nextOffset(&random) {
                            let chunk = try await file.readChunk(fromAbsoluteOffset: offset, length: .bytes(Int64(plan.blockSize)))
                            tally.bytes += chunk.readableBytes
                            tally.reads += 1
                        }
                        return tally
                    }
                }
                return try await group.reduce(ReadTally(), +)
            }
        }
    }.wait()
}
