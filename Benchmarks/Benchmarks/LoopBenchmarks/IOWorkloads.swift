import Glibc
import RingLoop

/// I/O workloads for the allocation and per-operation cost rows: steady-state
/// reads and writes on an already open file or connection.
enum IOWorkloads {
    static let filePath = "/tmp/ringloop-benchmark-\(getpid()).dat"

    /// `count` 4 KiB reads at rotating offsets of a 1 MiB file.
    static func fileReads(_ loop: EventLoop, count: Int) throws {
        try loop.runUntilComplete {
            let file = try await File.open(filePath)
            let buffer = try IOBuffer(capacity: 4096)
            for i in 0..<count {
                _ = try await file.read(into: buffer, at: Int64((i % 256) * 4096))
            }
            try await file.close()
        }
    }

    /// `count` 4 KiB writes at rotating offsets.
    static func fileWrites(_ loop: EventLoop, count: Int) throws {
        try loop.runUntilComplete {
            let file = try await File.open(filePath, .readWrite())
            let buffer = IOBuffer([UInt8](repeating: 7, count: 4096))
            for i in 0..<count {
                _ = try await file.write(buffer, at: Int64((i % 256) * 4096))
            }
            try await file.close()
        }
    }

    /// `count` 64-byte ping-pongs over a loopback TCP connection: one send
    /// and one receive on each side per operation.
    static func tcpPingPong(_ loop: EventLoop, count: Int) throws {
        try loop.runUntilComplete {
            let listener = try await SocketListener.bind(host: "127.0.0.1", port: 0)
            let server = loop.spawn {
                let connection = try await listener.accept()
                let buffer = try IOBuffer(capacity: 64)
                while try await connection.read(into: buffer) > 0 {
                    try await connection.writeAll(buffer)
                }
                try await connection.close()
            }
            let client = try await SocketStream.connect(host: "127.0.0.1", port: listener.localAddress.port!)
            let message = IOBuffer([UInt8](repeating: 1, count: 64))
            let reply = try IOBuffer(capacity: 64)
            for _ in 0..<count {
                try await client.writeAll(message)
                var got = 0
                while got < 64 { got += try await client.read(into: reply) }
            }
            try await client.close()
            try await server.value
            try await listener.close()
        }
    }

    static func makeFile() {
        let fd = open(filePath, O_CREAT | O_TRUNC | O_WRONLY, 0o644)
        let block = [UInt8](repeating: 3, count: 1 << 20)
        _ = block.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }
}
