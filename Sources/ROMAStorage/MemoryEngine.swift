/// The in-process engine (ROMA's `RubyHashStorage`): nothing on disk, lost on restart.
///
/// It is the slab/arena engine (`ArenaMemoryEngine`): records in 1 MiB pages of memcached-style
/// size classes, found through an open-addressing index, with no heap allocation per key or
/// value. (It replaced a `[[UInt8]: [UInt8]]` dictionary, whose two heap objects per record cost
/// 2.1–2.8× memcached's RSS.) `MemoryEngine()` is an empty engine with the default page size.
public typealias MemoryEngine = ArenaMemoryEngine
