#if canImport(Glibc)
import Glibc
#endif

/// Allocator settings for a long-running gateway on glibc.
///
/// Request bodies of a megabyte or more come and go with every large prompt. glibc serves allocations
/// above its mmap threshold with mappings of their own, returned to the system when freed, but it raises
/// that threshold each time such a block is freed, up to 32 MB: after the first large prompts, every later
/// one lands in the heap, and freed heap memory is kept. A process that once served sixteen 1 MB prompts
/// at once then holds a gigabyte for good. A fixed threshold stops the ratchet (large blocks always go
/// back at once), and a few arenas are enough for a server whose work runs on a couple of event loops and
/// a small task pool, where one arena per thread would multiply the memory kept.
enum MemoryTuning {
    static func apply() {
        #if canImport(Glibc)
        // `mallopt` is in <malloc.h>, which the Glibc module does not export: looked up by name.
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        guard let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, "mallopt") else { return }
        let mallopt = unsafeBitCast(symbol, to: Mallopt.self)
        // The option numbers from <malloc.h>.
        let trimThreshold: Int32 = -1, mmapThreshold: Int32 = -3, arenaMax: Int32 = -8
        _ = mallopt(mmapThreshold, 256 * 1024)
        _ = mallopt(trimThreshold, 1024 * 1024)
        _ = mallopt(arenaMax, 4)
        #endif
    }
}
