import Glibc
@testable import RingLoop
import Testing

/// The zombies among this process's children right now.
func zombieChildren() -> Int {
    guard let dir = opendir("/proc") else { return 0 }
    defer { closedir(dir) }
    var zombies = 0
    let me = getpid()
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        guard let pid = Int32(name) else { continue }
        let fd = open("/proc/\(pid)/stat", O_RDONLY)
        guard fd >= 0 else { continue }
        var buffer = [UInt8](repeating: 0, count: 512)
        let n = read(fd, &buffer, buffer.count)
        close(fd)
        guard n > 0, let close = buffer.prefix(n).lastIndex(of: UInt8(ascii: ")")) else { continue }
        let fields = String(decoding: buffer[(close + 2)..<n], as: UTF8.self).split(separator: " ")
        if fields.count > 1, fields[0] == "Z", Int32(fields[1]) == me { zombies += 1 }
    }
    return zombies
}

extension AllSuites {
    /// Subprocesses: exit codes, signals, pipes both ways, large output, errors.
    @Suite("Subprocesses", .serialized, .checksResources, .timeLimit(.minutes(2)))
    struct SubprocessTests {
        @Test("exit codes and signals come back as Termination", arguments: allBackends)
        func exitCodesAndSignals(backend: Backend) async throws {
            let (ok, three, killed, terminated) = try await onLoop(backend) { loop -> (Subprocess.Termination, Subprocess.Termination, Subprocess.Termination, Subprocess.Termination) in
                let ok = try await Subprocess.spawn("true").wait()
                let three = try await Subprocess.spawn("sh", arguments: ["-c", "exit 3"]).wait()
                let sleeper = try await Subprocess.spawn("sleep", arguments: ["30"])
                try sleeper.kill()
                let killed = try await sleeper.wait()
                #expect(try await sleeper.wait() == killed, "a second wait returns the same outcome")
                try sleeper.terminate()   // already reaped: not an error
                let polite = try await Subprocess.spawn("sleep", arguments: ["30"])
                try await loop.sleep(for: .milliseconds(20))
                try polite.terminate()
                return (ok, three, killed, try await polite.wait())
            }
            #expect(ok == .exited(0))
            #expect(three == .exited(3))
            #expect(killed == .signaled(SIGKILL))
            #expect(terminated == .signaled(SIGTERM))
            #expect(zombieChildren() == 0)
        }

        @Test("a cancelled wait (withTimeout) ends at once, the child runs on, a later wait gets its outcome",
              arguments: allBackends)
        func cancelledWait(backend: Backend) async throws {
            let (timedOut, elapsed, runningAfter, outcome) = try await onLoop(backend) { loop -> (Bool, Duration, Bool, Subprocess.Termination) in
                let sleeper = try await Subprocess.spawn("sleep", arguments: ["30"])
                let start = ContinuousClock.now
                var timedOut = false
                do { _ = try await withTimeout(.milliseconds(50)) { try await sleeper.wait() } } catch is TimeoutError { timedOut = true }
                let elapsed = ContinuousClock.now - start
                let runningAfter = sleeper.termination == nil && Glibc.kill(sleeper.pid, 0) == 0
                // Two waiters at once; cancelling one leaves the other waiting.
                let first = loop.spawn { try await sleeper.wait() }
                let second = loop.spawn { try await sleeper.wait() }
                try await loop.sleep(for: .milliseconds(20))
                first.cancel()
                _ = await first.result
                try sleeper.kill()
                return (timedOut, elapsed, runningAfter, try await second.value)
            }
            #expect(timedOut)
            #expect(elapsed < .seconds(10), "the wait ended with its timeout, not with the child (\(elapsed))")
            #expect(runningAfter, "cancelling a wait leaves the child running")
            #expect(outcome == .signaled(SIGKILL))
        }

        @Test("pipes both ways: communicate feeds stdin and collects stdout and stderr", arguments: allBackends)
        func pipesBothWays(backend: Backend) async throws {
            let (out, err, status) = try await onLoop(backend) { _ -> ([UInt8], [UInt8], Subprocess.Termination) in
                let child = try await Subprocess.spawn("sh", arguments: ["-c", "sort -r; echo done >&2; exit 7"],
                                                       stdin: .pipe, stdout: .pipe, stderr: .pipe)
                let result = try await child.communicate(input: Array("a\nc\nb\n".utf8))
                // A second call finds the pipes read and closed: empty output,
                // the same termination, its input dropped (asyncio's behaviour).
                let again = try await child.communicate(input: Array("x\n".utf8))
                #expect(again.stdout.isEmpty && again.stderr.isEmpty && again.termination == result.termination)
                // Input for a child whose stdin is no pipe has nowhere to go:
                // an error, not bytes dropped without a word. Without input it works.
                let noPipe = try await Subprocess.spawn("/bin/echo", arguments: ["hi"], stdout: .pipe)
                await #expect(throws: IOError.self) { _ = try await noPipe.communicate(input: [1, 2, 3]) }
                let output = try await noPipe.communicate()
                #expect(output.stdout == Array("hi\n".utf8) && output.termination == .exited(0))
                return (result.stdout, result.stderr, result.termination)
            }
            #expect(String(decoding: out, as: UTF8.self) == "c\nb\na\n")
            #expect(String(decoding: err, as: UTF8.self) == "done\n")
            #expect(status == .exited(7))
        }

        @Test("writing to a child that exited without reading: brokenPipe naming the descriptor, never SIGPIPE",
              arguments: allBackends)
        func writeToExitedChild(backend: Backend) async throws {
            let error = try await onLoop(backend) { _ -> IOError? in
                let child = try await Subprocess.spawn("true", stdin: .pipe)
                #expect(try await child.wait() == .exited(0))
                let stdin = try #require(child.stdin)
                var failure: IOError?
                do {
                    try await stdin.writeAll(pattern(1 << 20, seed: 3))
                } catch let error as IOError {
                    failure = error
                }
                try? await stdin.close()
                return failure
            }
            let failure = try #require(error, "a megabyte into a pipe nobody reads cannot succeed")
            #expect(failure.code == .brokenPipe)
            #expect(failure.fd != nil)
            // The pipe is an unnamed socket: no address to name ("unix:" would be noise).
            #expect(failure.path == nil, "\(failure)")
        }

        @Test("10 MiB on stdout while 10 MiB go to stdin: no deadlock, every byte", arguments: allBackends)
        func largeOutput(backend: Backend) async throws {
            let (count, status) = try await onLoop(backend) { _ -> (Int, Subprocess.Termination) in
                let child = try await Subprocess.spawn("cat", stdin: .pipe, stdout: .pipe)
                let input = pattern(10 << 20, seed: 9)
                let result = try await child.communicate(input: input)
                #expect(result.stdout == input)
                return (result.stdout.count, result.termination)
            }
            #expect(count == 10 << 20)
            #expect(status == .exited(0))
        }

        @Test("lines from a child's stdout; stdio to /dev/null and to an inherited descriptor", arguments: allBackends)
        func stdioKinds(backend: Backend) async throws {
            let path = temporaryPath("child-output")
            defer { unlink(path) }
            let lines = try await onLoop(backend) { _ -> [String] in
                let child = try await Subprocess.spawn("sh", arguments: ["-c", "echo one; echo two; echo lost >&2"], stdout: .pipe, stderr: .null)
                var lines: [String] = []
                for try await line in child.stdout!.lines { lines.append(line) }
                _ = try await child.wait()
                try await child.stdout!.close()
                let fd = open(path, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0o644)
                defer { close(fd) }
                _ = try await Subprocess.spawn("echo", arguments: ["to a file"], stdout: .fileDescriptor(fd)).wait()
                return lines
            }
            #expect(lines == ["one", "two"])
            #expect(try await onLoop(backend) { _ in try await readFile(path) } == Array("to a file\n".utf8))
        }

        @Test("a missing executable is an IOError naming it; nothing is left open", arguments: allBackends)
        func missingExecutable(backend: Backend) async throws {
            let error = try await onLoop(backend) { _ -> IOError? in
                do {
                    _ = try await Subprocess.spawn("ringloop-no-such-program", stdin: .pipe, stdout: .pipe)
                    return nil
                } catch let error as IOError {
                    return error
                }
            }
            #expect(error?.code == .noSuchFile)
            #expect(error?.path == "ringloop-no-such-program")
            #expect(error?.operation == "posix_spawn")
        }

        @Test("bad working directories, environment names and NUL bytes are IOErrors naming what is wrong", arguments: allBackends)
        func badDirectoryAndEnvironment(backend: Backend) async throws {
            let errors = try await onLoop(backend) { _ -> [IOError?] in
                func attempt(_ body: () async throws -> Subprocess) async -> IOError? {
                    do {
                        let child = try await body()
                        _ = try? await child.wait()
                        return nil
                    } catch { return error as? IOError }
                }
                return [
                    await attempt { try await Subprocess.spawn("/bin/true", workingDirectory: "/ringloop-no-such-dir", stdout: .pipe) },
                    await attempt { try await Subprocess.spawn("/bin/true", workingDirectory: "/proc/self/status") },
                    await attempt { try await Subprocess.spawn("/bin/true", environment: ["A=B": "c"]) },
                    await attempt { try await Subprocess.spawn("/bin/true", environment: ["": "c"]) },
                    await attempt { try await Subprocess.spawn("/bin/echo", arguments: ["a\u{0}b"]) },
                    await attempt { try await Subprocess.spawn("/bin/true", environment: ["A": "x\u{0}y"]) },
                    await attempt { try await Subprocess.spawn("/bin/true", workingDirectory: "/tmp\u{0}x") },
                ]
            }
            #expect(errors[0]?.code == .noSuchFile)
            #expect(errors[0]?.path == "/ringloop-no-such-dir", "the directory is named, not the executable")
            #expect(errors[0]?.description.contains("working directory of /bin/true") == true)
            #expect(errors[1]?.errno == Errno(ENOTDIR))
            #expect(errors[1]?.path == "/proc/self/status")
            #expect(errors[2]?.code == .invalidArgument)
            #expect(errors[2]?.description.contains("\"A=B\"") == true)
            #expect(errors[3]?.code == .invalidArgument)
            #expect(errors[4]?.code == .invalidArgument)
            #expect(errors[4]?.description.contains("an argument contains a NUL byte") == true)
            #expect(errors[5]?.description.contains("an environment variable contains a NUL byte") == true)
            #expect(errors[6]?.description.contains("the working directory contains a NUL byte") == true)
        }

        @Test("a kernel without IORING_OP_WAITID: exits are awaited as pidfd readiness", arguments: uringOnly)
        func waitWithoutWaitidOpcode(backend: Backend) async throws {
            let (three, killed) = try await onLoop(backend) { loop -> (Subprocess.Termination, Subprocess.Termination) in
                if case .uring(let ring) = loop.io { ring.forgetOptionalOpcodes() }
                let three = try await Subprocess.spawn("sh", arguments: ["-c", "sleep 0.05; exit 3"]).wait()
                let sleeper = try await Subprocess.spawn("sleep", arguments: ["30"])
                try await loop.sleep(for: .milliseconds(20))
                try sleeper.kill()
                return (three, try await sleeper.wait())
            }
            #expect(three == .exited(3))
            #expect(killed == .signaled(SIGKILL))
            #expect(zombieChildren() == 0)
        }

        @Test("a Subprocess dropped without wait is still reaped: no zombie", arguments: allBackends)
        func droppedIsReaped(backend: Backend) async throws {
            let zombies = try await onLoop(backend) { loop -> Int in
                do { _ = try await Subprocess.spawn("true") }
                try await waitUntil(loop) { zombieChildren() == 0 }
                return zombieChildren()
            }
            #expect(zombies == 0)
        }
    }
}
