// libFuzzer target for the broker engine (docs/fuzzing.md), driven in memory through
// MidgeEngineHarness: no sockets, no threads, a virtual clock; several clients' byte streams,
// closes, stalls and clock moves interleaved. The input layout and the invariants checked are
// EngineFuzzDriver's (Sources/MidgeEngineHarness/EngineFuzzDriver.swift), so that a crash input
// replays as an ordinary test. No `main`: libFuzzer provides it.

import MidgeEngineHarness

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEngine(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    EngineFuzzDriver(flags: data[0]).run(UnsafeBufferPointer(start: data, count: size))
    return 0
}
