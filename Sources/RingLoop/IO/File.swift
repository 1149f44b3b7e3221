import CUring
import Glibc

/// A file opened on the running loop: reads and writes are io_uring SQEs, or
/// thread-pool jobs on the epoll backend.
///
/// ```swift
/// let file = try await File.open("/tmp/data", .readWrite(create: true, truncate: true))
/// try await file.writeAll(IOBuffer(Array("hello".utf8)), at: 0)
/// let buffer = try IOBuffer(capacity: 5)
/// let n = try await file.read(into: buffer, at: 0)   // 5
/// try await file.close()
/// ```
///
/// Every method must be called from a task running on the loop the file was
/// opened on. Reads of 0 bytes mean end of file. Reads and writes may be short;
/// ``writeAll(_:at:)`` and ``readToEnd(chunkSize:limit:)`` loop until done.
public final class File: @unchecked Sendable {
    /// How to open a file: `open(2)` flags, spelled out.
    public struct Options: Sendable, Equatable {
        var flags: Int32

        /// Read only.
        public static let read = Options(flags: O_RDONLY)
        /// Write only; `create` adds `O_CREAT`, `truncate` adds `O_TRUNC`,
        /// `append` adds `O_APPEND`: then every write lands at the end of the
        /// file, whatever its offset (Linux's rule for pwrite(2), and
        /// io_uring's), so several `File`s or tasks appending to one log
        /// never overwrite each other.
        public static func write(create: Bool = true, truncate: Bool = true, append: Bool = false) -> Options {
            Options(flags: O_WRONLY | (create ? O_CREAT : 0) | (truncate ? O_TRUNC : 0) | (append ? O_APPEND : 0))
        }
        /// Read and write.
        public static func readWrite(create: Bool = false, truncate: Bool = false) -> Options {
            Options(flags: O_RDWR | (create ? O_CREAT : 0) | (truncate ? O_TRUNC : 0))
        }
        /// Adds `O_DIRECT`: buffers and offsets must then be 4096-aligned
        /// (`IOBuffer(capacity:alignment: 4096)`).
        public var direct: Options { Options(flags: flags | CU_O_DIRECT) }
        /// Adds `O_EXCL`: fail if the file exists.
        public var exclusive: Options { Options(flags: flags | O_EXCL) }
    }

    /// What `stat` reports.
    public struct Status: Sendable, Equatable {
        /// Size in bytes.
        public var size: Int64
        /// File type and permission bits (`st_mode`).
        public var mode: UInt32
        /// Last modification, in nanoseconds since the Unix epoch.
        public var modificationTimeNanoseconds: Int64
        /// True for regular files.
        public var isRegularFile: Bool { mode & 0o170000 == 0o100000 }
    }

    let descriptor: Descriptor
    /// The path the file was opened with.
    public let path: String
    /// A regular file opened without O_DIRECT: its reads may be served from
    /// the page cache inline.
    private(set) var pageCached = false
    /// A FIFO, pipe, socket or terminal: it has no file position, so
    /// positional reads and writes are refused with ESPIPE, as pread(2)
    /// refuses them (io_uring would ignore the offset instead, and the
    /// backends would disagree).
    private(set) var isStream = false
    /// Inline attempts that found the data uncached, in a row; past a few,
    /// inline reads pause for a while (a cold file would pay a wasted
    /// syscall per read).
    private var inlineMisses = 0
    /// Where ``read(into:)`` and ``write(_:)`` go next, for a file with
    /// positions: kept here, not in the descriptor. io_uring's
    /// current-position mode (offset -1) loses the position on a short
    /// write: a 2 MiB `writeAll` into 1 MiB of free space wrote 1 MiB, left
    /// the descriptor's offset at 0, wrote its second half over the first and
    /// reported success (kernel 6.18). nil until first used, then read from
    /// the descriptor once (`lseek`), so a wrapped descriptor starts where it was.
    private(set) var position: Int64?

    init(fd: Int32, path: String, loop: EventLoop) {
        descriptor = Descriptor(fd: fd, loop: loop, label: path)
        self.path = path
    }

    /// The raw descriptor, or -1 after ``close()``.
    public var fileDescriptor: Int32 { descriptor.fd }

    /// Opens `path` on the running loop (`IORING_OP_OPENAT`, or `openat` on the pool).
    ///
    /// - Throws: ``IOError`` with the path (`.noSuchFile`, `.permissionDenied`, …),
    ///   ``EventLoopError/noRunningLoop`` outside a loop.
    ///
    /// FIFOs and terminals are opened non-blocking, so opening one never
    /// waits for its other end (a FIFO opened for writing with no reader
    /// fails with `ENXIO`, as does a Unix-domain socket's path; the error
    /// says which), and reading one waits on the loop, never on a
    /// pool thread: io_uring polls such files itself, and the epoll backend
    /// reads them on readiness instead of sending them to its thread pool.
    public static nonisolated(nonsending) func open(_ path: String, _ options: Options = .read, permissions: mode_t = 0o644) async throws -> File {
        let loop = try EventLoop.running()
        let pathBuffer = try PathBuffer(path, operation: "open")
        let fd = try await loop.perform("open", keepAlive: pathBuffer) { _ in
            .openat(directory: AT_FDCWD, path: pathBuffer.pointer, flags: options.flags | O_CLOEXEC | O_NONBLOCK, mode: permissions)
        }
        guard fd >= 0 else {
            if fd == -ECANCELED, Task.isCancelled { throw CancellationError() }
            throw IOError(operation: "open", errno: Errno(fd), path: path, detail: fd == -ENXIO ? noDeviceReason(path) : nil)
        }
        return File(wrapping: fd, path: path, loop: loop)
    }

    /// Wraps a descriptor this process just made (opened, or a pipe end) for
    /// the loop: pollable kinds (FIFOs, pipes, terminals, sockets) wait on the
    /// loop, regular files go to the kernel (io_uring) or the pool (epoll).
    convenience init(wrapping fd: Int32, path: String, loop: EventLoop) {
        var status = Glibc.stat()
        let kind = fstat(fd, &status) == 0 ? status.st_mode & S_IFMT : S_IFREG
        let pollable = kind == S_IFIFO || kind == S_IFCHR || kind == S_IFSOCK
        // The File first: making its descriptor resets the backend's entry
        // for the number (a stale one from an earlier owner), flags included.
        self.init(fd: fd, path: path, loop: loop)
        pageCached = kind == S_IFREG && fcntl(fd, F_GETFL) & CU_O_DIRECT == 0
        // The kernel's own answer (a terminal is a stream, /dev/zero is not),
        // asked only of the kinds that can be streams.
        isStream = kind != S_IFREG && kind != S_IFBLK && kind != S_IFDIR && lseek(fd, 0, SEEK_CUR) < 0 && errno == ESPIPE
        if pollable, case .epoll(let backend) = loop.io {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            backend.markPollable(fd: fd)
        } else {
            // Regular files ignore O_NONBLOCK; io_uring must not see it on a
            // pollable file, or it reports EAGAIN instead of waiting.
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        }
    }

    // MARK: Reading

    /// Reads up to `buffer.capacity` bytes at `offset` into the start of
    /// `buffer`; sets `buffer.count` and returns it. 0 means end of file.
    public nonisolated(nonsending) func read(into buffer: IOBuffer, at offset: Int64) async throws -> Int {
        try checkOffset(offset, "read")
        return try await read(into: buffer, offset: UInt64(offset))
    }

    /// Reads at the file's current position, advancing it.
    ///
    /// The position is the `File`'s own (it starts where the descriptor's
    /// offset was when first used, and does not move the descriptor's): each
    /// read is a positional read at it, on both backends.
    public nonisolated(nonsending) func read(into buffer: IOBuffer) async throws -> Int {
        if isStream { return try await read(into: buffer, offset: currentFileOffset) }
        let start = try currentPosition("read")
        let n = try await read(into: buffer, offset: UInt64(start))
        // Another task's transfer at the current position may have moved it meanwhile.
        position = Swift.max(position ?? 0, start + Int64(n))
        return n
    }

    /// The position for a transfer without an offset, read from the
    /// descriptor on first use.
    private func currentPosition(_ operation: String) throws -> Int64 {
        if let position { return position }
        try descriptor.loop.requireLoopThread(operation)
        guard descriptor.fd >= 0 else { throw descriptor.closedError(operation) }
        let offset = lseek(descriptor.fd, 0, SEEK_CUR)
        guard offset >= 0 else { throw IOError(operation: operation, errno: .current, fd: fileDescriptor, path: path) }
        position = Int64(offset)
        return Int64(offset)
    }

    private nonisolated(nonsending) func read(into buffer: IOBuffer, offset: UInt64) async throws -> Int {
        guard buffer.capacity > 0 else { throw emptyBufferError() }
        let count = UInt32(clamping: buffer.capacity)
        if let n = try readInline(into: buffer, count: Int(count), offset: offset) { return n }
        let n = try await descriptor.perform("read", keepAlive: buffer) { fd, _ in
            readOperation(fd, buffer, count: count, offset: offset)
        }
        buffer.count = n
        return n
    }

    /// A read into a buffer of no capacity: refused, since its 0 would look
    /// like the end of the file.
    private func emptyBufferError() -> IOError {
        IOError(operation: "read", errno: Errno(EINVAL), fd: fileDescriptor, path: path,
                detail: "the buffer has no capacity; a 0-byte read would look like end of file")
    }

    /// The read done at once from the page cache (`preadv2` with
    /// `RWF_NOWAIT`): no SQE, no pool hop, no suspension. nil when the data is not cached (the caller takes
    /// the SQE or pool path), when this iteration's budget of inline reads is
    /// spent (so one task cannot keep the loop to itself), for positional-less
    /// reads, and for files where it cannot help.
    private func readInline(into buffer: IOBuffer, count: Int, offset: UInt64) throws -> Int? {
        guard pageCached, offset != currentFileOffset else { return nil }
        if inlineMisses >= 8 {
            // A cold file: try again only now and then.
            inlineMisses += 1
            if inlineMisses < 64 { return nil }
            inlineMisses = 4
        }
        let loop = descriptor.loop
        try loop.requireLoopThread("read")
        if loop.inlineReads.iteration != loop.iterations { loop.inlineReads = (loop.iterations, 0) }
        guard loop.inlineReads.count < EventLoop.inlineReadBudget, descriptor.fd >= 0, !Task.isCancelled else { return nil }
        let n = cu_pread_nowait(descriptor.fd, buffer.base, count, Int64(bitPattern: offset))
        guard n >= 0 else {
            // EAGAIN: not cached. Anything else (EOPNOTSUPP on some file
            // systems) is for the real read to report.
            inlineMisses += 1
            if n != -Int(EAGAIN) { pageCached = false }
            return nil
        }
        // A short read of cached data may stop where the uncached part begins:
        // only a full read or the end of the file is an answer.
        if n < count, n > 0 { inlineMisses += 1; return nil }
        inlineMisses = 0
        loop.inlineReads.count += 1
        loop.inlineReadsDone += 1
        buffer.count = n
        return n
    }

    /// Many reads at once, one suspension: each `(buffer, offset)` is read
    /// into its buffer (setting its `count`), all of them in flight together
    /// (one SQE each on io_uring, the pool on epoll), and the call returns
    /// when the last one completes. Each item gets its own result, so one
    /// bad item (a negative offset, an empty buffer, a kernel error) fails
    /// alone. Reads served from the page cache are done inline first.
    ///
    /// ```swift
    /// let results = try await file.read(batch: [(a, 0), (b, 4096), (c, 1 << 20)])
    /// for case .failure(let error) in results { print(error) }
    /// ```
    ///
    /// - Throws: only for the whole batch: a closed file, the wrong thread,
    ///   or `CancellationError` (the reads in flight are cancelled).
    public nonisolated(nonsending) func read(batch: [(buffer: IOBuffer, offset: Int64)]) async throws -> [Result<Int, IOError>] {
        try await transfer(batch, name: "read", reading: true) { fd, buffer, offset in
            readOperation(fd, buffer, count: UInt32(clamping: buffer.capacity), offset: offset)
        }
    }

    /// Many writes at once, one suspension: each buffer's valid bytes go to
    /// its offset; a result per item, as ``read(batch:)``. A write may be
    /// short (a full disk), as `pwrite` may.
    public nonisolated(nonsending) func write(batch: [(buffer: IOBuffer, offset: Int64)]) async throws -> [Result<Int, IOError>] {
        try await transfer(batch, name: "write", reading: false) { fd, buffer, offset in
            writeOperation(fd, buffer, from: 0, count: UInt32(clamping: buffer.count), offset: offset)
        }
    }

    private nonisolated(nonsending) func transfer(
        _ batch: [(buffer: IOBuffer, offset: Int64)], name: StaticString, reading: Bool,
        _ operation: (Int32, IOBuffer, UInt64) -> Operation
    ) async throws -> [Result<Int, IOError>] {
        var results = [Result<Int, IOError>?](repeating: nil, count: batch.count)
        var pending: [Int] = []
        for (index, item) in batch.enumerated() {
            if let error = offsetError(item.offset, String(describing: name)) {
                results[index] = .failure(error)
            } else if reading, item.buffer.capacity == 0 {
                results[index] = .failure(emptyBufferError())
            } else if reading, let n = try readInline(into: item.buffer, count: item.buffer.capacity, offset: UInt64(item.offset)) {
                results[index] = .success(n)
            } else {
                pending.append(index)
            }
        }
        if !pending.isEmpty {
            let raw = try await descriptor.performBatch(name, count: pending.count, keepAlive: { batch[pending[$0]].buffer }) { fd, member, _ in
                let item = batch[pending[member]]
                return operation(fd, item.buffer, UInt64(item.offset))
            }
            for (member, index) in pending.enumerated() {
                let rc = raw[member]
                if rc >= 0 {
                    if reading { batch[index].buffer.count = Int(rc) }
                    results[index] = .success(Int(rc))
                } else {
                    results[index] = .failure(descriptor.failure(String(describing: name), rc, fd: fileDescriptor))
                }
            }
        }
        return results.map { $0! }
    }

    /// Reads the rest of the file from the current position, `chunkSize`
    /// bytes at a time, up to `limit` bytes.
    ///
    /// - Throws: ``IOError`` (`EFBIG`) when the file holds more than `limit`
    ///   bytes (`/dev/zero` never ends; a limit stops it at a size the caller
    ///   chose); `EINVAL` for a chunk size below 1 or a negative limit.
    public nonisolated(nonsending) func readToEnd(chunkSize: Int = 64 * 1024, limit: Int = .max) async throws -> [UInt8] {
        try await readRest(operation: "readToEnd", chunkSize: chunkSize, limit: limit, from: nil)
    }

    /// Reads the whole file from offset 0, whatever the current position, up
    /// to `limit` bytes. A FIFO, pipe, socket or terminal has no offset 0 to
    /// go back to: it is read from where it is to its end, as
    /// ``readToEnd(chunkSize:limit:)`` does.
    ///
    /// ```swift
    /// let config = try await file.readAll(limit: 1 << 20)   // a megabyte at most
    /// ```
    ///
    /// - Throws: as ``readToEnd(chunkSize:limit:)``.
    public nonisolated(nonsending) func readAll(chunkSize: Int = 64 * 1024, limit: Int = .max) async throws -> [UInt8] {
        try await readRest(operation: "readAll", chunkSize: chunkSize, limit: limit, from: isStream ? nil : 0)
    }

    /// Both reads to the end: at the file's position (`offset` nil) or from
    /// `offset` on. A file of exactly `limit` bytes is read whole; the first
    /// chunk that would go past it fails the read.
    private nonisolated(nonsending) func readRest(operation: String, chunkSize: Int, limit: Int, from offset: Int64?) async throws -> [UInt8] {
        guard chunkSize > 0, limit >= 0 else {
            throw IOError(operation: operation, errno: Errno(EINVAL), path: path,
                          detail: chunkSize > 0 ? "limit must not be negative, got \(limit)" : "chunkSize must be positive, got \(chunkSize)")
        }
        let buffer = try IOBuffer(capacity: chunkSize)
        var result: [UInt8] = []
        result.reserveCapacity(Swift.min(expectedLength(from: offset), limit))
        var offset = offset
        while true {
            let n: Int
            if let offset { n = try await read(into: buffer, at: offset) } else { n = try await read(into: buffer) }
            if n == 0 { return result }
            guard n <= limit - result.count else {
                throw IOError(operation: operation, errno: Errno(EFBIG), path: path, detail: "the file holds more than the limit of \(limit) bytes")
            }
            buffer.withUnsafeBytes { result.append(contentsOf: $0) }
            offset? += Int64(n)
        }
    }

    /// What a regular file holds from `offset` (nil: the position) to its
    /// end by `fstat`, capped at 1 GiB; 0 for other kinds and sizes that say
    /// nothing (`/proc` files: 0). Reserving it up front makes one allocation
    /// of the result instead of a doubling series, each new block's pages
    /// touched and the old block copied: half of readFile's time for a
    /// 512 MiB file. Only a hint: a file that grows meanwhile still reads to
    /// its end, and the cap keeps a huge sparse file from one vast allocation.
    private func expectedLength(from offset: Int64?) -> Int {
        var status = Glibc.stat()
        guard !isStream, descriptor.fd >= 0, fstat(descriptor.fd, &status) == 0,
              status.st_mode & S_IFMT == S_IFREG,
              let start = offset ?? (try? currentPosition("read")) else { return 0 }
        return Int(Swift.min(Swift.max(Int64(status.st_size) - start, 0), 1 << 30))
    }

    // MARK: Writing

    /// Writes the first `buffer.count` bytes at `offset`; returns how many
    /// were written (possibly fewer).
    public nonisolated(nonsending) func write(_ buffer: IOBuffer, at offset: Int64) async throws -> Int {
        try checkOffset(offset, "write")
        return try await write(buffer, from: 0, offset: UInt64(offset))
    }

    /// Writes at the file's current position, advancing it (the `File`'s own
    /// position, as ``read(into:)`` explains). Concurrent writes without an
    /// offset each get their own range: the position moves past a write's
    /// bytes when it starts.
    public nonisolated(nonsending) func write(_ buffer: IOBuffer) async throws -> Int {
        guard let range = try reserveAtPosition(buffer.count, "write") else {
            return try await write(buffer, from: 0, offset: currentFileOffset)
        }
        var written = 0
        defer { releaseUnwritten(range, written: written) }
        written = try await write(buffer, from: 0, offset: UInt64(range.start))
        return written
    }

    /// Takes the next `count` bytes at the current position for one write,
    /// moving the position past them; nil for a FIFO, pipe or terminal.
    private func reserveAtPosition(_ count: Int, _ operation: String) throws -> (start: Int64, end: Int64)? {
        if isStream { return nil }
        let start = try currentPosition(operation)
        position = start + Int64(count)
        return (start, start + Int64(count))
    }

    /// After a write into a reserved range that wrote less than it reserved:
    /// the position comes back to the end of what was written, unless
    /// another write has reserved the range after it since.
    private func releaseUnwritten(_ range: (start: Int64, end: Int64), written: Int) {
        if position == range.end { position = range.start + Int64(written) }
    }

    private nonisolated(nonsending) func write(_ buffer: IOBuffer, from start: Int, offset: UInt64) async throws -> Int {
        let count = UInt32(clamping: buffer.count - start)
        return try await descriptor.perform("write", keepAlive: buffer) { fd, _ in
            writeOperation(fd, buffer, from: start, count: count, offset: offset)
        }
    }

    /// The read of `buffer`: READ_FIXED when it is a slot of this loop's
    /// ``RegisteredBuffers`` (io_uring only), a plain read otherwise.
    private func readOperation(_ fd: Int32, _ buffer: IOBuffer, count: UInt32, offset: UInt64) -> Operation {
        if let index = fixedIndex(of: buffer) {
            return .readFixed(fd: fd, buffer: buffer.base, count: count, offset: offset, index: index)
        }
        return .read(fd: fd, buffer: buffer.base, count: count, offset: offset)
    }

    /// The write of `buffer`'s bytes from `start`: WRITE_FIXED for a slot of
    /// this loop's ``RegisteredBuffers``, a plain write otherwise.
    private func writeOperation(_ fd: Int32, _ buffer: IOBuffer, from start: Int, count: UInt32, offset: UInt64) -> Operation {
        if let index = fixedIndex(of: buffer) {
            return .writeFixed(fd: fd, buffer: buffer.base + start, count: count, offset: offset, index: index)
        }
        return .write(fd: fd, buffer: buffer.base + start, count: count, offset: offset)
    }

    /// `buffer`'s index in this loop's registered-buffer table, if it has one.
    private func fixedIndex(of buffer: IOBuffer) -> UInt16? {
        guard buffer.slot != nil, case .uring(let ring) = descriptor.loop.io, let index = ring.fixedIndex(of: buffer) else { return nil }
        return UInt16(index)
    }

    /// Writes all of `buffer`'s valid bytes, looping over short writes; at
    /// `offset`, or at the current position when `offset` is `nil`.
    public nonisolated(nonsending) func writeAll(_ buffer: IOBuffer, at offset: Int64? = nil) async throws {
        try await writeAll(count: buffer.count, at: offset) { start, written in
            try await writeWhole(buffer, rangeStart: start, written: &written)
        }
    }

    /// Writes `bytes` in full, through a copy into one ``IOBuffer`` of at most
    /// 1 MiB, refilled chunk by chunk in order, so a large array is not
    /// duplicated in memory (a 512 MiB `writeFile` took 0.7-2.2 s with a copy
    /// of the whole).
    public nonisolated(nonsending) func writeAll(_ bytes: some Collection<UInt8>, at offset: Int64? = nil) async throws {
        let chunk = 1 << 20
        let total = bytes.count
        let buffer = try IOBuffer(capacity: Swift.min(total, chunk))
        try await writeAll(count: total, at: offset) { start, written in
            for slice in bytes.slices(of: chunk) {
                try buffer.set(slice)
                try await writeWhole(buffer, rangeStart: start, written: &written)
            }
        }
    }

    /// Both writeAlls: `count` bytes at `offset`, or at the current position
    /// (the whole range is this call's from the start, so a short write
    /// continues where it stopped, and a failed one gives back what it did
    /// not write). `body` writes, given where the range starts (nil for a
    /// stream) and the count written so far.
    private nonisolated(nonsending) func writeAll(
        count: Int, at offset: Int64?,
        _ body: nonisolated(nonsending) (_ start: Int64?, _ written: inout Int) async throws -> Void
    ) async throws {
        if let offset { try checkOffset(offset, "writeAll") }
        let range = offset == nil ? try reserveAtPosition(count, "writeAll") : nil
        var written = 0
        defer { if let range { releaseUnwritten(range, written: written) } }
        try await body(offset ?? range?.start, &written)
    }

    /// Writes all of `buffer` at `rangeStart + written` (a stream: at its
    /// offset), looping over short writes and counting them into `written`.
    private nonisolated(nonsending) func writeWhole(_ buffer: IOBuffer, rangeStart: Int64?, written: inout Int) async throws {
        var done = 0
        while done < buffer.count {
            let position = rangeStart.map { UInt64($0) + UInt64(written) } ?? currentFileOffset
            let n = try await write(buffer, from: done, offset: position)
            if n == 0 {
                throw IOError(operation: "write", errno: Errno(EIO), fd: fileDescriptor, path: path, detail: "wrote 0 bytes")
            }
            done += n
            written += n
        }
    }

    private func checkOffset(_ offset: Int64, _ operation: String) throws(IOError) {
        if let error = offsetError(offset, operation) { throw error }
    }

    /// Why a positional transfer at `offset` is refused, if it is.
    private func offsetError(_ offset: Int64, _ operation: String) -> IOError? {
        if isStream {
            return IOError(operation: operation, errno: Errno(ESPIPE), fd: fileDescriptor, path: path,
                           detail: "a FIFO, pipe, socket or terminal has no position; read or write without an offset")
        }
        guard offset >= 0 else {
            return IOError(operation: operation, errno: Errno(EINVAL), fd: fileDescriptor, path: path,
                           detail: "offset must not be negative, got \(offset)")
        }
        return nil
    }

    // MARK: Vectored I/O

    /// Reads into several buffers with one `readv` at `offset`, filling each
    /// in turn; sets every buffer's `count` and returns the total.
    public nonisolated(nonsending) func read(into buffers: [IOBuffer], at offset: Int64) async throws -> Int {
        try checkOffset(offset, "readv")
        let vector = try IOVector(buffers, filled: false, fd: fileDescriptor, path: path)
        let total = try await descriptor.perform("readv", keepAlive: vector) { fd, _ in
            .readv(fd: fd, iovecs: vector.iovecs, count: UInt32(buffers.count), offset: UInt64(offset))
        }
        var left = total
        for buffer in buffers {
            buffer.count = Swift.min(left, buffer.capacity)
            left -= buffer.count
        }
        return total
    }

    /// Writes several buffers' valid bytes with one `writev` at `offset`;
    /// returns how many bytes were written (possibly fewer than all).
    public nonisolated(nonsending) func write(_ buffers: [IOBuffer], at offset: Int64) async throws -> Int {
        try checkOffset(offset, "writev")
        let vector = try IOVector(buffers, filled: true, fd: fileDescriptor, path: path)
        return try await descriptor.perform("writev", keepAlive: vector) { fd, _ in
            .writev(fd: fd, iovecs: vector.iovecs, count: UInt32(buffers.count), offset: UInt64(offset))
        }
    }

    // MARK: Metadata and durability

    /// Flushes data and metadata to the device (`fsync`).
    public nonisolated(nonsending) func sync() async throws {
        _ = try await descriptor.perform("fsync") { fd, _ in .fsync(fd: fd, dataOnly: false) }
    }

    /// Flushes data, and only the metadata needed to read it back (`fdatasync`).
    public nonisolated(nonsending) func dataSync() async throws {
        _ = try await descriptor.perform("fdatasync") { fd, _ in .fsync(fd: fd, dataOnly: true) }
    }

    /// The file's status (`statx` on the open descriptor).
    public nonisolated(nonsending) func stat() async throws -> Status {
        let box = StatxBuffer()
        _ = try await descriptor.perform("statx", keepAlive: box) { fd, _ in
            .statx(directory: fd, path: box.emptyPath.pointer, flags: CU_AT_EMPTY_PATH, mask: UInt32(STATX_BASIC_STATS), buffer: box.pointer)
        }
        return box.status
    }

    /// The file's size in bytes.
    public var size: Int64 {
        get async throws { try await stat().size }
    }

    /// Closes the file, after cancelling and waiting for any operation still
    /// in flight on it. Idempotent.
    public nonisolated(nonsending) func close() async throws {
        try await descriptor.close()
    }
}

/// `ENXIO` ("No such device or address") says little about the two files
/// that most often give it on open; name them. Asked only on that error path.
private func noDeviceReason(_ path: String) -> String? {
    var status = stat()
    guard stat(path, &status) == 0 else { return nil }
    switch status.st_mode & S_IFMT {
    case S_IFIFO: return "a FIFO with no reader; open it for writing once a reader has it open"
    case S_IFSOCK: return "a Unix-domain socket, which is connected to, not opened: use SocketStream.connect(unixPath:)"
    default: return nil
    }
}
