import Glibc
@testable import RingLoop
import Testing

extension AllSuites {
    @Suite("The block pool under send and stream queues", .serialized, .checksResources, .timeLimit(.minutes(1)))
    struct BlockPoolTests {
        @Test("a pool keeps what a busy period used and gives back, down to its floor, what sat unused for a whole period")
        func decay() {
            let pool = BlockPool(floor: 4, ceiling: 64)
            pool.period = 1_000
            func cycle(_ count: Int) {
                let blocks = (0..<count).map { _ in pool.take() }
                for block in blocks { pool.give(block) }
            }
            cycle(20)
            #expect(pool.freeCount == 20 && pool.allocated == 20 && pool.outstanding == 0)
            #expect(pool.trim(now: 0) == 1_000, "a surplus starts a period")
            cycle(10)
            #expect(pool.allocated == 20, "a burst the pool can serve allocates nothing")
            #expect(pool.trim(now: 400) == 600, "mid-period: nothing given back, look again at its end")
            #expect(pool.freeCount == 20)
            // Ten of the twenty went unused through the period: they go.
            #expect(pool.trim(now: 1_000) == 1_000)
            #expect(pool.freeCount == 10)
            // A whole period without a take: everything above the floor goes.
            #expect(pool.trim(now: 2_000) == nil, "nothing above the floor left to watch")
            #expect(pool.freeCount == 4)
            cycle(100)
            #expect(pool.freeCount == 64, "the ceiling bounds what a burst leaves behind")
            #expect(pool.allocated == 20 + 96)
        }

        @Test("blocks a burst of sends left free stay for the next burst, and an idle loop wakes to return them",
              arguments: allBackends)
        func idleLoopReturnsSurplus(backend: Backend) async throws {
            let outcome = try await onLoop(backend) { loop -> (kept: Int, reallocated: Int, idle: Int, floor: Int, intact: Bool) in
                loop.blocks.period = 10_000_000_000   // longer than the bursts take
                let recorder = RecordingProtocol()
                let server = try await loop.createServer(host: "127.0.0.1", port: 0) { recorder }
                let peer = rawConnect(port: server.localAddress.port!, receiveBuffer: 4096)
                defer { close(peer) }
                try await waitUntil(loop) { recorder.transport != nil }
                let transport = recorder.transport!
                // 8 MiB queued at once to a peer that does not read yet: about
                // 512 blocks, twice the pool's floor.
                let message = pattern(8 << 20, seed: 4)
                var intact = true
                var kept = 0, allocatedByFirst = 0
                for round in 0..<2 {
                    try transport.write(message)
                    let received = try await loop.offload { receiveBlocking(peer, count: message.count) }
                    intact = intact && received == message
                    try await waitUntil(loop) { transport.writeBufferSize == 0 && loop.blocks.outstanding == 0 }
                    if round == 0 { (kept, allocatedByFirst) = (loop.blocks.freeCount, loop.blocks.allocated) }
                }
                let reallocated = loop.blocks.allocated - allocatedByFirst
                // No timer, no I/O: only the pool's own deadline can wake the
                // loop before this offload ends, 400 ms (eight periods) later.
                loop.blocks.period = 50_000_000
                _ = try await loop.offload { usleep(400_000) }
                let idle = loop.blocks.freeCount
                transport.close()
                server.close()
                await server.waitClosed()
                return (kept, reallocated, idle, loop.blocks.floor, intact)
            }
            #expect(outcome.intact)
            #expect(outcome.kept > outcome.floor, "the first burst's blocks stay in the pool")
            #expect(outcome.reallocated == 0, "the second burst takes every block from the pool")
            #expect(outcome.idle == outcome.floor, "an idle loop gives the surplus back within two periods")
        }
    }
}
