import ArgumentParser
import NIOCore
import NIOPosix

/// SwiftNIO's echo server, written the idiomatic NIO ways, on one event loop
/// thread (as RingLoop runs one loop) with TCP_NODELAY:
/// - by default a `ChannelInboundHandler` that writes on read and flushes on
///   read-complete;
/// - with `--async`, `NIOAsyncChannel`: a task per connection iterating its
///   inbound stream and writing to its outbound writer, NIO's async/await
///   API and the closest match to RingLoop's task-per-connection streams.
struct NIOEchoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nio-echo", abstract: "Serve TCP echo on 127.0.0.1 with SwiftNIO until killed.")

    @Option(help: "The port to listen on.") var port: Int
    @Option(help: "Event-loop threads (MultiThreadedEventLoopGroup).") var threads: Int = 1
    @Flag(name: .customLong("async"), help: "Use NIOAsyncChannel and a task per connection.") var useAsync = false

    func validate() throws {
        guard (1...65535).contains(port) else { throw ValidationError("--port \(port) is not a port number") }
    }

    func run() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, threads))
        if useAsync {
            let port = self.port
            try group.any().makeFutureWithTask { try await serveAsync(group: group, port: port) }.wait()
            return
        }
        let channel = try ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(EchoHandler()) }
            }
            .bind(host: "127.0.0.1", port: port)
            .wait()
        print("NIO echo listening on \(channel.localAddress.map { "\($0)" } ?? "127.0.0.1:\(port)")")
        try channel.closeFuture.wait()
    }
}

private func serveAsync(group: MultiThreadedEventLoopGroup, port: Int) async throws {
    let server = try await ServerBootstrap(group: group)
        .serverChannelOption(.backlog, value: 4096)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
        .bind(host: "127.0.0.1", port: port) { channel in
            channel.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
            }
        }
    print("NIO async echo listening on 127.0.0.1:\(port)")
    try await withThrowingDiscardingTaskGroup { tasks in
        try await server.executeThenClose { connections in
            for try await connection in connections {
                tasks.addTask {
                    try? await connection.executeThenClose { inbound, outbound in
                        for try await buffer in inbound { try await outbound.write(buffer) }
                    }
                }
            }
        }
    }
}

final class EchoHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
