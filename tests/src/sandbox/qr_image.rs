//! The image `showqrcode` serves: a QR-like PNG drawn from the ticket (three finder squares,
//! timing lines and data modules from a hash of the ticket), so a screenshot of a sign-in page
//! shows a code, and two tickets show different codes. Not a decodable QR code: the sandbox's
//! users "scan" through `POST /sandbox/users/scan`.

/// Modules per side (a version-2 QR code) and the quiet zone around them.
const MODULES: usize = 25;
const QUIET: usize = 2;
const SIDE: usize = MODULES + 2 * QUIET;

const CORNERS: [(usize, usize); 3] = [(0, 0), (MODULES - 7, 0), (0, MODULES - 7)];

/// Inside a finder square (7×7) or its one-module white separator: whether it is dark.
fn finder(x: usize, y: usize) -> Option<bool> {
    CORNERS.iter().find_map(|&(cx, cy)| {
        // Offsets from the square's corner; the separator is the ring just outside it.
        let (dx, dy) = (x as isize - cx as isize, y as isize - cy as isize);
        if !(-1..=7).contains(&dx) || !(-1..=7).contains(&dy) {
            return None;
        }
        if !(0..7).contains(&dx) || !(0..7).contains(&dy) {
            return Some(false);
        }
        let edge = dx == 0 || dy == 0 || dx == 6 || dy == 6;
        let core = (2..=4).contains(&dx) && (2..=4).contains(&dy);
        Some(edge || core)
    })
}

/// Whether module (x, y) is dark.
fn dark(x: usize, y: usize, seed: u64) -> bool {
    if let Some(d) = finder(x, y) {
        return d;
    }
    if x == 6 || y == 6 {
        return (x + y).is_multiple_of(2);
    }
    // splitmix64 of (seed, position): about half the modules dark.
    let mut z = seed ^ ((y * MODULES + x) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) & 1 == 1
}

/// The PNG (8-bit greyscale, one pixel per module; the page scales it up pixelated).
pub fn png(ticket: &str) -> Vec<u8> {
    // FNV-1a of the ticket.
    let seed = ticket.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    wxopen::qr::greyscale_png(SIDE, |px, py| {
        let inside =
            (QUIET..QUIET + MODULES).contains(&px) && (QUIET..QUIET + MODULES).contains(&py);
        inside && dark(px - QUIET, py - QUIET, seed)
    })
}
