import ArgumentParser
import NIOCore
import NIOPosix

/// SwiftNIO's echo server, written the idiomatic NIO way: one event loop
/// thread (as RingLoop runs one loop), TCP_NODELAY, a write per read and a
/// flush per read burst.
struct NIOEchoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nio-echo", abstract: "Serve TCP echo on 127.0.0.1 with SwiftNIO until killed.")

    @Option(help: "The port to listen on.") var port: Int

    func validate() throws {
        guard (1...65535).contains(port) else { throw ValidationError("--port \(port) is not a port number") }
    }

    func run() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
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
