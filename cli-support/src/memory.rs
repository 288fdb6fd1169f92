//! Keeping a binary's resident memory near what it holds: glibc's allocator, left alone,
//! keeps the pages of everything freed. ferry-pack frees a mirror's model (millions of
//! small strings, interleaved with what lives on) between phases, and at 6×10^4 images
//! that cost half again its live heap in resident pages: 420 MiB where 230 MiB were in use.
//! Both calls only change how free memory is kept; they are no-ops on another libc.

/// Caps glibc's allocator arenas at two (one per core of the machines ferry targets).
/// glibc gives each thread that allocates its own arena, up to eight per core, and the
/// memory one frees is reused by its own arena only; the worker threads of the pack's
/// sizing and writing then hold pages the main thread cannot use. Call at the start of
/// `main`, before any thread is spawned.
pub fn few_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; M_ARENA_MAX takes any positive
    // value, and it is set before other threads exist.
    #[allow(unsafe_code)]
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Returns the whole free pages inside the heap to the system (glibc's `malloc_trim`,
/// which since 2.8 also releases pages in the middle of the heap, not only at its top).
/// Call after a phase that freed much of what it built; it costs a walk over the free
/// lists (milliseconds), and memory freed later is returned by the next call.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointer; it only walks the allocator's own free lists
    // under the allocator's locks, so it is safe to call from any thread at any time.
    #[allow(unsafe_code)]
    unsafe {
        libc::malloc_trim(0);
    }
}
