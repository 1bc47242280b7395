// libFuzzer target for the broker engine (docs/fuzzing.md), driven in memory through
// MidgeEngineHarness: no sockets, no threads, a virtual clock; several clients' byte streams,
// closes, stalls and clock moves interleaved. The input layout and the invariants checked are
// EngineFuzzDriver's (Sources/MidgeEngineHarness/EngineFuzzDriver.swift), so that a crash input
// replays as an ordinary test.

import MidgeEngineHarness

// SwiftPM links an executable target with `--defsym main=<Target>_main` on Linux: that symbol
// starts libFuzzer's driver (as in FuzzCodec).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

@_cdecl("FuzzEngine_main")
public func fuzzEngineMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        guard let data else { return 0 }
        return fuzzEngine(data, size)
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEngine(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    EngineFuzzDriver(flags: data[0]).run(UnsafeBufferPointer(start: data, count: size))
    return 0
}
