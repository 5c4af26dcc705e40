//! The machine's ceiling for signing: aws-lc-rs alone, no Arca, N threads signing the load
//! generator's message for a few seconds. docs/benchmarks.md compares the server with it.
//!
//! ```sh
//! cargo run --release -p arca-crypto --example raw_sign -- p256 2 5
//! cargo run --release -p arca-crypto --example raw_sign -- rsa2048 2 5
//! ```

use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let alg = args.get(1).map(String::as_str).unwrap_or("p256");
    let threads: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2);
    let secs: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(5);
    let msg = b"load generator message";
    let rng = SystemRandom::new();
    let sign: Box<dyn Fn() + Send + Sync> = match alg {
        "p256" => {
            let pkcs8 =
                EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
                    .expect("keygen");
            let k = EcdsaKeyPair::from_pkcs8(
                &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                pkcs8.as_ref(),
            )
            .expect("key");
            Box::new(move || {
                let _ = k.sign(&SystemRandom::new(), msg).expect("sign");
            })
        }
        "rsa2048" => {
            let k = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("keygen");
            let n = k.public_modulus_len();
            Box::new(move || {
                let mut sig = vec![0u8; n];
                k.sign(
                    &signature::RSA_PSS_SHA256,
                    &SystemRandom::new(),
                    msg,
                    &mut sig,
                )
                .expect("sign");
            })
        }
        "ed25519" => {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("keygen");
            let k = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("key");
            let _ = k.public_key();
            Box::new(move || {
                let _ = k.sign(msg);
            })
        }
        other => panic!("unknown algorithm {other}: p256, rsa2048 or ed25519"),
    };
    let sign = std::sync::Arc::new(sign);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let t0 = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let sign = sign.clone();
            std::thread::spawn(move || {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    sign();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let total: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    let rate = total as f64 / t0.elapsed().as_secs_f64();
    println!("{alg} {threads} threads: {total} signatures, {rate:.0}/s");
}
