//! An allocator for binaries: the system allocator, with large blocks backed
//! by transparent huge pages where the kernel offers them on request, and
//! kept for reuse when freed. Binaries install it with
//! [`huge_page_allocator!`](crate::huge_page_allocator).
//!
//! Training allocates and frees tensors of tens to hundreds of MiB every step
//! (a flattened conv-map tap, its gradient). A fresh block costs a page fault
//! per 4 KiB page when first written; with 2 MiB pages, one per 512. Linux's
//! default transparent-huge-page mode (`madvise`) gives them only to memory
//! that asks, so blocks of at least [`LARGE`] bytes are marked with
//! `madvise(MADV_HUGEPAGE)`.
//!
//! The system allocator unmaps a large block when it is freed, so the next
//! block of the same size is fresh memory again, zeroed page by page, and
//! every unmapping interrupts the other threads. Freed blocks of at least
//! [`LARGE`] bytes are therefore kept, up to [`CACHE_BYTES`] in all, and
//! handed out again for a block of the same size and alignment; smaller
//! blocks are the system allocator's alone.
//!
//! Elsewhere, or where the call fails (no transparent huge pages in the
//! kernel), the marking is skipped: it is a hint and never changes what
//! memory holds.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, Ordering};

/// Blocks from this many bytes on are marked (a few huge pages each).
pub const LARGE: usize = 4 << 20;

/// Freed large blocks are kept up to this many bytes in all.
pub const CACHE_BYTES: usize = 2 << 30;

/// glibc maps blocks from this size on by themselves (the most its own
/// moving threshold reaches on 64-bit systems).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: usize = 32 << 20;

/// [`System`], marking blocks of at least [`LARGE`] bytes for huge pages and
/// keeping them for reuse when freed.
pub struct HugePageAllocator;

unsafe impl GlobalAlloc for HugePageAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        set_thresholds();
        if let Some(block) = FREED.take(layout) {
            return block;
        }
        // SAFETY: forwarded unchanged; `layout` is valid per the caller.
        let block = unsafe { System.alloc(layout) };
        advise_huge_pages(block, layout.size());
        block
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        set_thresholds();
        if let Some(block) = FREED.take(layout) {
            // SAFETY: the block holds `layout.size()` bytes, now ours.
            unsafe { block.write_bytes(0, layout.size()) };
            return block;
        }
        // SAFETY: as `alloc`.
        let block = unsafe { System.alloc_zeroed(layout) };
        advise_huge_pages(block, layout.size());
        block
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        if FREED.keep(block, layout) {
            return;
        }
        // SAFETY: `block` came from `System` with this layout.
        unsafe { System.dealloc(block, layout) }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        set_thresholds();
        // SAFETY: `block` came from `System` with this layout (kept blocks
        // are `System`'s too).
        let block = unsafe { System.realloc(block, layout, new_size) };
        advise_huge_pages(block, new_size);
        block
    }
}

/// Once per process, with glibc: its mapping threshold fixed where its own
/// moving threshold would settle, and its heap trimmed only above twice that.
/// glibc raises the threshold as mapped blocks are freed, which the blocks
/// kept here never are: at its starting 128 KiB, 1 MB tensors were mapped
/// afresh each time, and at 4 MiB LibTorch's ResNet-18 forward (tch-cpu)
/// took twice as long.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_thresholds() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: mallopt only sets glibc's tuning parameters; it allocates
    // nothing, so calling it from inside the allocator is sound.
    ONCE.call_once(|| unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 2 * MMAP_THRESHOLD as libc::c_int);
    });
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_thresholds() {}

/// Room for this many freed blocks.
const SLOTS: usize = 32;

/// One kept block: its address, size and alignment, and when it was kept
/// (the oldest is returned to the system first).
#[derive(Clone, Copy)]
struct Kept {
    block: *mut u8,
    size: usize,
    align: usize,
    when: u64,
}

/// The freed large blocks, behind a spin lock (held for a scan of
/// [`SLOTS`] entries; the allocator cannot allocate, so no `Mutex`).
struct FreedBlocks {
    locked: AtomicBool,
    state: UnsafeCell<Slots>,
}

struct Slots {
    kept: [Option<Kept>; SLOTS],
    bytes: usize,
    clock: u64,
}

// SAFETY: `state` is only touched while `locked` is held.
unsafe impl Sync for FreedBlocks {}

static FREED: FreedBlocks = FreedBlocks {
    locked: AtomicBool::new(false),
    state: UnsafeCell::new(Slots {
        kept: [None; SLOTS],
        bytes: 0,
        clock: 0,
    }),
};

impl FreedBlocks {
    fn with<R>(&self, f: impl FnOnce(&mut Slots) -> R) -> R {
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::hint::spin_loop();
        }
        // SAFETY: the lock is held until the release below.
        let result = f(unsafe { &mut *self.state.get() });
        self.locked.store(false, Ordering::Release);
        result
    }

    /// A kept block of exactly this size and alignment, now the caller's.
    fn take(&self, layout: Layout) -> Option<*mut u8> {
        if layout.size() < LARGE {
            return None;
        }
        self.with(|slots| {
            let i = slots.kept.iter().position(|k| {
                k.is_some_and(|k| k.size == layout.size() && k.align == layout.align())
            })?;
            let kept = slots.kept[i].take()?;
            slots.bytes -= kept.size;
            Some(kept.block)
        })
    }

    /// Keeps a freed block, returning the oldest kept ones to the system to
    /// make room; `false` (the caller frees it) for small or oversized blocks.
    fn keep(&self, block: *mut u8, layout: Layout) -> bool {
        if layout.size() < LARGE || layout.size() > CACHE_BYTES {
            return false;
        }
        self.with(|slots| {
            while slots.bytes + layout.size() > CACHE_BYTES
                || slots.kept.iter().all(Option::is_some)
            {
                let oldest = (0..SLOTS)
                    .filter(|&i| slots.kept[i].is_some())
                    .min_by_key(|&i| slots.kept[i].map_or(u64::MAX, |k| k.when))
                    .expect("a full or over-budget cache holds a block");
                let kept = slots.kept[oldest].take().expect("chosen among the kept");
                slots.bytes -= kept.size;
                // SAFETY: kept blocks came from `System` with this layout,
                // and no one else holds them.
                unsafe {
                    System.dealloc(
                        kept.block,
                        Layout::from_size_align_unchecked(kept.size, kept.align),
                    )
                };
            }
            let free = slots
                .kept
                .iter()
                .position(Option::is_none)
                .expect("made room");
            slots.clock += 1;
            slots.kept[free] = Some(Kept {
                block,
                size: layout.size(),
                align: layout.align(),
                when: slots.clock,
            });
            slots.bytes += layout.size();
            true
        })
    }
}

/// Marks the pages spanning `[block, block + size)` for huge pages. The span
/// is widened to whole base pages: for a block mapped on its own (the system
/// allocator maps the largest alone) that is the whole mapping; for a block
/// in the heap it may include a neighbour's bytes, which the hint leaves as
/// they are.
#[cfg(target_os = "linux")]
fn advise_huge_pages(block: *mut u8, size: usize) {
    if block.is_null() || size < LARGE {
        return;
    }
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let Ok(page) = usize::try_from(page) else {
        return;
    };
    let start = block as usize / page * page;
    let end = (block as usize + size).next_multiple_of(page);
    // SAFETY: the range lies in memory this process has mapped (the block,
    // widened to the pages holding it); MADV_HUGEPAGE changes how later faults
    // are served, never the contents. Failure leaves base pages: ignored.
    unsafe {
        libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_block: *mut u8, _size: usize) {}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::LARGE;

    /// The `VmFlags` of the mapping of this process that contains `address`,
    /// from `/proc/self/smaps`.
    fn mapping_flags(address: usize) -> Vec<String> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("/proc/self/smaps");
        let mut inside = false;
        for line in smaps.lines() {
            let first = line.split_whitespace().next().unwrap_or("");
            if let Some((lo, hi)) = first.split_once('-')
                && let (Ok(lo), Ok(hi)) =
                    (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
            {
                inside = (lo..hi).contains(&address);
            } else if inside && let Some(flags) = line.strip_prefix("VmFlags:") {
                return flags.split_whitespace().map(str::to_owned).collect();
            }
        }
        panic!("no mapping of this process contains {address:#x}");
    }

    fn kernel_has_huge_pages() -> bool {
        std::path::Path::new("/sys/kernel/mm/transparent_hugepage/enabled").exists()
    }

    #[test]
    fn a_freed_large_block_is_handed_out_again_and_zeroed_on_request() {
        use std::alloc::{GlobalAlloc, Layout};
        // A size no other test allocates.
        let layout = Layout::from_size_align(LARGE + 7 * 4096, 64).unwrap();
        let allocator = super::HugePageAllocator;
        // SAFETY: each block is used within its layout and freed once.
        unsafe {
            let first = allocator.alloc(layout);
            first.write_bytes(1, layout.size());
            allocator.dealloc(first, layout);
            let again = allocator.alloc_zeroed(layout);
            assert_eq!(again, first, "the freed block is reused");
            let bytes = std::slice::from_raw_parts(again, layout.size());
            assert!(
                bytes.iter().all(|&b| b == 0),
                "reused for alloc_zeroed: zeroed"
            );
            allocator.dealloc(again, layout);
        }
    }

    #[test]
    fn large_blocks_are_marked_for_huge_pages_and_keep_their_contents() {
        if !kernel_has_huge_pages() {
            eprintln!("skipped: this kernel has no transparent huge pages");
            return;
        }
        // `hg` is the flag MADV_HUGEPAGE sets on a mapping.
        let zeroed = vec![0f32; 16 << 20];
        assert!(zeroed.iter().all(|&x| x == 0.0));
        let flags = mapping_flags(zeroed.as_ptr() as usize);
        assert!(flags.contains(&"hg".to_owned()), "flags {flags:?}");

        let mut grown: Vec<u8> = (0..=255).collect();
        grown.reserve_exact(LARGE * 2);
        grown.extend((0..LARGE).map(|i| (i % 251) as u8));
        let flags = mapping_flags(grown.as_ptr() as usize + LARGE);
        assert!(flags.contains(&"hg".to_owned()), "flags {flags:?}");
        assert!(
            grown[..256]
                .iter()
                .enumerate()
                .all(|(i, &b)| b as usize == i)
        );
        assert!(
            grown[256..]
                .iter()
                .enumerate()
                .all(|(i, &b)| b as usize == i % 251)
        );
    }
}
