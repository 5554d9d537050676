//! The process's allocator: the system allocator, with large blocks backed by
//! transparent huge pages where the kernel offers them on request.
//!
//! Training allocates and frees tensors of tens to hundreds of MiB every step
//! (a flattened conv-map tap, its gradient). Each fresh block costs a page
//! fault per 4 KiB page when first written; with 2 MiB pages, one per 512.
//! Linux's default transparent-huge-page mode (`madvise`) gives them only to
//! memory that asks, which the system allocator's blocks do not, so blocks of
//! at least [`LARGE`] bytes are marked with `madvise(MADV_HUGEPAGE)`. Measured
//! in `docs/performance.md`. Elsewhere, or where the call fails (no
//! transparent huge pages in the kernel), the marking is skipped: it is a hint
//! and never changes what memory holds.

use std::alloc::{GlobalAlloc, Layout, System};

/// Blocks from this many bytes on are marked (a few huge pages each).
pub const LARGE: usize = 4 << 20;

/// [`System`], marking blocks of at least [`LARGE`] bytes for huge pages.
pub struct HugePageAllocator;

unsafe impl GlobalAlloc for HugePageAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; `layout` is valid per the caller.
        let block = unsafe { System.alloc(layout) };
        advise_huge_pages(block, layout.size());
        block
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        let block = unsafe { System.alloc_zeroed(layout) };
        advise_huge_pages(block, layout.size());
        block
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        // SAFETY: `block` came from `System` with this layout.
        unsafe { System.dealloc(block, layout) }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `block` came from `System` with this layout.
        let block = unsafe { System.realloc(block, layout, new_size) };
        advise_huge_pages(block, new_size);
        block
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

#[cfg(all(test, target_os = "linux", feature = "huge-pages"))]
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
