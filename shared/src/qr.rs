//! QR images: a text (a URL) as a QR code in a greyscale PNG, and the PNG writer itself.
//!
//! The QR matrix comes from `qrcodegen` (error correction M, the smallest version that fits);
//! the PNG is written here (8-bit greyscale, zlib with stored blocks: a few KiB more than a
//! compressed one, and no compression crate in the Lambda).

use base64_simd::STANDARD as B64;
use qrcodegen::{QrCode, QrCodeEcc};

/// Pixels per module in [`png_data_url`] and modules of white border (the QR standard's
/// quiet zone is 4).
pub const SCALE: usize = 4;
pub const BORDER: usize = 4;

/// `text` as a QR code PNG. `None` when it does not fit in a QR code (over ~2 KB).
pub fn qr_png(text: &str) -> Option<Vec<u8>> {
    let qr = QrCode::encode_text(text, QrCodeEcc::Medium).ok()?;
    let modules = usize::try_from(qr.size()).ok()?;
    let side = (modules + 2 * BORDER) * SCALE;
    Some(greyscale_png(side, |x, y| {
        let (mx, my) = (x / SCALE, y / SCALE);
        if mx < BORDER || my < BORDER || mx >= BORDER + modules || my >= BORDER + modules {
            return false;
        }
        let (Ok(qx), Ok(qy)) = (i32::try_from(mx - BORDER), i32::try_from(my - BORDER)) else {
            return false;
        };
        qr.get_module(qx, qy)
    }))
}

/// `text` as a `data:image/png;base64,…` URL of its QR code.
pub fn png_data_url(text: &str) -> Option<String> {
    let png = qr_png(text)?;
    Some(format!(
        "data:image/png;base64,{}",
        B64.encode_to_string(&png)
    ))
}

/// A square 8-bit greyscale PNG of `side` pixels: black where `dark(x, y)`, white elsewhere.
pub fn greyscale_png(side: usize, dark: impl Fn(usize, usize) -> bool) -> Vec<u8> {
    let mut raw = Vec::with_capacity(side * (side + 1));
    for y in 0..side {
        raw.push(0); // filter: none
        for x in 0..side {
            raw.push(if dark(x, y) { 0x00 } else { 0xff });
        }
    }
    // zlib: stored (uncompressed) deflate blocks of at most 65,535 bytes.
    let mut z = vec![0x78, 0x01];
    let mut blocks = raw.chunks(usize::from(u16::MAX)).peekable();
    if blocks.peek().is_none() {
        z.extend_from_slice(&[0x01, 0x00, 0x00, 0xff, 0xff]);
    }
    while let Some(block) = blocks.next() {
        z.push(u8::from(blocks.peek().is_none()));
        let len = u16::try_from(block.len()).unwrap_or(u16::MAX);
        z.extend_from_slice(&len.to_le_bytes());
        z.extend_from_slice(&(!len).to_le_bytes());
        z.extend_from_slice(block);
    }
    z.extend_from_slice(&adler32(&raw).to_be_bytes());

    let side = u32::try_from(side).unwrap_or(u32::MAX);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&side.to_be_bytes());
    ihdr.extend_from_slice(&side.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit, greyscale, deflate, no filter, no interlace
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &z);
    chunk(&mut out, b"IEND", &[]);
    out
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
    out.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(out.get(start..).unwrap_or_default());
    out.extend_from_slice(&crc.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads back the pixels of a PNG written by [`greyscale_png`] (stored blocks only).
    fn pixels(png: &[u8]) -> (usize, Vec<u8>) {
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let side = u32::from_be_bytes(png[16..20].try_into().unwrap()) as usize;
        let idat_len = u32::from_be_bytes(png[33..37].try_into().unwrap()) as usize;
        assert_eq!(&png[37..41], b"IDAT");
        let z = &png[41..41 + idat_len];
        let crc = u32::from_be_bytes(png[41 + idat_len..45 + idat_len].try_into().unwrap());
        assert_eq!(crc, crc32(&png[37..41 + idat_len]), "IDAT crc");
        let (mut i, mut raw) = (2, Vec::new());
        loop {
            let last = z[i] == 1;
            let len = u16::from_le_bytes([z[i + 1], z[i + 2]]) as usize;
            assert_eq!(!u16::from_le_bytes([z[i + 3], z[i + 4]]) as usize, len);
            raw.extend_from_slice(&z[i + 5..i + 5 + len]);
            i += 5 + len;
            if last {
                break;
            }
        }
        assert_eq!(
            u32::from_be_bytes(z[i..i + 4].try_into().unwrap()),
            adler32(&raw)
        );
        (side, raw)
    }

    #[test]
    fn crc_and_adler_match_known_vectors() {
        // CRC-32 (IEEE) and Adler-32 of "123456789".
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
    }

    #[test]
    fn a_url_becomes_a_readable_qr_png() {
        let url = "https://open.weixin.qq.com/wxaopen/fastregister?taskid=0123456789abcdef0123456789abcdef&token=x".repeat(2);
        let png = qr_png(&url).unwrap();
        let (side, raw) = pixels(&png);
        assert!(raw.len() > 65_535, "several stored blocks: {}", raw.len());
        assert_eq!(raw.len(), side * (side + 1));
        let qr = QrCode::encode_text(&url, QrCodeEcc::Medium).unwrap();
        assert_eq!(side, (qr.size() as usize + 2 * BORDER) * SCALE);
        // Every module's pixels match the matrix.
        for my in 0..qr.size() {
            for mx in 0..qr.size() {
                let (x, y) = (
                    (mx as usize + BORDER) * SCALE + 1,
                    (my as usize + BORDER) * SCALE + 2,
                );
                let px = raw[y * (side + 1) + 1 + x];
                assert_eq!(px == 0, qr.get_module(mx, my), "module {mx},{my}");
            }
        }
        assert!(
            png_data_url("https://x.example/")
                .unwrap()
                .starts_with("data:image/png;base64,iVBORw0KGgo")
        );
        assert_eq!(qr_png(&"x".repeat(5000)), None);
    }
}
