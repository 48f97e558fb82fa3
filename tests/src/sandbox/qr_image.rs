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

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in bytes {
        a = (a + u32::from(x)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// The PNG (8-bit greyscale, one pixel per module; the page scales it up pixelated).
pub fn png(ticket: &str) -> Vec<u8> {
    // FNV-1a of the ticket.
    let seed = ticket.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let mut raw = Vec::with_capacity(SIDE * (SIDE + 1));
    for py in 0..SIDE {
        raw.push(0); // filter: none
        for px in 0..SIDE {
            let inside =
                (QUIET..QUIET + MODULES).contains(&px) && (QUIET..QUIET + MODULES).contains(&py);
            let on = inside && dark(px - QUIET, py - QUIET, seed);
            raw.push(if on { 0x00 } else { 0xff });
        }
    }
    // zlib: one stored (uncompressed) deflate block; the image is under 64 KiB.
    let mut z = vec![0x78, 0x01, 0x01];
    let len = raw.len() as u16;
    z.extend_from_slice(&len.to_le_bytes());
    z.extend_from_slice(&(!len).to_le_bytes());
    z.extend_from_slice(&raw);
    z.extend_from_slice(&adler32(&raw).to_be_bytes());

    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&(SIDE as u32).to_be_bytes());
    ihdr.extend_from_slice(&(SIDE as u32).to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit, greyscale, deflate, no filter, no interlace
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &z);
    chunk(&mut out, b"IEND", &[]);
    out
}
