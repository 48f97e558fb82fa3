//! WeChat message crypto ("safe mode"): signatures, AES-256-CBC with 32-byte PKCS#7, the
//! `random(16) | len(4, BE) | msg | receive_id` plaintext layout, and the encrypted reply envelope.
//!
//! Pure: no I/O, no logging. Errors name the check that failed and never carry key material,
//! ciphertext or plaintext.

use aes::Aes256;
use aes::cipher::block_padding::NoPadding;
use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use base64_simd::STANDARD as B64;
use secrecy::SecretString;
use secrecy::zeroize::Zeroizing;
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

/// WeChat pads to 32-byte blocks (not AES's 16).
pub const PAD_BLOCK: usize = 32;
const RANDOM_LEN: usize = 16;
const HEADER_LEN: usize = RANDOM_LEN + 4;
const AES_BLOCK: usize = 16;

/// Which check a push failed. Never carries secret material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("signature does not match")]
    BadSignature,
    #[error("ciphertext is not valid base64")]
    BadBase64,
    #[error("ciphertext length is not a positive multiple of the AES block size")]
    BadCiphertextLength,
    #[error("PKCS#7 padding is invalid")]
    BadPadding,
    #[error("plaintext length header is inconsistent with the decrypted data")]
    BadLength,
    #[error("decrypted message is not UTF-8")]
    BadUtf8,
    #[error("receive id (appid) in the message does not match")]
    WrongAppId,
    #[error("EncodingAESKey must be 43 base64 characters decoding to 32 bytes")]
    BadKey,
    #[error("message too large to encrypt")]
    TooLarge,
}

/// The 32-byte AES key derived from a 43-character EncodingAESKey. The IV is its first 16 bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct AesKey([u8; 32]);

impl std::fmt::Debug for AesKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AesKey(<redacted>)")
    }
}

impl AesKey {
    /// `base64_decode(EncodingAESKey + "=")`, which must be exactly 32 bytes.
    pub fn from_encoding_aes_key(encoding_aes_key: &str) -> Result<Self, CryptoError> {
        if encoding_aes_key.len() != 43 {
            return Err(CryptoError::BadKey);
        }
        // WeChat keys are generated with arbitrary trailing bits: decode forgivingly (no `=`
        // needed, trailing bits ignored); the length checks keep anything else out.
        let bytes = base64_simd::forgiving_decode_to_vec(encoding_aes_key.as_bytes())
            .map_err(|_| CryptoError::BadKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::BadKey)?;
        Ok(Self(key))
    }

    fn iv(&self) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&self.0[..16]);
        iv
    }

    /// Decrypts `Encrypt` and returns the message, checking padding, layout and receive id.
    /// The message is secret, and the working buffer is wiped whatever the outcome.
    pub fn decrypt(
        &self,
        encrypt_b64: &str,
        expected_appid: &str,
    ) -> Result<SecretString, CryptoError> {
        let mut buf = Zeroizing::new(
            B64.decode_to_vec(encrypt_b64.trim())
                .map_err(|_| CryptoError::BadBase64)?,
        );
        if buf.is_empty() || buf.len() % AES_BLOCK != 0 {
            return Err(CryptoError::BadCiphertextLength);
        }
        let plain = cbc::Decryptor::<Aes256>::new(&self.0.into(), &self.iv().into())
            .decrypt_padded::<NoPadding>(&mut buf)
            .map_err(|_| CryptoError::BadCiphertextLength)?;
        let content = strip_padding(plain)?;
        let (msg, receive_id) = split_plaintext(content)?;
        if !bool::from(receive_id.ct_eq(expected_appid.as_bytes())) {
            return Err(CryptoError::WrongAppId);
        }
        // One exact-size copy into the secret; the buffer is zeroed on drop.
        std::str::from_utf8(msg)
            .map(SecretString::from)
            .map_err(|_| CryptoError::BadUtf8)
    }

    /// Encrypts `msg` for `appid` with the given 16 random bytes (fixed in tests, random otherwise).
    pub fn encrypt_with_random(
        &self,
        msg: &str,
        appid: &str,
        random: &[u8; 16],
    ) -> Result<String, CryptoError> {
        let msg_len = u32::try_from(msg.len()).map_err(|_| CryptoError::TooLarge)?;
        let content_len = HEADER_LEN + msg.len() + appid.len();
        let pad = PAD_BLOCK - content_len % PAD_BLOCK;
        let mut buf = Vec::with_capacity(content_len + pad);
        buf.extend_from_slice(random);
        buf.extend_from_slice(&msg_len.to_be_bytes());
        buf.extend_from_slice(msg.as_bytes());
        buf.extend_from_slice(appid.as_bytes());
        // pad is in 1..=32, so it fits a byte.
        buf.resize(content_len + pad, pad as u8);
        let total = buf.len();
        let ct = cbc::Encryptor::<Aes256>::new(&self.0.into(), &self.iv().into())
            .encrypt_padded::<NoPadding>(&mut buf, total)
            .map_err(|_| CryptoError::TooLarge)?;
        Ok(B64.encode_to_string(ct))
    }

    /// Encrypts `msg` for `appid` with fresh random bytes.
    pub fn encrypt(&self, msg: &str, appid: &str) -> Result<String, CryptoError> {
        let mut random = [0u8; RANDOM_LEN];
        rand::fill(&mut random);
        self.encrypt_with_random(msg, appid, &random)
    }
}

/// PKCS#7 with a pad value of 1..=32. Like WeChat's own samples and the major SDKs, only the last
/// byte is read: WeChat pads to 32-byte blocks, and a 16-byte-block pad also falls in the range.
fn strip_padding(plain: &[u8]) -> Result<&[u8], CryptoError> {
    let pad = usize::from(*plain.last().ok_or(CryptoError::BadPadding)?);
    if pad == 0 || pad > PAD_BLOCK || pad > plain.len() {
        return Err(CryptoError::BadPadding);
    }
    Ok(&plain[..plain.len() - pad])
}

/// Splits `random(16) | len(4) | msg | receive_id` into (msg, receive_id).
fn split_plaintext(content: &[u8]) -> Result<(&[u8], &[u8]), CryptoError> {
    let header = content
        .get(RANDOM_LEN..HEADER_LEN)
        .ok_or(CryptoError::BadLength)?;
    let mut len_bytes = [0u8; 4];
    len_bytes.copy_from_slice(header);
    let len = usize::try_from(u32::from_be_bytes(len_bytes)).map_err(|_| CryptoError::BadLength)?;
    let end = HEADER_LEN.checked_add(len).ok_or(CryptoError::BadLength)?;
    let msg = content.get(HEADER_LEN..end).ok_or(CryptoError::BadLength)?;
    let receive_id = content.get(end..).ok_or(CryptoError::BadLength)?;
    Ok((msg, receive_id))
}

/// SHA-1 of the sorted parts concatenated: the digest behind `signature` and `msg_signature`.
fn sorted_sha1_digest(parts: &mut [&str]) -> [u8; 20] {
    parts.sort_unstable();
    let mut hasher = Sha1::new();
    for p in parts.iter() {
        hasher.update(p.as_bytes());
    }
    hasher.finalize().into()
}

/// `hex(sha1(concat(sort(parts))))`: the signature scheme of both `signature` and `msg_signature`.
pub fn sorted_sha1(parts: &mut [&str]) -> String {
    hex::encode(sorted_sha1_digest(parts))
}

/// Whether a received hex signature (either case) is the signature of `parts`, compared in
/// constant time and without allocating.
fn signature_matches(parts: &mut [&str], received: &str) -> bool {
    let mut received_digest = [0u8; 20];
    hex::decode_to_slice(received.trim(), &mut received_digest).is_ok()
        && bool::from(sorted_sha1_digest(parts).ct_eq(&received_digest))
}

/// Hex SHA-1 of one string (used to key single-use codes without storing them as keys).
pub fn sha1_hex(value: &str) -> String {
    hex::encode(Sha1::digest(value.as_bytes()))
}

/// `msg_signature` over token, timestamp, nonce and the `Encrypt` text.
pub fn msg_signature(token: &str, timestamp: &str, nonce: &str, encrypt: &str) -> String {
    sorted_sha1(&mut [token, timestamp, nonce, encrypt])
}

/// The plain `signature` over token, timestamp and nonce (URL verification style).
pub fn url_signature(token: &str, timestamp: &str, nonce: &str) -> String {
    sorted_sha1(&mut [token, timestamp, nonce])
}

/// Verifies `msg_signature`.
pub fn verify_msg_signature(
    token: &str,
    timestamp: &str,
    nonce: &str,
    encrypt: &str,
    received: &str,
) -> Result<(), CryptoError> {
    if signature_matches(&mut [token, timestamp, nonce, encrypt], received) {
        Ok(())
    } else {
        Err(CryptoError::BadSignature)
    }
}

/// Verifies the plain `signature`.
pub fn verify_url_signature(
    token: &str,
    timestamp: &str,
    nonce: &str,
    received: &str,
) -> Result<(), CryptoError> {
    if signature_matches(&mut [token, timestamp, nonce], received) {
        Ok(())
    } else {
        Err(CryptoError::BadSignature)
    }
}

/// The encrypted passive-reply envelope WeChat expects on the message URL.
pub fn reply_envelope(encrypt: &str, signature: &str, timestamp: &str, nonce: &str) -> String {
    format!(
        "<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt><MsgSignature><![CDATA[{signature}]]></MsgSignature><TimeStamp>{timestamp}</TimeStamp><Nonce><![CDATA[{nonce}]]></Nonce></xml>"
    )
}

/// Encrypts and signs a reply (or, in the sandbox, a push) in one step.
pub fn seal(
    key: &AesKey,
    token: &str,
    appid: &str,
    msg: &str,
    timestamp: &str,
    nonce: &str,
) -> Result<Sealed, CryptoError> {
    let encrypt = key.encrypt(msg, appid)?;
    let msg_signature = msg_signature(token, timestamp, nonce, &encrypt);
    Ok(Sealed {
        encrypt,
        msg_signature,
    })
}

/// A passive reply as WeChat expects it: encrypted, signed over its own timestamp and a fresh
/// numeric nonce, in the reply envelope.
pub fn seal_reply(
    key: &AesKey,
    token: &str,
    appid: &str,
    reply_xml: &str,
    now: i64,
) -> Result<String, CryptoError> {
    let timestamp = now.to_string();
    let nonce = (rand::random::<u32>() % 900_000_000 + 100_000_000).to_string();
    let sealed = seal(key, token, appid, reply_xml, &timestamp, &nonce)?;
    Ok(reply_envelope(
        &sealed.encrypt,
        &sealed.msg_signature,
        &timestamp,
        &nonce,
    ))
}

/// An encrypted and signed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub encrypt: String,
    pub msg_signature: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    // The tests encode and decode with the other base64 crate: an independent implementation.
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as B64;
    use secrecy::ExposeSecret;

    // Test vector A: the key, nonce, timestamp and plaintext of WeChat's published message-encryption sample.
    const A_TOKEN: &str = "wxopen-test-token";
    const A_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
    const A_APPID: &str = "wx1234567890abcdef";
    const A_TS: &str = "1763856000";
    const A_NONCE: &str = "1320562132";
    const A_PLAIN: &str = "<xml><AppId><![CDATA[wx1234567890abcdef]]></AppId><CreateTime>1763856000</CreateTime><InfoType><![CDATA[component_verify_ticket]]></InfoType><ComponentVerifyTicket><![CDATA[ticket@@@example-ticket-value]]></ComponentVerifyTicket></xml>";
    const A_ENCRYPT: &str = "Q3stYC6hdFzMh9T8HCvyDHbKQqSxgboF8oFZaBcMh1cUSCUrzF5f59E77Cy4rSfvf0tXvIvMw7Ta3YYKG4ijwNm2C79vEAHVXMYJcQ+fTPziGj9ooFMXUqmmBjUXtPCybdWPT/1MUZw/6U5+9j9nTK5Ctn0xTXwPPQ7h+oBHbxC3J6f/q3mXRpRxz+omIgPYSMvDioOQ46+8jtvCMB5Mw/Q7Zy9GSxLfi1NnprUuxtwbNp0mjO7GDpynyWU5bjMGa71voVPNoq9TyxHkUhcW06HCjQmv47KJGE6Wd7EHPWXYuGl6bFcj5xUyb04GfnQnjiMjEj/so7zBNBgmieXu+vrq8lgTHncLiZWYFpBAxWf0kfjZ4z3fSvrY+j4ALv89";
    const A_MSG_SIG: &str = "15d01adc3012ec318ab83ce8b44aa15613096dcf";
    const A_SIG: &str = "1396b763be55ba05f68f90eb1cf3f1c3bee64ac8";

    // Test vector B (made by wechatpy, decrypted by wechat-crypto).
    const B_TOKEN: &str = "testtoken";
    const B_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
    const B_APPID: &str = "wx0000000000000001";
    const B_ENCRYPT: &str = "fMkvf4uAiY6Gxtz8BmgsIlXx90SYNyj8hXof37R8bbCs5Puu/WuxsIvWN2KMvKkoqksEaKgQqlt4GCWRJJ+nlLlmnNzdjLaCs8PIHnyVkNsn4aYf7koRcG88o5V3lwXAWJOJ/FAA1+DsordOsBngb2tpWnnfOgTItTMUMkFEqb3pQBISlySFmkZAu6mn4PNXUU5C5ovdmiEbQF3Ja2S2PCk3LMGEAvdm9vGQ4j6uR0FkEL0f949Uun04r7xNpzsj8ArbPCPV+z8UQyKR3dQzd/nGmvPa4uDM7kfusKo9ON1eQyoOARfnaO/nbQBIh8/5O6YoMnwQtbYgihiowuGC5Rc3POPF4xZhrM46aCUUIhOItrzSoYXZBT8sANCX3hli";
    const B_PLAIN: &str = "<xml><ToUserName><![CDATA[gh_test]]></ToUserName><FromUserName><![CDATA[o_user]]></FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hello]]></Content><MsgId>1</MsgId></xml>";

    fn key_a() -> AesKey {
        AesKey::from_encoding_aes_key(A_KEY).unwrap()
    }

    #[test]
    fn vector_a_key_derivation() {
        assert_eq!(
            hex::encode(key_a().0),
            "69b71d79f8218a39259a7a29aabb2dbafc31cb3d35db7e39ebbf3d0010831051"
        );
        assert_eq!(
            hex::encode(key_a().iv()),
            "69b71d79f8218a39259a7a29aabb2dba"
        );
    }

    #[test]
    fn vector_a_signatures() {
        assert_eq!(msg_signature(A_TOKEN, A_TS, A_NONCE, A_ENCRYPT), A_MSG_SIG);
        assert_eq!(url_signature(A_TOKEN, A_TS, A_NONCE), A_SIG);
        verify_msg_signature(A_TOKEN, A_TS, A_NONCE, A_ENCRYPT, A_MSG_SIG).unwrap();
        verify_msg_signature(A_TOKEN, A_TS, A_NONCE, A_ENCRYPT, &A_MSG_SIG.to_uppercase()).unwrap();
        verify_url_signature(A_TOKEN, A_TS, A_NONCE, A_SIG).unwrap();
    }

    #[test]
    fn vector_a_decrypts() {
        assert_eq!(
            key_a().decrypt(A_ENCRYPT, A_APPID).unwrap().expose_secret(),
            A_PLAIN
        );
    }

    #[test]
    fn vector_a_encrypts_deterministically() {
        let ct = key_a()
            .encrypt_with_random(A_PLAIN, A_APPID, b"0123456789abcdef")
            .unwrap();
        assert_eq!(ct, A_ENCRYPT);
        // 288 bytes of ciphertext, pad 15.
        assert_eq!(B64.decode(&ct).unwrap().len(), 288);
    }

    #[test]
    fn vector_b_verifies_and_decrypts() {
        verify_msg_signature(
            B_TOKEN,
            "1700000000",
            "nonce123",
            B_ENCRYPT,
            "2e877bcd6d288626483dae88e4125208378b08af",
        )
        .unwrap();
        let key = AesKey::from_encoding_aes_key(B_KEY).unwrap();
        assert_eq!(
            key.decrypt(B_ENCRYPT, B_APPID).unwrap().expose_secret(),
            B_PLAIN
        );
    }

    #[test]
    fn roundtrip_with_random_and_unicode() {
        let key = key_a();
        let msg = "<xml><Content><![CDATA[你好, wxopen]]></Content></xml>";
        let a = key.encrypt(msg, A_APPID).unwrap();
        let b = key.encrypt(msg, A_APPID).unwrap();
        assert_ne!(a, b, "fresh random bytes each time");
        assert_eq!(key.decrypt(&a, A_APPID).unwrap().expose_secret(), msg);
        assert_eq!(key.decrypt(&b, A_APPID).unwrap().expose_secret(), msg);
    }

    #[test]
    fn tampered_signature_rejected() {
        let mut sig = A_MSG_SIG.to_string();
        sig.replace_range(0..1, "0");
        assert_eq!(
            verify_msg_signature(A_TOKEN, A_TS, A_NONCE, A_ENCRYPT, &sig),
            Err(CryptoError::BadSignature)
        );
        // Different timestamp, same signature.
        assert_eq!(
            verify_msg_signature(A_TOKEN, "1763856001", A_NONCE, A_ENCRYPT, A_MSG_SIG),
            Err(CryptoError::BadSignature)
        );
        assert_eq!(
            verify_msg_signature(A_TOKEN, A_TS, A_NONCE, A_ENCRYPT, ""),
            Err(CryptoError::BadSignature)
        );
    }

    #[test]
    fn tampered_ciphertext_rejected() {
        let mut raw = B64.decode(A_ENCRYPT).unwrap();
        // Flip a bit in the first block: this garbles block 0 (random + length header).
        raw[3] ^= 0x80;
        let err = key_a().decrypt(&B64.encode(&raw), A_APPID).unwrap_err();
        assert!(
            matches!(err, CryptoError::BadLength | CryptoError::WrongAppId),
            "{err:?}"
        );
        assert_eq!(
            key_a().decrypt("not base64 !!", A_APPID).err(),
            Some(CryptoError::BadBase64)
        );
        assert_eq!(
            key_a()
                .decrypt(&B64.encode(&raw[..raw.len() - 1]), A_APPID)
                .err(),
            Some(CryptoError::BadCiphertextLength)
        );
        assert_eq!(
            key_a().decrypt("", A_APPID).err(),
            Some(CryptoError::BadCiphertextLength)
        );
    }

    /// Encrypts raw content bytes (already padded as the test wants) to exercise the decrypter.
    fn encrypt_raw(key: &AesKey, mut content: Vec<u8>) -> String {
        let len = content.len();
        let ct = cbc::Encryptor::<Aes256>::new(&key.0.into(), &key.iv().into())
            .encrypt_padded::<NoPadding>(&mut content, len)
            .unwrap();
        B64.encode(ct)
    }

    fn content(msg: &[u8], appid: &[u8], declared_len: u32) -> Vec<u8> {
        let mut c = b"0123456789abcdef".to_vec();
        c.extend_from_slice(&declared_len.to_be_bytes());
        c.extend_from_slice(msg);
        c.extend_from_slice(appid);
        c
    }

    #[test]
    fn tampered_padding_rejected() {
        let key = key_a();
        let mut c = content(b"<xml/>", A_APPID.as_bytes(), 6);
        let pad = PAD_BLOCK - c.len() % PAD_BLOCK;
        c.resize(c.len() + pad - 1, pad as u8);
        c.push(33); // pad value above the 32-byte block
        assert_eq!(
            key.decrypt(&encrypt_raw(&key, c.clone()), A_APPID).err(),
            Some(CryptoError::BadPadding)
        );
        let last = c.len() - 1;
        c[last] = 0;
        assert_eq!(
            key.decrypt(&encrypt_raw(&key, c), A_APPID).err(),
            Some(CryptoError::BadPadding)
        );
    }

    #[test]
    fn sixteen_byte_block_padding_is_accepted() {
        // Defensive: a sender padding to 16-byte blocks still decrypts.
        let key = key_a();
        let mut c = content(b"<xml/>", A_APPID.as_bytes(), 6);
        let pad = AES_BLOCK - c.len() % AES_BLOCK;
        c.resize(c.len() + pad, pad as u8);
        assert_eq!(
            key.decrypt(&encrypt_raw(&key, c), A_APPID)
                .unwrap()
                .expose_secret(),
            "<xml/>"
        );
    }

    #[test]
    fn wrong_appid_rejected() {
        assert_eq!(
            key_a().decrypt(A_ENCRYPT, "wx0000000000000000").err(),
            Some(CryptoError::WrongAppId)
        );
        assert_eq!(
            key_a().decrypt(A_ENCRYPT, "").err(),
            Some(CryptoError::WrongAppId)
        );
    }

    #[test]
    fn huge_length_header_rejected() {
        let key = key_a();
        for declared in [u32::MAX, 1 << 20, 200] {
            let mut c = content(b"<xml/>", A_APPID.as_bytes(), declared);
            let pad = PAD_BLOCK - c.len() % PAD_BLOCK;
            c.resize(c.len() + pad, pad as u8);
            assert_eq!(
                key.decrypt(&encrypt_raw(&key, c), A_APPID).err(),
                Some(CryptoError::BadLength),
                "declared {declared}"
            );
        }
    }

    #[test]
    fn short_plaintext_rejected() {
        let key = key_a();
        // 16 bytes of padding only: nothing left for the header.
        let c = vec![16u8; 32];
        assert_eq!(
            key.decrypt(&encrypt_raw(&key, c), A_APPID).err(),
            Some(CryptoError::BadLength)
        );
    }

    #[test]
    fn non_utf8_message_rejected() {
        let key = key_a();
        let mut c = content(&[0xff, 0xfe], A_APPID.as_bytes(), 2);
        let pad = PAD_BLOCK - c.len() % PAD_BLOCK;
        c.resize(c.len() + pad, pad as u8);
        assert_eq!(
            key.decrypt(&encrypt_raw(&key, c), A_APPID).err(),
            Some(CryptoError::BadUtf8)
        );
    }

    #[test]
    fn bad_keys_rejected() {
        assert_eq!(
            AesKey::from_encoding_aes_key("short"),
            Err(CryptoError::BadKey)
        );
        assert_eq!(
            AesKey::from_encoding_aes_key(&"!".repeat(43)),
            Err(CryptoError::BadKey)
        );
        assert_eq!(format!("{:?}", key_a()), "AesKey(<redacted>)");
    }

    #[test]
    fn seal_then_open() {
        let key = key_a();
        let sealed = seal(&key, A_TOKEN, A_APPID, "<xml>hi</xml>", "1", "n").unwrap();
        verify_msg_signature(A_TOKEN, "1", "n", &sealed.encrypt, &sealed.msg_signature).unwrap();
        assert_eq!(
            key.decrypt(&sealed.encrypt, A_APPID)
                .unwrap()
                .expose_secret(),
            "<xml>hi</xml>"
        );
        let env = reply_envelope(&sealed.encrypt, &sealed.msg_signature, "1", "n");
        assert!(env.starts_with("<xml><Encrypt><![CDATA["));
    }
}
