//! Stateless sessions: the session is the cookie itself, `user.expiry.signature`, signed with
//! HMAC-SHA256 under a secret every instance shares (random per process), so any instance can
//! check it, a restarted one included, and none keeps anything.

use std::{
    sync::LazyLock,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How long a token is good for.
pub const TOKEN_TTL: Duration = Duration::from_secs(10 * 60);

/// The cluster's shared secret: what a deployment would give every instance in its config.
static SECRET: LazyLock<[u8; 32]> = LazyLock::new(rand::random);

fn mac() -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(SECRET.as_slice()).expect("HMAC takes keys of any length")
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// A token for `user` (letters, digits, `-`, `_`: no dots), good for [`TOKEN_TTL`].
pub fn sign(user: &str) -> String {
    let claims = format!("{user}.{}", unix_now() + TOKEN_TTL.as_secs());
    let mut mac = mac();
    mac.update(claims.as_bytes());
    format!("{claims}.{}", hex(&mac.finalize().into_bytes()))
}

/// The user a token was issued to, or why it is refused.
pub fn verify(token: &str) -> Result<String, String> {
    let mut parts = token.rsplitn(2, '.');
    let (Some(signature), Some(claims)) = (parts.next(), parts.next()) else {
        return Err("not a session token".into());
    };
    let signature = unhex(signature).ok_or("the signature is not hex")?;
    let mut mac = mac();
    mac.update(claims.as_bytes());
    // Constant-time comparison.
    mac.verify_slice(&signature)
        .map_err(|_| "bad signature: the token was altered or signed by someone else")?;
    let (user, expiry) = claims.split_once('.').ok_or("not a session token")?;
    let expiry: u64 = expiry.parse().map_err(|_| "not a session token")?;
    if expiry < unix_now() {
        return Err("the token has expired".into());
    }
    Ok(user.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_token_verifies_and_a_tampered_one_does_not() {
        let token = sign("ada");
        assert_eq!(verify(&token).unwrap(), "ada");
        let forged = token.replacen("ada", "eve", 1);
        assert!(verify(&forged).unwrap_err().contains("bad signature"));
        assert!(verify("nonsense").is_err());
        assert!(verify("ada.1.zz").is_err());
        let expired = {
            let claims = "ada.1";
            let mut m = mac();
            m.update(claims.as_bytes());
            format!("{claims}.{}", hex(&m.finalize().into_bytes()))
        };
        assert!(verify(&expired).unwrap_err().contains("expired"));
    }
}
