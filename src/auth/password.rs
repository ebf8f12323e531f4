//! Password hashing: argon2id with the crate's default parameters on a few dedicated threads
//! (one per core, started on first use), so a burst of logins cannot starve the server.
//! Dedicated threads also bound memory: each hash needs 19 MiB, and the allocator keeps that
//! memory in the arena of the thread that used it. On tokio's blocking pool every fresh thread
//! kept its own 19 MiB (measured: a server at 7 MiB grew past 500 MiB after a hundred logins);
//! here the same few threads reuse theirs.
//!
//! Must not: touch the store or know about HTTP.

use argon2::Argon2;
use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use rand::RngCore;
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

use super::token::new_token;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("password hashing task failed: {0}")]
    Task(String),
}

type HashJob = Box<dyn FnOnce() + Send>;

/// Hashes and verifies passwords on `concurrency` dedicated threads; callers wait their turn.
#[derive(Clone)]
pub struct PasswordHasher {
    concurrency: usize,
    /// The job queue of the hashing threads, created (and the threads started) on first use.
    jobs: Arc<std::sync::OnceLock<std::sync::mpsc::Sender<HashJob>>>,
    /// A real hash of a random password, verified against when a username does not exist, so
    /// that "no such user" takes as long as "wrong password".
    decoy: Arc<OnceCell<String>>,
}

impl PasswordHasher {
    pub fn new(concurrency: usize) -> PasswordHasher {
        PasswordHasher {
            concurrency: concurrency.max(1),
            jobs: Arc::new(std::sync::OnceLock::new()),
            decoy: Arc::new(OnceCell::new()),
        }
    }

    /// Runs `work` on a hashing thread. The threads end when the last clone of this hasher
    /// is dropped (their queue closes).
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AuthError> {
        let jobs = self.jobs.get_or_init(|| {
            let (sender, receiver) = std::sync::mpsc::channel::<HashJob>();
            let receiver = Arc::new(Mutex::new(receiver));
            for index in 0..self.concurrency {
                let receiver = Arc::clone(&receiver);
                let spawned = std::thread::Builder::new()
                    .name(format!("parley-argon2-{index}"))
                    .spawn(move || {
                        loop {
                            // The lock is held only while waiting for the next job.
                            let job = match receiver.lock() {
                                Ok(queue) => queue.recv(),
                                Err(_) => return,
                            };
                            match job {
                                Ok(job) => job(),
                                Err(_) => return,
                            }
                        }
                    });
                if let Err(e) = spawned {
                    tracing::error!(error = %e, "cannot start a password hashing thread");
                }
            }
            sender
        });
        let (reply, answer) = tokio::sync::oneshot::channel();
        jobs.send(Box::new(move || {
            let _ = reply.send(work());
        }))
        .map_err(|_| AuthError::Task("the hashing threads are gone".into()))?;
        answer
            .await
            .map_err(|_| AuthError::Task("a hashing job was dropped".into()))
    }

    pub async fn hash(&self, password: String) -> Result<String, AuthError> {
        self.run(move || hash_password(password.as_bytes())).await?
    }

    /// True when `password` matches `phc`. A malformed stored hash never matches.
    pub async fn verify(&self, password: String, phc: String) -> Result<bool, AuthError> {
        self.run(move || verify_password(password.as_bytes(), &phc))
            .await
    }

    /// Spends the same work as a real verification, and always fails.
    pub async fn verify_decoy(&self, password: String) -> Result<bool, AuthError> {
        let decoy = self
            .decoy
            .get_or_try_init(|| self.hash(new_token().0))
            .await?
            .clone();
        self.verify(password, decoy).await.map(|_| false)
    }
}

thread_local! {
    /// The hashing thread's argon2 working memory (19 MiB with the default parameters), kept
    /// between hashes instead of allocated and freed each time.
    static ARGON2_MEMORY: std::cell::RefCell<Vec<argon2::Block>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// argon2 over this thread's reusable working memory.
fn argon2_into(
    argon2: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    ARGON2_MEMORY.with_borrow_mut(|memory| {
        let needed = argon2.params().block_count();
        if memory.len() < needed {
            memory.resize(needed, argon2::Block::new());
        }
        argon2.hash_password_into_with_memory(password, salt, out, &mut memory[..needed])
    })
}

/// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) for `password` with a fresh salt,
/// exactly what `argon2::PasswordHasher` would produce.
fn hash_password(password: &[u8]) -> Result<String, AuthError> {
    let fail = |e: &dyn std::fmt::Display| AuthError::Hash(e.to_string());
    let argon2 = Argon2::default();
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let mut out = [0u8; argon2::Params::DEFAULT_OUTPUT_LEN];
    argon2_into(&argon2, password, &salt, &mut out).map_err(|e| fail(&e))?;
    let hash = PasswordHash {
        algorithm: argon2::Algorithm::Argon2id.ident(),
        version: Some(argon2::Version::V0x13.into()),
        params: ParamsString::try_from(argon2.params()).map_err(|e| fail(&e))?,
        salt: Some(Salt::new(&salt).map_err(|e| fail(&e))?),
        hash: Some(Output::new(&out).map_err(|e| fail(&e))?),
    };
    Ok(hash.to_string())
}

/// Recomputes the hash with the parameters and salt stored in `phc` and compares in constant
/// time. Anything unparsable is a mismatch.
fn verify_password(password: &[u8], phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = argon2::Algorithm::try_from(parsed.algorithm.as_str()) else {
        return false;
    };
    let Ok(version) = argon2::Version::try_from(parsed.version.unwrap_or(0x13)) else {
        return false;
    };
    let Ok(params) = argon2::Params::try_from(&parsed) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params);
    if argon2_into(&argon2, password, salt.as_ref(), &mut out).is_err() {
        return false;
    }
    Output::new(&out).is_ok_and(|computed| computed == *expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_then_verify() {
        let hasher = PasswordHasher::new(1);
        let phc = hasher.hash("correct horse".into()).await.expect("hash");
        assert!(phc.starts_with("$argon2id$"));
        assert!(
            hasher
                .verify("correct horse".into(), phc.clone())
                .await
                .expect("verify")
        );
        assert!(!hasher.verify("wrong".into(), phc).await.expect("verify"));
        assert!(
            !hasher
                .verify("x".into(), "not a phc".into())
                .await
                .expect("verify")
        );
        assert!(!hasher.verify_decoy("anything".into()).await.expect("decoy"));
    }

    #[test]
    fn interchangeable_with_the_argon2_crate() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let ours = hash_password(b"correct horse").expect("hash");
        let parsed = PasswordHash::new(&ours).expect("a PHC string");
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"correct horsf", &parsed)
                .is_err()
        );

        let theirs = Argon2::default()
            .hash_password_with_salt(b"battery staple", b"sixteen byte slt")
            .expect("hash")
            .to_string();
        assert!(verify_password(b"battery staple", &theirs));
        assert!(!verify_password(b"battery stapler", &theirs));

        let params = argon2::Params::new(8 * 1024, 3, 1, Some(24)).expect("params");
        let lighter = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password_with_salt(b"pw", b"another salt 123")
            .expect("hash")
            .to_string();
        assert!(
            verify_password(b"pw", &lighter),
            "parameters come from the string"
        );
        assert!(!verify_password(
            b"pw",
            &lighter.replace("m=8192", "m=8193")
        ));
        assert!(!verify_password(
            b"pw",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$"
        ));
    }
}
