import CompareCore
import Foundation

/// The progress line: which run, which workload and contestant, time spent
/// and time left. Redrawn in place on a terminal; one line per run otherwise.
/// Time left is learned: once a workload/contestant pair has run, its real
/// duration replaces the estimate for its later rounds.
final class Progress {
    private let total: Int
    private var finished = 0
    private let started = Date()
    private var learned: [String: Double] = [:]
    private let interactive = isatty(2) != 0

    init(total: Int) { self.total = total }

    /// Announces a run; `remaining` lists the keys and first estimates of the runs after it.
    func begin(round: Int, rounds: Int, workload: Workload, contestant: Contestant, remaining: [(key: String, estimate: Double)]) {
        let left = remaining.reduce(0) { $0 + (learned[$1.key] ?? $1.estimate) }
        let line = String(format: "[%3d/%d] %@ elapsed, ~%@ left · round %d/%d · %@ · %@",
                          finished + 1, total, clock(Date().timeIntervalSince(started)), clock(left), round, rounds,
                          workload.id, contestant.displayName)
        write(line, final: false)
    }

    func end(key: String, seconds: Double) {
        learned[key] = seconds
        finished += 1
    }

    func note(_ line: String) { write(line, final: true) }

    func finish() {
        if interactive { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }

    private func write(_ line: String, final: Bool) {
        let text = interactive ? "\r\u{1B}[K" + line + (final ? "\n" : "") : line + "\n"
        FileHandle.standardError.write(Data(text.utf8))
    }

    private func clock(_ seconds: Double) -> String {
        let s = max(0, Int(seconds.rounded()))
        return String(format: "%d:%02d", s / 60, s % 60)
    }
}
