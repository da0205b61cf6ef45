//! A hint to the CPU that memory is about to be read, so that its cache miss overlaps with
//! other work (the state machine's batch apply chains them: table slot, log slot, key).

/// Starts loading the cache line holding `*at`. Never faults and changes nothing else;
/// a no-op where no such hint is available.
#[inline(always)]
pub fn prefetch_read<T>(at: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch only hints the cache; it never faults, and the pointer comes
    // from a reference anyway.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>((at as *const T).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}
