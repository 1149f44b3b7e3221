import RingLoop

// The first program: asyncio's "Hello ... World", on whichever backend
// RINGLOOP_BACKEND picks (auto by default).
try EventLoop.run {
    let loop = try EventLoop.running()
    print("Hello from RingLoop on \(loop.backend)")
    try await EventLoop.sleep(for: .seconds(1))
    print("World")
}
