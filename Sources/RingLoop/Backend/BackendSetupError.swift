import Glibc

/// Why a backend could not be set up: the call, its errno and any detail.
struct BackendSetupError: Error, CustomStringConvertible {
    var operation: String
    var errno: Errno
    var detail: String? = nil

    var description: String {
        "\(operation) failed: \(errno)" + (detail.map { " — \($0)" } ?? "")
    }
}
