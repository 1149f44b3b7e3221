import CUring

/// What RingLoop asks of the kernel's io_uring, and the checks that decide
/// between using it and falling back to epoll: the set-up flags tried in
/// turn, the opcodes it cannot do without, and the ones it uses when present;
/// and the summary of what this ring got.
extension URingBackend {
    /// Ring set-up attempts, strongest first (DESIGN.md "Ring setup"), each
    /// with the newest flag it needs: SINGLE_ISSUER|DEFER_TASKRUN (6.1),
    /// COOP_TASKRUN (5.19), SUBMIT_ALL (5.18), none (5.11, the EXT_ARG wait).
    /// Every step also asks for CQSIZE (5.5).
    static let setupCascade: [(name: String, flags: UInt32)] = [
        ("SINGLE_ISSUER|DEFER_TASKRUN",
         CU_SETUP_SINGLE_ISSUER | CU_SETUP_DEFER_TASKRUN | CU_SETUP_TASKRUN_FLAG | CU_SETUP_R_DISABLED | CU_SETUP_SUBMIT_ALL),
        ("COOP_TASKRUN", CU_SETUP_COOP_TASKRUN | CU_SETUP_TASKRUN_FLAG | CU_SETUP_SUBMIT_ALL),
        ("SUBMIT_ALL", CU_SETUP_SUBMIT_ALL),
        ("none", 0),
    ]

    /// Opcodes RingLoop submits; a kernel lacking any of them makes `.auto` fall back.
    static let requiredOpcodes: [(UInt32, String)] = [
        (IORING_OP_NOP.rawValue, "NOP"), (IORING_OP_TIMEOUT.rawValue, "TIMEOUT"),
        (IORING_OP_ASYNC_CANCEL.rawValue, "ASYNC_CANCEL"), (IORING_OP_READ.rawValue, "READ"),
        (IORING_OP_WRITE.rawValue, "WRITE"), (IORING_OP_READV.rawValue, "READV"),
        (IORING_OP_WRITEV.rawValue, "WRITEV"), (IORING_OP_RECV.rawValue, "RECV"),
        (IORING_OP_SEND.rawValue, "SEND"), (IORING_OP_RECVMSG.rawValue, "RECVMSG"),
        (IORING_OP_SENDMSG.rawValue, "SENDMSG"), (IORING_OP_ACCEPT.rawValue, "ACCEPT"),
        (IORING_OP_CONNECT.rawValue, "CONNECT"), (IORING_OP_SHUTDOWN.rawValue, "SHUTDOWN"),
        (IORING_OP_CLOSE.rawValue, "CLOSE"), (IORING_OP_OPENAT.rawValue, "OPENAT"),
        (IORING_OP_STATX.rawValue, "STATX"), (IORING_OP_FSYNC.rawValue, "FSYNC"),
        (IORING_OP_LINK_TIMEOUT.rawValue, "LINK_TIMEOUT"),
    ]

    /// Checks the opcodes RingLoop cannot do without; returns which of the
    /// optional ones (file-system calls) the kernel has.
    static func checkOpcodes(_ ring: UnsafeMutablePointer<io_uring>) throws(BackendSetupError) -> Set<UInt32> {
        guard let probe = io_uring_get_probe_ring(ring) else {
            throw BackendSetupError(operation: "io_uring_register(PROBE)", errno: Errno(ENOSYS))
        }
        defer { io_uring_free_probe(probe) }
        for (op, name) in requiredOpcodes where io_uring_opcode_supported(probe, Int32(op)) == 0 {
            throw BackendSetupError(operation: "io_uring probe", errno: Errno(ENOSYS), detail: "kernel lacks IORING_OP_\(name)")
        }
        return Set(optionalOpcodes.filter { io_uring_opcode_supported(probe, Int32($0)) != 0 })
    }

    /// Opcodes used when the kernel has them (probed at set-up). Without a
    /// file-system one, that call runs on the loop's thread pool instead;
    /// without WAITID, a child's exit is awaited as pidfd readiness.
    static let optionalOpcodes: [UInt32] = [
        IORING_OP_UNLINKAT.rawValue, IORING_OP_RENAMEAT.rawValue, IORING_OP_MKDIRAT.rawValue,
        IORING_OP_FALLOCATE.rawValue, UInt32(CU_OP_FTRUNCATE), UInt32(CU_OP_WAITID),
    ]

    /// For logs and reports: ring size, accepted set-up, probed features.
    var summary: String {
        var features = ["NODROP", "EXT_ARG"]
        features.append(buffers.isKernelRing ? "buffer ring \(buffers.count)×\(buffers.size) B"
                        : "pooled receives (\(bufferRingUnavailable ?? "no buffer ring"))")
        func name(_ support: MultishotSupport.Support) -> String {
            switch support {
            case .unknown: "untried"
            case .supported: "yes"
            case .unsupported: "no"
            }
        }
        features.append("multishot recv \(name(multishot.receive))")
        features.append("multishot accept \(name(multishot.accept))")
        if ringFDRegistered { features.append("registered ring fd") }
        features.append("waitid \(supportedOptionalOpcodes.contains(UInt32(CU_OP_WAITID)) ? "yes" : "no (pidfd poll)")")
        if options.pollFirst { features.append("POLL_FIRST receives") }
        if let fixedFiles { features.append("fixed files (\(fixedFiles.size) slots)") }
        if batchWaits { features.append("batched waits up to \(options.batchWaitMicroseconds) µs") }
        return "io_uring (\(entries) entries, setup \(setupName); \(features.joined(separator: ", ")))"
    }
}
