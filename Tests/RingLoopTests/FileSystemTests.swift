import Glibc
@testable import RingLoop
import Testing

extension AllSuites {
    /// unlink, rmdir, rename, mkdir, stat by path, fallocate, ftruncate,
    /// directory fsync and listing: success paths and the errors users hit.
    @Suite("File-system calls", .serialized, .checksResources, .timeLimit(.minutes(2)))
    struct FileSystemTests {
        @Test("mkdir, rename, list, stat, fsync of the directory, unlink, rmdir", arguments: allBackends)
        func successPaths(backend: Backend) async throws {
            let root = temporaryPath("fs")
            let (listed, renamedStatus, afterRemoval) = try await onLoop(backend) { _ -> ([String], File.Status, [String]) in
                try await FileSystem.makeDirectory(root, permissions: 0o750)
                try await writeFile("\(root)/a.tmp", Array("hello".utf8))
                try await writeFile("\(root)/b", [1, 2])
                try await FileSystem.rename("\(root)/a.tmp", to: "\(root)/a")
                try await FileSystem.syncDirectory(root)
                let listed = try await FileSystem.contentsOfDirectory(root).sorted()
                let status = try await FileSystem.status("\(root)/a")
                try await FileSystem.remove("\(root)/a")
                try await FileSystem.remove("\(root)/b")
                let afterRemoval = try await FileSystem.contentsOfDirectory(root)
                try await FileSystem.removeDirectory(root)
                return (listed, status, afterRemoval)
            }
            #expect(listed == ["a", "b"])
            #expect(renamedStatus.size == 5 && renamedStatus.isRegularFile)
            #expect(afterRemoval.isEmpty)
            #expect(access(root, F_OK) != 0)
        }

        @Test("errors name the call, the path and the errno: missing, exists, not empty, permission", arguments: allBackends)
        func errors(backend: Backend) async throws {
            let root = temporaryPath("fs-errors")
            let errors = try await onLoop(backend) { _ -> [String: IOError] in
                var errors: [String: IOError] = [:]
                func record(_ name: String, _ body: () async throws -> Void) async {
                    do { try await body() } catch let error as IOError { errors[name] = error } catch {}
                }
                await record("unlink missing") { try await FileSystem.remove("\(root)/missing") }
                await record("stat missing") { _ = try await FileSystem.status("\(root)/missing") }
                await record("list missing") { _ = try await FileSystem.contentsOfDirectory("\(root)/missing") }
                await record("rename missing") { try await FileSystem.rename("\(root)/missing", to: "\(root)/x") }
                try await FileSystem.makeDirectory(root)
                await record("mkdir exists") { try await FileSystem.makeDirectory(root) }
                try await writeFile("\(root)/file", [1])
                await record("rmdir not empty") { try await FileSystem.removeDirectory(root) }
                await record("rmdir a file") { try await FileSystem.removeDirectory("\(root)/file") }
                if geteuid() != 0 {
                    chmod(root, 0o500)
                    await record("permission") { try await FileSystem.remove("\(root)/file") }
                    chmod(root, 0o700)
                } else {
                    // root ignores directory modes; sysfs refuses it a new directory (EPERM).
                    await record("permission") { try await FileSystem.makeDirectory("/sys/ringloop-test") }
                }
                await record("NUL") { try await FileSystem.remove("\(root)/a\0b") }
                try await FileSystem.remove("\(root)/file")
                try await FileSystem.removeDirectory(root)
                return errors
            }
            #expect(errors["unlink missing"]?.code == .noSuchFile)
            #expect(errors["unlink missing"]?.operation == "unlink")
            #expect(errors["unlink missing"]?.path == "\(root)/missing")
            #expect(errors["stat missing"]?.code == .noSuchFile)
            #expect(errors["list missing"]?.code == .noSuchFile)
            #expect(errors["rename missing"]?.path?.contains(" -> ") == true)
            #expect(errors["mkdir exists"]?.errno == Errno(EEXIST))
            #expect(errors["rmdir not empty"]?.errno == Errno(ENOTEMPTY))
            #expect(errors["rmdir a file"]?.errno == Errno(ENOTDIR))
            #expect(errors["permission"]?.code == .permissionDenied, "\(String(describing: errors["permission"]))")
            #expect(errors["NUL"]?.code == .invalidArgument)
        }

        @Test("fallocate reserves, truncate cuts and extends; bad sizes are errors", arguments: allBackends)
        func allocateAndTruncate(backend: Backend) async throws {
            let path = temporaryPath("fallocate")
            defer { unlink(path) }
            let (allocated, kept, cut, extended, bad) = try await onLoop(backend) { _ -> (Int64, Int64, Int64, Int64, IOError?) in
                let file = try await File.open(path, .readWrite(create: true, truncate: true))
                try await file.allocate(length: 1 << 20)
                let allocated = try await file.size
                try await file.allocate(offset: 1 << 20, length: 1 << 20, keepSize: true)
                let kept = try await file.size
                try await file.truncate(to: 100)
                let cut = try await file.size
                try await file.truncate(to: 10_000)
                let extended = try await file.size
                var bad: IOError?
                do { try await file.truncate(to: -1) } catch let error as IOError { bad = error }
                try await file.close()
                return (allocated, kept, cut, extended, bad)
            }
            #expect(allocated == 1 << 20)
            #expect(kept == 1 << 20, "keepSize does not grow the size")
            #expect(cut == 100)
            #expect(extended == 10_000)
            #expect(bad?.code == .invalidArgument)
        }

        @Test("a kernel without the opcodes: the same calls run on the thread pool", arguments: uringOnly)
        func poolFallback(backend: Backend) async throws {
            let root = temporaryPath("fs-pool")
            let listed = try await onLoop(backend) { loop -> [String] in
                if case .uring(let ring) = loop.io { ring.forgetOptionalOpcodes() }
                #expect(!loop.io.canSubmit(.ftruncate(fd: 0, length: 0)))
                try await FileSystem.makeDirectory(root)
                let file = try await File.open("\(root)/f", .readWrite(create: true))
                try await file.truncate(to: 42)
                #expect(try await file.size == 42)
                try await file.close()
                try await FileSystem.rename("\(root)/f", to: "\(root)/g")
                let listed = try await FileSystem.contentsOfDirectory(root)
                try await FileSystem.remove("\(root)/g")
                try await FileSystem.removeDirectory(root)
                return listed
            }
            #expect(listed == ["g"])
        }
    }
}
