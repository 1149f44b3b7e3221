import ArgumentParser
import NIOCore
import NIOHTTP1
import NIOPosix

/// SwiftNIO's HTTP/1.1 hello server for the http-hello workload: NIOHTTP1's
/// server pipeline (keep-alive and pipelining handled by NIO) and a handler
/// answering every request with 200 OK and "Hello, World!", on one event
/// loop thread, as NIO's own example servers are written.
struct NIOHTTPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nio-http", abstract: "Serve HTTP/1.1 hello on 127.0.0.1 with SwiftNIO until killed.")

    @Option(help: "The port to listen on.") var port: Int
    @Option(help: "Event-loop threads (MultiThreadedEventLoopGroup).") var threads: Int = 1

    func validate() throws {
        guard (1...65535).contains(port) else { throw ValidationError("--port \(port) is not a port number") }
    }

    func run() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, threads))
        let channel = try ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline(withErrorHandling: true).flatMap {
                    channel.pipeline.addHandler(HelloHandler())
                }
            }
            .bind(host: "127.0.0.1", port: port)
            .wait()
        print("NIO HTTP hello listening on 127.0.0.1:\(port)")
        try channel.closeFuture.wait()
    }
}

final class HelloHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .end = unwrapInboundIn(data) else { return }
        var headers = HTTPHeaders()
        headers.add(name: "Server", value: "SwiftNIO")
        headers.add(name: "Content-Type", value: "text/plain")
        headers.add(name: "Content-Length", value: "13")
        let head = HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        var body = context.channel.allocator.buffer(capacity: 13)
        body.writeString("Hello, World!")
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.write(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
