import CUring
import Glibc

/// Reads a whole file on the running loop, up to `limit` bytes.
///
/// ```swift
/// let bytes = try await readFile("/etc/hostname")
/// let upload = try await readFile(path, limit: 10 << 20)   // 10 MiB at most
/// ```
///
/// - Throws: ``IOError`` naming the path: the open's errors, `EFBIG` for a
///   file longer than `limit` (a device such as `/dev/zero` has no end, so
///   without a limit it would fill memory), `EINVAL` for a negative limit.
public nonisolated(nonsending) func readFile(_ path: String, limit: Int = .max) async throws -> [UInt8] {
    let file = try await File.open(path)
    do {
        let bytes = try await file.readAll(limit: limit)
        try await file.close()
        return bytes
    } catch {
        try? await file.close()
        throw error
    }
}

/// Creates or truncates `path` and writes `bytes` to it.
///
/// ```swift
/// try await writeFile("/tmp/greeting", Array("hello\n".utf8))
/// ```
public nonisolated(nonsending) func writeFile(_ path: String, _ bytes: some Collection<UInt8>, permissions: UInt32 = 0o644) async throws {
    let file = try await File.open(path, .write(create: true, truncate: true), permissions: permissions)
    do {
        // A FIFO has no offset 0: it takes the bytes in order.
        try await file.writeAll(bytes, at: file.isStream ? nil : 0)
        try await file.close()
    } catch {
        try? await file.close()
        throw error
    }
}

/// Copies `source` to `destination` (created or truncated).
///
/// The bytes move inside the kernel with `copy_file_range(2)` (as `cp`
/// does; a reflink on file systems that share extents), 64 MiB per call on
/// the loop's thread pool (io_uring has no opcode for it), so the copy stays
/// cancellable between calls. Where the kernel refuses (EXDEV between some
/// file systems, special files, ENOSYS) it falls back to chunk reads and
/// writes with up to `parallelism` in flight, which keep the device busy
/// instead of waiting for one chunk at a time. Either way the copy runs to
/// the source's end of file, not to the size `stat` gave: files in `/proc`
/// and `/sys` say 0 bytes, and a growing log says less than it holds. A
/// FIFO at either end (`mkfifo`, `/dev/stdin` on a pipe) is copied in order,
/// one chunk at a time, until the writer closes it, as `cp` does.
///
/// ```swift
/// try await copyFile(from: "/var/log/big.log", to: "/tmp/big.log")
/// ```
public nonisolated(nonsending) func copyFile(from source: String, to destination: String,
                     chunkSize: Int = 256 * 1024, parallelism: Int = 8) async throws {
    try await copyFile(from: source, to: destination, chunkSize: chunkSize, parallelism: parallelism, inKernel: true)
}

/// ``copyFile(from:to:chunkSize:parallelism:)``; `inKernel: false` takes the
/// user-space path at once (tests, and the comparison of the two).
nonisolated(nonsending) func copyFile(from source: String, to destination: String,
                                      chunkSize: Int, parallelism: Int, inKernel: Bool) async throws {
    guard chunkSize > 0, parallelism > 0 else {
        throw IOError(operation: "copyFile", errno: Errno(EINVAL), path: source,
                      detail: "chunkSize and parallelism must be positive, got \(chunkSize) and \(parallelism)")
    }
    let input = try await File.open(source)
    let output: File
    do {
        // Not truncated at open: if both names lead to one file (the same
        // path, a hard link, a symlink), truncating would destroy the source.
        output = try await File.open(destination, .write(create: true, truncate: false))
    } catch {
        try? await input.close()
        throw error
    }
    do {
        if sameFile(input.fileDescriptor, output.fileDescriptor) {
            throw IOError(operation: "copyFile", errno: Errno(EINVAL), path: destination,
                          detail: "the destination is the source file (\(source)); nothing was copied")
        }
        if output.isStream || input.isStream {
            // A stream (FIFO, pipe, socket, terminal) at either end: no sizes,
            // no offsets, no copy_file_range; the bytes go through in order
            // to the end.
            try await copyInOrder(input, output, chunkSize: chunkSize)
            try await input.close()
            try await output.close()
            return
        }
        // Only a destination that has bytes is truncated, as open(O_TRUNC)
        // leaves a file it has just created alone: on ext4 a truncate to 0
        // marks the file for writeback at close ("auto_da_alloc"), and the
        // close of a fresh 1 GiB copy then started writing all of it out
        // (copyFile took 1.8x cp's time).
        if try await output.size > 0 { try await output.truncate(to: 0) }
        let size = try await input.size
        if inKernel, try await copyInKernel(input, output, size: size, loop: try EventLoop.running()) {
            try await input.close()
            try await output.close()
            return
        }
        let cursor = CopyCursor(size: size, chunk: Int64(chunkSize))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<parallelism {
                // Child tasks inherit the loop as their executor preference.
                group.addTask {
                    let buffer = try IOBuffer(capacity: chunkSize)
                    while let offset = cursor.next() {
                        var done = 0
                        // A short read mid-file is legal: keep reading this chunk.
                        while Int64(done) < Swift.min(Int64(chunkSize), size - offset) {
                            let n = try await input.read(into: buffer, at: offset + Int64(done))
                            if n == 0 { break }
                            try await output.writeAll(buffer, at: offset + Int64(done))
                            done += n
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        // What lies past the size stat gave (a /proc file's whole content),
        // read one chunk at a time to the end of file.
        let buffer = try IOBuffer(capacity: chunkSize)
        var offset = size
        while true {
            let n = try await input.read(into: buffer, at: offset)
            if n == 0 { break }
            try await output.writeAll(buffer, at: offset)
            offset += Int64(n)
        }
        try await input.close()
        try await output.close()
    } catch {
        try? await input.close()
        try? await output.close()
        throw error
    }
}

/// Copies from `input`'s position to its end, writing at `output`'s position.
private nonisolated(nonsending) func copyInOrder(_ input: File, _ output: File, chunkSize: Int) async throws {
    let buffer = try IOBuffer(capacity: chunkSize)
    while try await input.read(into: buffer) > 0 {
        try await output.writeAll(buffer)
    }
}

/// Whether two descriptors name one file (device and inode), as `cp` checks.
private func sameFile(_ a: Int32, _ b: Int32) -> Bool {
    var first = stat(), second = stat()
    guard fstat(a, &first) == 0, fstat(b, &second) == 0 else { return false }
    return first.st_dev == second.st_dev && first.st_ino == second.st_ino
}

/// `copy_file_range` in 64 MiB calls on the pool; false when the kernel will
/// not do it for these files before anything was copied (the caller then
/// copies through user space).
private nonisolated(nonsending) func copyInKernel(_ input: File, _ output: File, size: Int64, loop: EventLoop) async throws -> Bool {
    let source = input.fileDescriptor, target = output.fileDescriptor
    var offset: Int64 = 0
    // To the end of file, whatever the size said (see copyFile).
    while true {
        try Task.checkCancellation()
        let start = offset
        let copied = try await loop.offload { () -> Int in
            var inOffset = start, outOffset = start
            return cu_copy_file_range(source, &inOffset, target, &outOffset, 64 << 20)
        }
        if copied < 0 {
            let refused = [EXDEV, ENOSYS, EINVAL, EOPNOTSUPP, EBADF].contains(Int32(-copied))
            if refused, offset == 0 { return false }
            throw IOError(operation: "copy_file_range", errno: Errno(Int32(-copied)), path: input.path)
        }
        if copied == 0 {
            // The end, or a file whose size says 0 and whose content the
            // kernel will not copy (procfs): user space copies it then.
            return offset > 0 || size > 0
        }
        offset += Int64(copied)
    }
    return true
}

/// Hands out chunk offsets to the copy workers. Touched only on the loop
/// thread, where all the workers run.
private final class CopyCursor: @unchecked Sendable {
    private var nextOffset: Int64 = 0
    let size: Int64
    let chunk: Int64
    init(size: Int64, chunk: Int64) {
        self.size = size
        self.chunk = chunk
    }
    func next() -> Int64? {
        guard nextOffset < size else { return nil }
        defer { nextOffset += chunk }
        return nextOffset
    }
}
