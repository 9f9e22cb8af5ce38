//! Secrets: API keys of probed endpoints, from the environment or the store, each bound by an
//! admin to the endpoints it may be sent to.

use crate::service::{ServiceError, ServiceResult};
use crate::store::Store;

/// The environment variable that can hold secret `name`: `PEDIGREE_SECRET_<NAME>` (upper-case,
/// non-alphanumerics as `_`).
pub fn secret_env_var(name: &str) -> String {
    let n: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' })
        .collect();
    format!("PEDIGREE_SECRET_{n}")
}

/// A secret's value: the environment variable `PEDIGREE_SECRET_<NAME>` first (so keys can stay out
/// of the database), else the store's `secrets` table (`POST /v1/secrets`).
pub async fn resolve_secret(store: &dyn Store, name: &str) -> ServiceResult<String> {
    if let Ok(v) = std::env::var(secret_env_var(name)) {
        if !v.is_empty() {
            return Ok(v);
        }
    }
    match store.get_secret(name).await {
        Ok(Some(v)) => Ok(v),
        Ok(None) => Err(ServiceError::Invalid(format!(
            "secret `{name}` is not set (neither {} nor a stored secret)",
            secret_env_var(name)
        ))),
        Err(e) => Err(ServiceError::Invalid(format!("reading secret `{name}`: {e}"))),
    }
}

/// Secret `name`'s value for endpoint `entry` (`host:port`): refused unless an admin bound the
/// secret to that endpoint (the stored secret's `hosts`, or `PEDIGREE_SECRET_<NAME>_HOSTS`,
/// comma-separated, for a secret given in the environment), so that an analyst cannot send a
/// key to another allowlisted host that might log or echo it.
pub async fn resolve_secret_for(
    store: &dyn Store,
    name: &str,
    entry: &str,
) -> ServiceResult<String> {
    let value = resolve_secret(store, name).await?;
    let from_env = std::env::var(secret_env_var(name)).is_ok_and(|v| !v.is_empty());
    let hosts = if from_env {
        let var = format!("{}_HOSTS", secret_env_var(name));
        crate::store::split_hosts(&std::env::var(var).unwrap_or_default())
            .iter()
            .filter_map(|h| crate::service::probe::allowlist::normalize_entry(h).ok())
            .collect()
    } else {
        store.secret_hosts(name).await?.unwrap_or_default()
    };
    if !hosts.iter().any(|h| h == entry) {
        return Err(ServiceError::SecretNotAllowed(format!(
            "secret `{name}` may not be sent to `{entry}` (it is bound to: {}); an admin binds it \
             with POST /v1/secrets {{\"name\", \"value\", \"hosts\"}} or {}_HOSTS",
            if hosts.is_empty() { "no host".to_string() } else { hosts.join(", ") },
            secret_env_var(name)
        )));
    }
    Ok(value)
}

/// A secret name: 1–64 characters of `[A-Za-z0-9_-]`.
pub fn valid_secret_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    #[test]
    fn secret_env_names() {
        assert_eq!(super::secret_env_var("openai-key"), "PEDIGREE_SECRET_OPENAI_KEY");
        assert!(
            super::valid_secret_name("a_B-1")
                && !super::valid_secret_name("a b")
                && !super::valid_secret_name("")
        );
    }
}
