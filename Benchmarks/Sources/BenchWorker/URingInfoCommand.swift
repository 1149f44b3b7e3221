import ArgumentParser
import RingLoop

/// Prints the io_uring set-up this kernel accepts for a RingLoop loop, and
/// what was probed: the comparison records it with every report.
struct URingInfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "uring-info", abstract: "Print the io_uring set-up and features RingLoop gets on this kernel.")

    func run() throws {
        do {
            let loop = try EventLoop(backend: .uring)
            print(loop.backendDescription)
            try loop.close()
        } catch {
            print("unavailable: \(error)")
        }
    }
}
