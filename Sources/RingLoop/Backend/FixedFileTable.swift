import CUring

/// io_uring's fixed-file table for sockets (the `fixed-files` option): slot n
/// holds descriptor n, registered on its first receive or send and released
/// before its close. An SQE on a registered socket names the slot with
/// `IOSQE_FIXED_FILE`, so the kernel skips the descriptor lookup and its
/// reference counting per SQE, at the price of one register call per
/// connection and another at its close. Loop-thread only.
struct FixedFileTable {
    let size: Int
    private var registered: [Bool]

    static let defaultSize = 16_384

    /// A sparse table of `size` slots, or nil when the kernel refuses one.
    init?(ring: UnsafeMutablePointer<io_uring>, size: Int = FixedFileTable.defaultSize) {
        guard io_uring_register_files_sparse(ring, UInt32(size)) == 0 else { return nil }
        self.size = size
        registered = Array(repeating: false, count: size)
    }

    /// Puts `fd` in its slot if it fits and is not there yet; true when an
    /// SQE may use the slot.
    mutating func register(_ fd: Int32, ring: UnsafeMutablePointer<io_uring>) -> Bool {
        guard fd >= 0, Int(fd) < size else { return false }
        if registered[Int(fd)] { return true }
        var file = fd
        guard io_uring_register_files_update(ring, UInt32(fd), &file, 1) == 1 else { return false }
        registered[Int(fd)] = true
        return true
    }

    /// Empties `fd`'s slot, if it holds anything.
    mutating func release(_ fd: Int32, ring: UnsafeMutablePointer<io_uring>) {
        guard fd >= 0, Int(fd) < size, registered[Int(fd)] else { return }
        var none: Int32 = -1
        _ = io_uring_register_files_update(ring, UInt32(fd), &none, 1)
        registered[Int(fd)] = false
    }
}
