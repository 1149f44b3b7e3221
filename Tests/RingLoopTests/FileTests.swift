import Glibc
@testable import RingLoop
import Testing

extension AllSuites {
    @Suite("Files", .serialized, .checksResources, .timeLimit(.minutes(2)))
    struct FileTests {
        @Test("64 MiB written at random offsets with writes in flight reads back as pread sees it", arguments: allBackends)
        func randomOffsetWrites(backend: Backend) async throws {
            let path = temporaryPath("random")
            defer { unlink(path) }
            let chunk = 256 * 1024
            let chunks = 256  // 64 MiB
            let base = pattern(chunk)
            // Each chunk: the shared pattern with its index stamped at both ends.
            @Sendable func data(_ index: Int) -> [UInt8] {
                var bytes = base
                withUnsafeBytes(of: UInt64(index + 1).littleEndian) { stamp in
                    bytes.replaceSubrange(0..<8, with: stamp)
                    bytes.replaceSubrange((chunk - 8)..<chunk, with: stamp)
                }
                return bytes
            }
            let (viaRead, viaPread) = try await onLoop(backend) { loop -> (Bool, Bool) in
                let file = try await File.open(path, .readWrite(create: true, truncate: true))
                // Shuffled chunk order, eight writers in flight.
                var order = Array(0..<chunks)
                var rng = SystemRandomNumberGenerator()
                order.shuffle(using: &rng)
                let queue = Box(order[...])
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<8 {
                        group.addTask {
                            while let index = queue.value.popFirst() {
                                try await file.writeAll(IOBuffer(data(index)), at: Int64(index * chunk))
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                #expect(try await file.size == Int64(chunk * chunks))
                // Read back with RingLoop, and independently with pread(2).
                var readOK = true, preadOK = true
                let buffer = try IOBuffer(capacity: chunk)
                var raw = [UInt8](repeating: 0, count: chunk)
                for index in 0..<chunks {
                    let expected = data(index)
                    var got: [UInt8] = []
                    while got.count < chunk {
                        let n = try await file.read(into: buffer, at: Int64(index * chunk + got.count))
                        if n == 0 { break }
                        got += buffer.bytes
                    }
                    readOK = readOK && got == expected
                    let n = raw.withUnsafeMutableBytes { pread(file.fileDescriptor, $0.baseAddress, chunk, off_t(index * chunk)) }
                    preadOK = preadOK && n == chunk && raw == expected
                }
                try await file.close()
                return (readOK, preadOK)
            }
            #expect(viaRead)
            #expect(viaPread)
        }

        @Test("copyFile copies in the kernel, and through user space with many operations in flight", arguments: allBackends)
        func copyFileCopies(backend: Backend) async throws {
            let source = temporaryPath("src"), target = temporaryPath("dst"), target2 = temporaryPath("dst2")
            defer { unlink(source); unlink(target); unlink(target2) }
            let data = pattern(3 * 1024 * 1024 + 12_345)
            let (inKernel, userSpace) = try await onLoop(backend) { _ in
                try await writeFile(source, data)
                try await copyFile(from: source, to: target, chunkSize: 64 * 1024, parallelism: 6)
                try await copyFile(from: source, to: target2, chunkSize: 64 * 1024, parallelism: 6, inKernel: false)
                return (try await readFile(target), try await readFile(target2))
            }
            #expect(inKernel == data)
            #expect(userSpace == data)
        }

        @Test("copyFile copies to the end of file, not to the size stat gives: a /proc file (size 0) arrives whole",
              arguments: allBackends)
        func copyFileProcFile(backend: Backend) async throws {
            let target = temporaryPath("proc"), target2 = temporaryPath("proc2")
            defer { unlink(target); unlink(target2) }
            let (expected, statSize, inKernel, userSpace) = try await onLoop(backend) { _ in
                let statSize = try await FileSystem.status("/proc/version").size
                try await copyFile(from: "/proc/version", to: target)
                try await copyFile(from: "/proc/version", to: target2, chunkSize: 16, parallelism: 2, inKernel: false)
                return (try await readFile("/proc/version"), statSize, try await readFile(target), try await readFile(target2))
            }
            #expect(statSize == 0, "the premise: procfs reports no size")
            #expect(!expected.isEmpty)
            #expect(inKernel == expected)
            #expect(userSpace == expected, "through user space too, in chunks smaller than the file")
        }

        @Test("copyFile refuses to copy a file onto itself (same path, hard link, symlink) and replaces a longer destination",
              arguments: allBackends)
        func copyFileSameFileAndOverwrite(backend: Backend) async throws {
            let source = temporaryPath("self"), link = temporaryPath("hardlink"), symlinkPath = temporaryPath("symlink")
            let longer = temporaryPath("longer")
            defer { unlink(source); unlink(link); unlink(symlinkPath); unlink(longer) }
            let data = pattern(100_000, seed: 9)
            let (codes, afterwards, replaced) = try await onLoop(backend) { _ -> ([IOError.Code], [UInt8], [UInt8]) in
                try await writeFile(source, data)
                Glibc.link(source, link)
                Glibc.symlink(source, symlinkPath)
                var codes: [IOError.Code] = []
                for destination in [source, link, symlinkPath] {
                    do { try await copyFile(from: source, to: destination) } catch let error as IOError { codes.append(error.code) }
                }
                try await writeFile(longer, [UInt8](repeating: 0xEE, count: 300_000))
                try await copyFile(from: source, to: longer)
                return (codes, try await readFile(source), try await readFile(longer))
            }
            #expect(codes == [.invalidArgument, .invalidArgument, .invalidArgument])
            #expect(afterwards == data, "the source is intact")
            #expect(replaced == data, "a longer destination is cut to the source's length")
        }

        @Test("cached reads are done inline (RWF_NOWAIT); a cold page takes the SQE or pool path and returns the right bytes",
              arguments: allBackends)
        func inlineReadsAndColdFallback(backend: Backend) async throws {
            let path = temporaryPath("nowait")
            defer { unlink(path) }
            let data = pattern(4 << 20, seed: 3)
            // The cold read is large (2 MiB): the readahead a RWF_NOWAIT miss
            // starts cannot finish before the kernel looks again, as it may for
            // one page on a fast disk, so the miss is seen and the read falls back.
            let coldRange = (1 << 20)..<(3 << 20)
            let (warmInline, warmBytes, coldReads, sawFallback, dropped) = try await onLoop(backend) {
                loop -> (Int, [UInt8], [[UInt8]], Bool, Bool) in
                try await writeFile(path, data)
                let file = try await File.open(path)
                let buffer = try IOBuffer(capacity: 4096)
                // Warm: just written, so cached.
                let before = loop.inlineReadsDone
                _ = try await file.read(into: buffer, at: 8192)
                let warmInline = loop.inlineReadsDone - before
                let warmBytes = buffer.withUnsafeBytes { Array($0) }
                // Cold: write back and drop the pages about to be read. Something
                // else on the machine may bring them back between the drop and
                // the read (the read is then rightly inline), so a few tries.
                var coldReads: [[UInt8]] = []
                var sawFallback = false, dropped = false
                for _ in 0..<5 where !sawFallback {
                    guard dropCachedPages(file.fileDescriptor, offset: coldRange.lowerBound, length: coldRange.count) else { continue }
                    dropped = true
                    let coldBuffer = try IOBuffer(capacity: coldRange.count)
                    let coldBefore = loop.inlineReadsDone
                    _ = try await file.read(into: coldBuffer, at: Int64(coldRange.lowerBound))
                    sawFallback = loop.inlineReadsDone == coldBefore
                    coldReads.append(coldBuffer.withUnsafeBytes { Array($0) })
                }
                try await file.close()
                return (warmInline, warmBytes, coldReads, sawFallback, dropped)
            }
            #expect(warmInline == 1, "a cached read is done inline")
            #expect(warmBytes == Array(data[8192..<(8192 + 4096)]))
            // Only pages the kernel really dropped say anything about the cold path.
            if dropped { #expect(sawFallback, "an uncached read is not done inline") }
            #expect(coldReads.allSatisfy { $0 == Array(data[coldRange]) }, "every read, inline or not, returns the right bytes")
        }

        @Test("registered buffers: fixed reads and writes (O_DIRECT too) are correct; one pool per loop; after unregister they are plain buffers",
              arguments: allBackends)
        func registeredBuffers(backend: Backend) async throws {
            let path = temporaryPath("fixed")
            defer { unlink(path) }
            let data = pattern(64 * 4096, seed: 21)
            let outcome = try await onLoop(backend) { loop -> (Int?, [UInt8], [UInt8], [UInt8], IOError?, IOError?, Bool) in
                try await writeFile(path, data)
                let pool = try RegisteredBuffers(count: 8, size: 4096)
                #expect(pool.isRegistered == (backend == .uring))
                var fixedIndex: Int?
                if case .uring(let ring) = loop.io { fixedIndex = ring.fixedIndex(of: pool.buffers[5]) }
                // Buffered and O_DIRECT reads into slots, at distinct offsets.
                let file = try await File.open(path, .readWrite())
                _ = try await file.read(into: pool.buffers[5], at: 3 * 4096)
                let direct = try await File.open(path, File.Options.read.direct)
                _ = try await direct.read(into: pool.buffers[2], at: 7 * 4096)
                let viaDirect = pool.buffers[2].bytes
                // A write from a slot lands where it should.
                try pool.buffers[1].set([UInt8](repeating: 0xAB, count: 4096))
                _ = try await file.write(pool.buffers[1], at: 10 * 4096)
                let check = try IOBuffer(capacity: 4096)
                _ = try await file.read(into: check, at: 10 * 4096)
                let written = check.bytes
                // A second pool on the same loop is refused; the first survives.
                var busy: IOError?
                do { _ = try RegisteredBuffers(count: 1, size: 4096) } catch let error as IOError { busy = error }
                var bad: IOError?
                do { _ = try RegisteredBuffers(count: 1, size: 1000) } catch let error as IOError { bad = error }
                try pool.unregister()
                let registeredAfter = pool.isRegistered
                _ = try await file.read(into: pool.buffers[5], at: 4 * 4096)   // a plain read now
                let afterUnregister = pool.buffers[5].bytes
                try await direct.close()
                try await file.close()
                return (fixedIndex, viaDirect, written, afterUnregister, busy, bad, registeredAfter)
            }
            let (fixedIndex, viaDirect, written, afterUnregister, busy, bad, registeredAfter) = outcome
            if backend == .uring {
                #expect(fixedIndex == 5, "slot 5 is fixed buffer 5 of the ring")
                #expect(busy?.errno == Errno(EBUSY), "a second pool on one loop: \(String(describing: busy))")
            } else {
                #expect(fixedIndex == nil)
                #expect(busy == nil, "epoll registers nothing, so a second pool is fine")
            }
            #expect(viaDirect == Array(data[(7 * 4096)..<(8 * 4096)]))
            #expect(written == [UInt8](repeating: 0xAB, count: 4096))
            #expect(afterUnregister == Array(data[(4 * 4096)..<(5 * 4096)]))
            #expect(bad?.code == .invalidArgument, "a size that is not a multiple of the alignment")
            #expect(!registeredAfter)
        }

        @Test("batch reads and writes: one call, a result per item; a bad item fails alone", arguments: allBackends)
        func batchTransfers(backend: Backend) async throws {
            let path = temporaryPath("batch")
            defer { unlink(path) }
            let (writes, reads, contents, cold) = try await onLoop(backend) { _ -> ([Result<Int, IOError>], [Result<Int, IOError>], [[UInt8]], [Result<Int, IOError>]) in
                let file = try await File.open(path, .readWrite(create: true, truncate: true))
                let blocks = (0..<8).map { i in IOBuffer([UInt8](repeating: UInt8(i + 1), count: 4096)) }
                let writes = try await file.write(batch: blocks.enumerated().map { ($0.element, Int64($0.offset) * 4096) }
                                                  + [(IOBuffer([9]), -1)])
                let targets = try (0..<8).map { _ in try IOBuffer(capacity: 4096) }
                var items: [(buffer: IOBuffer, offset: Int64)] = targets.enumerated().map { ($0.element, Int64(7 - $0.offset) * 4096) }
                items.insert((try IOBuffer(capacity: 16), -5), at: 3)          // bad offset
                items.append((try IOBuffer(capacity: 16), 1 << 30))            // past the end: 0 bytes
                let reads = try await file.read(batch: items)
                let contents = targets.map { buffer in buffer.withUnsafeBytes { Array($0) } }
                // The same reads once the pages are dropped: none inline, all through the kernel or the pool.
                _ = fsync(file.fileDescriptor)
                _ = posix_fadvise(file.fileDescriptor, 0, 0, POSIX_FADV_DONTNEED)
                let cold = try await file.read(batch: targets.enumerated().map { ($0.element, Int64($0.offset) * 4096) })
                try await file.close()
                return (writes, reads, contents, cold)
            }
            #expect(writes.prefix(8).allSatisfy { (try? $0.get()) == 4096 })
            if case .failure(let error) = writes[8] { #expect(error.code == .invalidArgument) } else { Issue.record("negative write offset succeeded") }
            #expect(reads.count == 10)
            if case .failure(let error) = reads[3] { #expect(error.code == .invalidArgument) } else { Issue.record("negative read offset succeeded") }
            #expect((try? reads[9].get()) == 0, "a read past the end reads 0 bytes")
            let good = reads.enumerated().filter { $0.offset != 3 && $0.offset != 9 }.map(\.element)
            #expect(good.allSatisfy { (try? $0.get()) == 4096 })
            for (i, bytes) in contents.enumerated() { #expect(bytes == [UInt8](repeating: UInt8(7 - i + 1), count: 4096)) }
            #expect(cold.allSatisfy { (try? $0.get()) == 4096 })
        }

        // io_uring only, and on a socket wrapped as a plain File through the
        // internal initializer: the public API refuses positional reads of a
        // stream (ESPIPE, next test), and a regular file's reads finish before
        // a cancellation could reach them. io_uring ignores the offset on a
        // socket, so both reads wait until cancelled.
        @Test("a cancelled batch read ends with CancellationError and leaves nothing in flight", arguments: uringOnly)
        func batchCancelled(backend: Backend) async throws {
            var pair: [Int32] = [0, 0]
            try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0)
            let (reading, peer) = (pair[0], pair[1])
            defer { close(peer) }
            let outcome = try await onLoop(backend) { loop -> String in
                let file = File(fd: reading, path: "socketpair", loop: loop)
                let task = loop.spawn { try await file.read(batch: [(try IOBuffer(capacity: 8), 0), (try IOBuffer(capacity: 8), 0)]) }
                try await loop.sleep(for: .milliseconds(20))
                task.cancel()
                var outcome = "returned"
                do { _ = try await task.value } catch is CancellationError { outcome = "cancelled" } catch { outcome = "\(error)" }
                try await file.close()
                return outcome
            }
            #expect(outcome == "cancelled")
        }

        @Test("readAll of an empty file is empty; readToEnd follows the position", arguments: allBackends)
        func emptyAndPositional(backend: Backend) async throws {
            let path = temporaryPath("empty")
            defer { unlink(path) }
            let (empty, rest, sequential) = try await onLoop(backend) { _ in
                try await writeFile(path, [UInt8]())
                let empty = try await readFile(path)
                try await writeFile(path, Array("hello world".utf8))
                let file = try await File.open(path)
                let head = try IOBuffer(capacity: 6)
                _ = try await file.read(into: head)  // advances the position
                let rest = try await file.readToEnd()
                let all = try await file.readAll()
                try await file.close()
                return (empty, rest, all)
            }
            #expect(empty.isEmpty)
            #expect(rest == Array("world".utf8))
            #expect(sequential == Array("hello world".utf8))
        }

        @Test("a read limit: a file of exactly the limit reads whole, one byte more is EFBIG naming the path; /dev/zero stops at it; a /proc file (stat size 0) reads whole",
              arguments: allBackends)
        func readLimit(backend: Backend) async throws {
            let path = temporaryPath("limit")
            defer { unlink(path) }
            let content = pattern(200_000, seed: 9)
            let (exact, over, zero, positional, negative) = try await onLoop(backend) { _ in
                try await writeFile(path, content)
                let exact = try await readFile(path, limit: content.count)
                var over: IOError?, zero: IOError?, negative: IOError?
                do { _ = try await readFile(path, limit: content.count - 1) } catch let error as IOError { over = error }
                do { _ = try await readFile("/dev/zero", limit: 100_000) } catch let error as IOError { zero = error }
                let file = try await File.open(path)
                let head = try IOBuffer(capacity: 100)
                _ = try await file.read(into: head)
                let positional = try await file.readToEnd(chunkSize: 4096, limit: content.count - 100)
                do { _ = try await file.readAll(limit: -1) } catch let error as IOError { negative = error }
                try await file.close()
                // stat says 0 bytes: the size is only a hint for the result's capacity.
                let proc = String(decoding: try await readFile("/proc/self/status"), as: UTF8.self)
                #expect(proc.hasPrefix("Name:") && proc.contains("\nPid:"), "\(proc.prefix(200))")
                return (exact, over, zero, positional, negative)
            }
            #expect(exact == content)
            #expect(over?.errno == Errno(EFBIG) && over?.path == path, "\(String(describing: over))")
            #expect(over?.description.contains("limit of 199999 bytes") == true, "\(String(describing: over))")
            #expect(zero?.errno == Errno(EFBIG) && zero?.path == "/dev/zero", "\(String(describing: zero))")
            #expect(positional == Array(content.dropFirst(100)), "readToEnd's limit counts from the position")
            #expect(negative?.errno == Errno(EINVAL), "\(String(describing: negative))")
        }

        @Test("writeAll of an array over 1 MiB (written through one reused chunk) lands whole, at an offset and at the position",
              arguments: allBackends)
        func largeArrayWrites(backend: Backend) async throws {
            let path = temporaryPath("large-array")
            defer { unlink(path) }
            let first = pattern(3 << 20 | 12_345, seed: 21), second = pattern(2 << 20, seed: 22)
            let (content, position) = try await onLoop(backend) { _ -> ([UInt8], Int64) in
                let file = try await File.open(path, .readWrite(create: true, truncate: true))
                try await file.writeAll(first)                                  // at the position: 0
                try await file.writeAll(second)                                 // at the position: after `first`
                try await file.writeAll(ArraySlice(first.prefix(1 << 21 | 7)), at: 1_000)   // over both, at an offset
                let position = file.position ?? -1
                let content = try await file.readAll()
                try await file.close()
                return (content, position)
            }
            var expected = first + second
            expected.replaceSubrange(1_000..<(1_000 + (1 << 21 | 7)), with: first.prefix(1 << 21 | 7))
            #expect(content.count == expected.count)
            #expect(content == expected)
            #expect(position == Int64(first.count + second.count), "a positional write does not move the position")
        }

        @Test("append mode: writes without an offset go to the end, from two Files and from concurrent tasks, none lost",
              arguments: allBackends)
        func appendMode(backend: Backend) async throws {
            let path = temporaryPath("append")
            defer { unlink(path) }
            let text = try await onLoop(backend) { _ -> String in
                try await writeFile(path, Array("header\n".utf8))
                // The File's own position starts at 0 here; O_APPEND puts each
                // write at the end regardless, as it does for pwrite on Linux.
                let first = try await File.open(path, .write(create: false, truncate: false, append: true))
                let second = try await File.open(path, .write(create: false, truncate: false, append: true))
                for i in 0..<20 {
                    try await first.writeAll(Array("a\(i)\n".utf8))
                    _ = try await second.write(IOBuffer(Array("b\(i)\n".utf8)))
                }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for i in 0..<20 {
                        group.addTask { try await first.writeAll(Array(repeating: UInt8(ascii: "x"), count: 5000) + Array("\(i)\n".utf8)) }
                    }
                    try await group.waitForAll()
                }
                try await first.close()
                try await second.close()
                return String(decoding: try await readFile(path), as: UTF8.self)
            }
            let lines = text.split(separator: "\n").map(String.init)
            #expect(lines.count == 1 + 40 + 20)
            let interleaved: [String] = ["header"] + (0..<20).flatMap { (i: Int) -> [String] in ["a\(i)", "b\(i)"] }
            #expect(Array(lines.prefix(41)) == interleaved)
            let bulk = Array(lines.dropFirst(41))
            let numbers: Set<String> = Set(bulk.map { (line: String) -> String in String(line.drop { $0 == "x" }) })
            let expected: Set<String> = Set((0..<20).map { String($0) })
            #expect(numbers == expected, "each concurrent append whole")
            #expect(bulk.allSatisfy { (line: String) -> Bool in line.prefix { $0 == "x" }.count == 5000 })
        }

        @Test("writeAll at the current position that the file size limit cuts short: the error, the first part intact, the position after it",
              arguments: allBackends)
        func shortWriteAtPosition(backend: Backend) async throws {
            let path = temporaryPath("short-write")
            defer { unlink(path) }
            // RLIMIT_FSIZE makes a write that crosses it short, then EFBIG, as
            // a full disk does with ENOSPC (SIGXFSZ ignored meanwhile, since
            // its default ends the process). io_uring's current-position mode
            // lost the position there: the second half went over the first,
            // and writeAll reported success.
            let limit = 1 << 20
            var old = rlimit()
            getrlimit(Int32(RLIMIT_FSIZE.rawValue), &old)
            let previous = signal(SIGXFSZ, unsafeBitCast(Int(1), to: __sighandler_t.self))   // SIG_IGN
            var capped = rlimit(rlim_cur: rlim_t(limit), rlim_max: old.rlim_max)
            setrlimit(Int32(RLIMIT_FSIZE.rawValue), &capped)
            defer {
                setrlimit(Int32(RLIMIT_FSIZE.rawValue), &old)
                signal(SIGXFSZ, previous)
            }
            let data = pattern(2 << 20, seed: 11)
            let (failure, position, tail) = try await onLoop(backend) { _ -> (Int32?, Int, Int) in
                let file = try await File.open(path, .write())
                var failure: Int32?
                do { try await file.writeAll(data) } catch let error as IOError { failure = error.errno?.rawValue }
                // The next write at the position goes after the part written.
                var tail = 0
                do { tail = try await file.write(IOBuffer([1])) } catch {}
                let position = Int(file.position ?? -1)
                try await file.close()
                return (failure, position, tail)
            }
            #expect(failure == EFBIG, "writeAll threw EFBIG")
            #expect(position == limit, "the position is after the megabyte written")
            #expect(tail == 0, "nothing more fits")
            let written = try await onLoop(backend) { _ in try await readFile(path) }
            #expect(written.count == limit)
            #expect(written == Array(data.prefix(limit)), "the first megabyte, not the second written over it")
        }

        @Test("opening a missing file is a clean error naming the path", arguments: allBackends)
        func missingFile(backend: Backend) async throws {
            let error = try await onLoop(backend) { _ -> IOError? in
                do { _ = try await File.open("/nonexistent/ringloop/file") } catch let error as IOError { return error }
                return nil
            }
            #expect(error?.code == .noSuchFile)
            #expect(error?.description == "open(/nonexistent/ringloop/file): ENOENT (No such file or directory)")
        }

        @Test("using a file against its open mode is EBADF saying which mode: write to read-only, read (plain, batch, sendFile) from write-only",
              arguments: allBackends)
        func wrongAccessMode(backend: Backend) async throws {
            let path = temporaryPath("mode")
            defer { unlink(path) }
            let errors = try await onLoop(backend) { _ -> [IOError?] in
                try await writeFile(path, [1, 2, 3])
                func caught(_ body: () async throws -> Void) async -> IOError? {
                    do { try await body() } catch let error as IOError { return error } catch {}
                    return nil
                }
                let readOnly = try await File.open(path, .read)
                let writeOnly = try await File.open(path, .write(create: false, truncate: false))
                let listener = try await SocketListener.bind(host: "127.0.0.1", port: 0)
                let stream = try await SocketStream.connect(to: listener.localAddress)
                let buffer = try IOBuffer(capacity: 8)
                var errors = [IOError?]()
                errors.append(await caught { try await readOnly.writeAll([9], at: 0) })
                errors.append(await caught { _ = try await writeOnly.read(into: buffer, at: 0) })
                errors.append(await caught {
                    if case .failure(let error) = try await writeOnly.read(batch: [(buffer, 0)])[0] { throw error }
                })
                errors.append(await caught { _ = try await stream.sendFile(writeOnly, count: 3) })
                // The file is untouched, and both still work in their own direction.
                #expect(try await readOnly.read(into: buffer, at: 0) == 3 && buffer.bytes == [1, 2, 3])
                try await writeOnly.writeAll([4], at: 3)
                for file in [readOnly, writeOnly] { try await file.close() }
                #expect(try await readFile(path) == [1, 2, 3, 4])
                try await stream.close()
                try await listener.close()
                return errors
            }
            let expected = [("write", "reading only"), ("read", "writing only"), ("read", "writing only"), (nil, "writing only")]
            #expect(errors.count == expected.count)
            for (error, (operation, mode)) in zip(errors, expected) {
                #expect(error?.code == .badFileDescriptor)
                if let operation { #expect(error?.operation == operation) }
                #expect(error?.description.contains("it is open for \(mode)") == true, "\(String(describing: error))")
            }
        }

        @Test("bad arguments are thrown errors, not crashes", arguments: allBackends)
        func badArguments(backend: Backend) async throws {
            let path = temporaryPath("args")
            defer { unlink(path) }
            let (codes, closedText) = try await onLoop(backend) { _ -> ([IOError.Code], String) in
                var codes: [IOError.Code] = []
                var closedText = ""
                do { _ = try IOBuffer(capacity: -1) } catch let e as IOError { codes.append(e.code) }
                try await writeFile(path, [1])
                let file = try await File.open(path)
                do { _ = try await file.read(into: IOBuffer(capacity: 1), at: -5) } catch let e as IOError { codes.append(e.code) }
                try await file.close()
                do { _ = try await file.read(into: IOBuffer(capacity: 1)) } catch let e as IOError {
                    codes.append(e.code)
                    closedText = e.description
                }
                try await file.close()  // idempotent
                return (codes, closedText)
            }
            #expect(codes == [IOError.Code.invalidArgument, .invalidArgument, .closed])
            // Closed before the call: the message names the file and does not
            // claim the close raced an operation in flight.
            #expect(closedText.contains(path) && closedText.contains("closed") && !closedText.contains("in flight"), "\(closedText)")
        }

        @Test("sync, dataSync and stat work", arguments: allBackends)
        func syncAndStat(backend: Backend) async throws {
            let path = temporaryPath("sync")
            defer { unlink(path) }
            let status = try await onLoop(backend) { _ -> File.Status in
                let file = try await File.open(path, .write())
                try await file.writeAll(pattern(5000))
                try await file.sync()
                try await file.dataSync()
                let status = try await file.stat()
                try await file.close()
                return status
            }
            #expect(status.size == 5000)
            #expect(status.isRegularFile)
        }
    }
}
