//! `switchboard:plugin/kv`: a key-value store namespaced per (tenant, plugin).
//!
//! The namespace is decided by the host from the call's scope; the plugin only ever names keys
//! inside it, so no key a plugin can write reaches another tenant's or another plugin's data.

use std::collections::BTreeMap;
use std::sync::Mutex;

use switchboard_contract::switchboard::plugin::kv::{Host, KvError};
use wasmtime::component::HasData;

/// Largest key, in bytes.
pub const MAX_KEY_BYTES: usize = 512;
/// Largest value, in bytes.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;
/// Largest total size of one namespace, in bytes.
pub const MAX_NAMESPACE_BYTES: usize = 16 * 1024 * 1024;

/// Whose data: one tenant's instance of one plugin.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Namespace {
    pub tenant: String,
    pub plugin: String,
}

/// Where plugin key-value data lives. The embedded default is in memory; a durable
/// implementation plugs in here.
pub trait KvStore: Send + Sync {
    fn get(&self, ns: &Namespace, key: &str) -> Result<Option<Vec<u8>>, KvError>;
    fn set(&self, ns: &Namespace, key: &str, value: Vec<u8>) -> Result<(), KvError>;
    fn delete(&self, ns: &Namespace, key: &str) -> Result<(), KvError>;
    fn list(&self, ns: &Namespace, prefix: &str, limit: usize) -> Result<Vec<String>, KvError>;
}

/// In-memory store with per-namespace quotas.
#[derive(Default)]
pub struct MemoryKv {
    data: Mutex<BTreeMap<Namespace, BTreeMap<String, Vec<u8>>>>,
}

impl KvStore for MemoryKv {
    fn get(&self, ns: &Namespace, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let data = self.data.lock().unwrap_or_else(|p| p.into_inner());
        Ok(data.get(ns).and_then(|m| m.get(key)).cloned())
    }

    fn set(&self, ns: &Namespace, key: &str, value: Vec<u8>) -> Result<(), KvError> {
        let mut data = self.data.lock().unwrap_or_else(|p| p.into_inner());
        let space = data.entry(ns.clone()).or_default();
        let used: usize = space.iter().map(|(k, v)| k.len() + v.len()).sum();
        let replaced = space.get(key).map_or(0, |v| key.len() + v.len());
        if used - replaced + key.len() + value.len() > MAX_NAMESPACE_BYTES {
            return Err(KvError::QuotaExceeded(format!(
                "store would exceed {MAX_NAMESPACE_BYTES} bytes"
            )));
        }
        space.insert(key.to_string(), value);
        Ok(())
    }

    fn delete(&self, ns: &Namespace, key: &str) -> Result<(), KvError> {
        let mut data = self.data.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(space) = data.get_mut(ns) {
            space.remove(key);
        }
        Ok(())
    }

    fn list(&self, ns: &Namespace, prefix: &str, limit: usize) -> Result<Vec<String>, KvError> {
        let data = self.data.lock().unwrap_or_else(|p| p.into_inner());
        Ok(data
            .get(ns)
            .map(|m| {
                m.range(prefix.to_string()..)
                    .take_while(|(k, _)| k.starts_with(prefix))
                    .take(limit)
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default())
    }
}

fn check_key(key: &str) -> Result<(), KvError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(KvError::InvalidKey(format!(
            "keys must be 1 to {MAX_KEY_BYTES} bytes, got {}",
            key.len()
        )));
    }
    Ok(())
}

/// What a call's `kv` import sees: the store, and the one namespace the host decided from the
/// call's scope.
pub struct KvView<'a> {
    pub store: &'a dyn KvStore,
    pub tenant: &'a str,
    pub plugin: &'a str,
}

impl KvView<'_> {
    fn kv_namespace(&self) -> Namespace {
        Namespace {
            tenant: self.tenant.to_string(),
            plugin: self.plugin.to_string(),
        }
    }
}

/// The `kv` capability, for `add_to_linker`.
pub struct KvCapability;

impl HasData for KvCapability {
    type Data<'a> = KvView<'a>;
}

impl Host for KvView<'_> {
    async fn get(&mut self, key: String) -> Option<Vec<u8>> {
        check_key(&key).ok()?;
        self.store.get(&self.kv_namespace(), &key).ok().flatten()
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), KvError> {
        check_key(&key)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(KvError::QuotaExceeded(format!(
                "values are limited to {MAX_VALUE_BYTES} bytes, got {}",
                value.len()
            )));
        }
        self.store.set(&self.kv_namespace(), &key, value)
    }

    async fn delete(&mut self, key: String) {
        if check_key(&key).is_ok() {
            let _ = self.store.delete(&self.kv_namespace(), &key);
        }
    }

    async fn list_keys(&mut self, prefix: String, limit: u32) -> Vec<String> {
        self.store
            .list(&self.kv_namespace(), &prefix, limit.min(10_000) as usize)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_do_not_share_keys() {
        let kv = MemoryKv::default();
        let a = Namespace {
            tenant: "a".into(),
            plugin: "p".into(),
        };
        let b = Namespace {
            tenant: "b".into(),
            plugin: "p".into(),
        };
        kv.set(&a, "cursor", b"1".to_vec()).unwrap();
        assert_eq!(kv.get(&b, "cursor").unwrap(), None);
        assert_eq!(kv.list(&b, "", 10).unwrap(), Vec::<String>::new());
        assert_eq!(kv.list(&a, "cur", 10).unwrap(), vec!["cursor".to_string()]);
    }

    #[test]
    fn quota_is_enforced() {
        let kv = MemoryKv::default();
        let a = Namespace {
            tenant: "a".into(),
            plugin: "p".into(),
        };
        for i in 0..16 {
            kv.set(&a, &format!("k{i}"), vec![0; MAX_VALUE_BYTES - 8])
                .unwrap();
        }
        assert!(matches!(
            kv.set(&a, "more", vec![0; 1024]),
            Err(KvError::QuotaExceeded(_))
        ));
    }
}
