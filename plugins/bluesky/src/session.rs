//! The brand account's session: `com.atproto.server.createSession` with the handle and app
//! password, cached in the plugin's key-value store with its expiry, renewed with
//! `com.atproto.server.refreshSession` (or a new login) when it expires or a call is refused
//! with `ExpiredToken`/`InvalidToken`/401.
//!
//! Everything here works through [`Api`], which holds the transport and the store as trait
//! objects, so it runs natively in unit tests with fakes.

use std::collections::HashMap;

use base64::Engine as _;
use serde_json::{Value, json};
use switchboard_sdk::PluginError;
use switchboard_sdk::http::{HttpError, Request, Response};

use crate::xrpc;

/// The key-value key the session is cached under.
pub const SESSION_KEY: &str = "session";
/// A token is renewed this long before its `exp`.
pub const EXPIRY_MARGIN_MS: i64 = 60_000;

/// The plugin's key-value store, as the session and poll logic need it.
pub trait Store {
    fn get(&self, key: &str) -> Option<String>;
    fn set(&mut self, key: &str, value: &str);
    fn delete(&mut self, key: &str);
}

impl Store for HashMap<String, String> {
    fn get(&self, key: &str) -> Option<String> {
        HashMap::get(self, key).cloned()
    }
    fn set(&mut self, key: &str, value: &str) {
        self.insert(key.into(), value.into());
    }
    fn delete(&mut self, key: &str) {
        self.remove(key);
    }
}

/// Sends one request.
pub type Transport<'a> = dyn FnMut(&Request) -> Result<Response, HttpError> + 'a;

/// A logged-in session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub access_jwt: String,
    pub refresh_jwt: String,
    pub did: String,
    pub handle: String,
    /// `exp` of the access token, in ms, if it could be read.
    pub access_expires_ms: Option<i64>,
    /// `exp` of the refresh token, in ms, if it could be read.
    pub refresh_expires_ms: Option<i64>,
}

/// The `exp` claim of a JWT, in ms (the payload is read, not verified: the PDS verifies it).
pub fn jwt_expiry_ms(jwt: &str) -> Option<i64> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("exp")?.as_i64()?.checked_mul(1000)
}

impl Session {
    /// From a createSession / refreshSession answer.
    pub fn from_answer(v: &Value) -> Result<Session, PluginError> {
        let s = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .ok_or_else(|| PluginError::Unavailable(format!("the session answer has no `{k}`")))
        };
        let access_jwt = s("accessJwt")?;
        let refresh_jwt = s("refreshJwt")?;
        Ok(Session {
            access_expires_ms: jwt_expiry_ms(&access_jwt),
            refresh_expires_ms: jwt_expiry_ms(&refresh_jwt),
            access_jwt,
            refresh_jwt,
            did: s("did")?,
            handle: v
                .get("handle")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        })
    }

    pub fn to_json(&self) -> String {
        json!({
            "accessJwt": self.access_jwt, "refreshJwt": self.refresh_jwt,
            "did": self.did, "handle": self.handle,
            "accessExpiresMs": self.access_expires_ms, "refreshExpiresMs": self.refresh_expires_ms,
        })
        .to_string()
    }

    pub fn from_json(text: &str) -> Option<Session> {
        let v: Value = serde_json::from_str(text).ok()?;
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(String::from);
        Some(Session {
            access_jwt: s("accessJwt")?,
            refresh_jwt: s("refreshJwt")?,
            did: s("did")?,
            handle: s("handle").unwrap_or_default(),
            access_expires_ms: v.get("accessExpiresMs").and_then(Value::as_i64),
            refresh_expires_ms: v.get("refreshExpiresMs").and_then(Value::as_i64),
        })
    }

    fn access_valid(&self, now_ms: i64) -> bool {
        self.access_expires_ms
            .is_none_or(|exp| exp - EXPIRY_MARGIN_MS > now_ms)
    }

    fn refresh_valid(&self, now_ms: i64) -> bool {
        self.refresh_expires_ms
            .is_none_or(|exp| exp - EXPIRY_MARGIN_MS > now_ms)
    }
}

/// The cached session's DID, if any (for recognising the brand's own posts without a call).
pub fn cached_did(store: &dyn Store) -> Option<String> {
    store
        .get(SESSION_KEY)
        .and_then(|t| Session::from_json(&t))
        .map(|s| s.did)
}

/// An authenticated XRPC client for one call of the plugin.
pub struct Api<'a> {
    pub base: String,
    pub identifier: String,
    pub password: String,
    pub send: &'a mut Transport<'a>,
    pub store: &'a mut dyn Store,
    pub now_ms: i64,
    session: Option<Session>,
}

impl<'a> Api<'a> {
    pub fn new(
        base: String,
        identifier: String,
        password: String,
        send: &'a mut Transport<'a>,
        store: &'a mut dyn Store,
        now_ms: i64,
    ) -> Self {
        Api {
            base,
            identifier,
            password,
            send,
            store,
            now_ms,
            session: None,
        }
    }

    fn transport(&mut self, request: &Request) -> Result<Response, PluginError> {
        (self.send)(request).map_err(PluginError::from)
    }

    fn keep(&mut self, session: Session) -> Session {
        self.store.set(SESSION_KEY, &session.to_json());
        self.session = Some(session.clone());
        session
    }

    /// Log in with the handle and app password.
    pub fn login(&mut self) -> Result<Session, PluginError> {
        let url = xrpc::url(&self.base, "com.atproto.server.createSession", &[]);
        let body = json!({"identifier": self.identifier, "password": self.password});
        let response = self.transport(&xrpc::post(&url, &body))?;
        if response.status == 401 || xrpc::is_auth_failure(&response) {
            // Never quote the request: it holds the password.
            return Err(PluginError::Rejected(format!(
                "login as `{}` was refused ({}): check config `handle` and secret \
                 `app-password`",
                self.identifier,
                xrpc::describe(&response)
            )));
        }
        let answer = xrpc::check(&response, "createSession", self.now_ms)?;
        let session = Session::from_answer(&answer)?;
        Ok(self.keep(session))
    }

    /// Renew with the refresh token; `None` when the refresh token is refused.
    fn refresh(&mut self, old: &Session) -> Result<Option<Session>, PluginError> {
        let url = xrpc::url(&self.base, "com.atproto.server.refreshSession", &[]);
        let mut request = xrpc::post(&url, &Value::Null).bearer(&old.refresh_jwt);
        request.body.clear();
        request.headers.retain(|(k, _)| k != "content-type");
        let response = self.transport(&request)?;
        if xrpc::is_auth_failure(&response) {
            return Ok(None);
        }
        let answer = xrpc::check(&response, "refreshSession", self.now_ms)?;
        let session = Session::from_answer(&answer)?;
        Ok(Some(self.keep(session)))
    }

    /// A usable session: the one already held, the cached one while its access token is
    /// valid, else renewed (refresh, then a new login).
    pub fn session(&mut self) -> Result<Session, PluginError> {
        if let Some(s) = &self.session {
            return Ok(s.clone());
        }
        let cached = self
            .store
            .get(SESSION_KEY)
            .and_then(|t| Session::from_json(&t));
        match cached {
            Some(s) if s.access_valid(self.now_ms) => {
                self.session = Some(s.clone());
                Ok(s)
            }
            Some(s) => self.renew(Some(&s)),
            None => self.login(),
        }
    }

    /// Replace a session the PDS refused: refresh if possible, else log in again.
    fn renew(&mut self, old: Option<&Session>) -> Result<Session, PluginError> {
        self.session = None;
        if let Some(old) = old.filter(|o| o.refresh_valid(self.now_ms))
            && let Some(s) = self.refresh(old)?
        {
            return Ok(s);
        }
        self.store.delete(SESSION_KEY);
        self.login()
    }

    /// Send an authenticated request built by `build` from the access token; on an
    /// auth failure, renew the session once and send again. The answer is returned as is.
    pub fn call(&mut self, build: &dyn Fn(&str) -> Request) -> Result<Response, PluginError> {
        let session = self.session()?;
        let response = self.transport(&build(&session.access_jwt))?;
        if !xrpc::is_auth_failure(&response) {
            return Ok(response);
        }
        let renewed = self.renew(Some(&session))?;
        self.transport(&build(&renewed.access_jwt))
    }

    /// An authenticated XRPC query (GET), mapped by [`xrpc::check`].
    pub fn query(
        &mut self,
        nsid: &str,
        params: &[(&str, &str)],
        proxy: Option<&str>,
    ) -> Result<Value, PluginError> {
        let url = xrpc::url(&self.base, nsid, params);
        let response = self.call(&|token| {
            let r = xrpc::get(&url).bearer(token);
            match proxy {
                Some(p) => r.header("atproto-proxy", p),
                None => r,
            }
        })?;
        xrpc::check(&response, nsid, self.now_ms)
    }

    /// An authenticated XRPC procedure (POST with a JSON body), mapped by [`xrpc::check`].
    pub fn procedure(
        &mut self,
        nsid: &str,
        body: &Value,
        proxy: Option<&str>,
    ) -> Result<Value, PluginError> {
        let url = xrpc::url(&self.base, nsid, &[]);
        let response = self.call(&|token| {
            let r = xrpc::post(&url, body).bearer(token);
            match proxy {
                Some(p) => r.header("atproto-proxy", p),
                None => r,
            }
        })?;
        xrpc::check(&response, nsid, self.now_ms)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A JWT-shaped token with `exp` (seconds).
    pub fn jwt(name: &str, exp_s: i64) -> String {
        let b64 = |v: &Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
        };
        format!(
            "{}.{}.{name}",
            b64(&json!({"typ": "at+jwt"})),
            b64(&json!({"exp": exp_s, "sub": "did:plc:brand"}))
        )
    }

    pub fn answer(status: u16, body: Value) -> Response {
        Response {
            status,
            headers: vec![],
            body: body.to_string().into_bytes(),
        }
    }

    pub fn session_answer(access: &str, refresh: &str) -> Response {
        answer(
            200,
            json!({"accessJwt": access, "refreshJwt": refresh, "did": "did:plc:brand",
                   "handle": "acme.bsky.social"}),
        )
    }

    fn auth_of(r: &Request) -> String {
        r.headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    const NOW: i64 = 1_700_000_000_000;

    #[test]
    fn logs_in_once_caches_and_reuses_the_session() {
        let access = jwt("a1", NOW / 1000 + 7200);
        let mut store: HashMap<String, String> = HashMap::new();
        let mut seen: Vec<(String, String, String)> = Vec::new();
        {
            let access = access.clone();
            let mut send = |r: &Request| {
                seen.push((
                    r.url.clone(),
                    auth_of(r),
                    String::from_utf8_lossy(&r.body).into(),
                ));
                Ok(if r.url.ends_with("createSession") {
                    session_answer(&access, &jwt("r1", NOW / 1000 + 86400))
                } else {
                    answer(200, json!({"ok": true}))
                })
            };
            let mut api = Api::new(
                "https://pds.example".into(),
                "acme.bsky.social".into(),
                "app-pass".into(),
                &mut send,
                &mut store,
                NOW,
            );
            assert_eq!(
                api.query(
                    "app.bsky.notification.listNotifications",
                    &[("limit", "1")],
                    None
                )
                .unwrap()["ok"],
                true
            );
            assert_eq!(
                api.query("app.bsky.feed.searchPosts", &[], None).unwrap()["ok"],
                true
            );
        }
        assert_eq!(seen.len(), 3);
        assert_eq!(
            seen[0].0,
            "https://pds.example/xrpc/com.atproto.server.createSession"
        );
        let body: Value = serde_json::from_str(&seen[0].2).unwrap();
        assert_eq!(
            body,
            json!({"identifier": "acme.bsky.social", "password": "app-pass"})
        );
        assert_eq!(seen[1].1, format!("Bearer {access}"));
        let cached = Session::from_json(&store[SESSION_KEY]).unwrap();
        assert_eq!(cached.did, "did:plc:brand");
        assert_eq!(cached.access_expires_ms, Some((NOW / 1000 + 7200) * 1000));
        assert_eq!(cached_did(&store).as_deref(), Some("did:plc:brand"));
    }

    #[test]
    fn an_expired_token_is_refreshed_and_the_call_retried() {
        let mut store: HashMap<String, String> = HashMap::new();
        let old = Session::from_answer(&json!({"accessJwt": jwt("old", NOW / 1000 + 3600),
            "refreshJwt": jwt("refresh", NOW / 1000 + 86400), "did": "did:plc:brand"}))
        .unwrap();
        store.insert(SESSION_KEY.into(), old.to_json());
        let new_access = jwt("new", NOW / 1000 + 7200);
        let mut seen = Vec::new();
        {
            let new_access = new_access.clone();
            let mut send = |r: &Request| {
                seen.push((r.url.clone(), auth_of(r)));
                Ok(if r.url.ends_with("refreshSession") {
                    session_answer(&new_access, &jwt("refresh2", NOW / 1000 + 86400))
                } else if auth_of(r).contains("old") {
                    answer(
                        400,
                        json!({"error": "ExpiredToken", "message": "Token has expired"}),
                    )
                } else {
                    answer(200, json!({"posts": []}))
                })
            };
            let mut api = Api::new(
                "https://pds.example".into(),
                "acme".into(),
                "pw".into(),
                &mut send,
                &mut store,
                NOW,
            );
            assert!(api.query("app.bsky.feed.searchPosts", &[], None).is_ok());
        }
        assert_eq!(seen.len(), 3);
        assert!(seen[1].0.ends_with("com.atproto.server.refreshSession"));
        assert!(seen[1].1.contains("refresh"));
        assert_eq!(seen[2].1, format!("Bearer {new_access}"));
        assert_eq!(
            Session::from_json(&store[SESSION_KEY]).unwrap().access_jwt,
            new_access
        );
    }

    #[test]
    fn a_refused_refresh_falls_back_to_login_and_a_refused_login_is_rejected() {
        let mut store: HashMap<String, String> = HashMap::new();
        // Access token already expired by the clock: renewed before any call.
        let old = Session::from_answer(&json!({"accessJwt": jwt("old", NOW / 1000 - 10),
            "refreshJwt": jwt("refresh", NOW / 1000 + 86400), "did": "did:plc:brand"}))
        .unwrap();
        store.insert(SESSION_KEY.into(), old.to_json());
        let mut urls = Vec::new();
        let result = {
            let mut send = |r: &Request| {
                urls.push(r.url.rsplit('/').next().unwrap().to_string());
                Ok(if r.url.ends_with("refreshSession") {
                    answer(400, json!({"error": "ExpiredToken"}))
                } else {
                    answer(
                        401,
                        json!({"error": "AuthenticationRequired",
                                       "message": "Invalid identifier or password"}),
                    )
                })
            };
            let mut api = Api::new(
                "https://pds.example".into(),
                "acme".into(),
                "super-secret-pw".into(),
                &mut send,
                &mut store,
                NOW,
            );
            api.query("app.bsky.feed.searchPosts", &[], None)
        };
        assert_eq!(
            urls,
            vec![
                "com.atproto.server.refreshSession",
                "com.atproto.server.createSession"
            ]
        );
        let Err(PluginError::Rejected(m)) = result else {
            panic!("{result:?}")
        };
        assert!(m.contains("Invalid identifier or password") && !m.contains("super-secret-pw"));
        assert!(!store.contains_key(SESSION_KEY));
    }

    #[test]
    fn jwt_expiry_is_read_from_the_payload() {
        assert_eq!(
            jwt_expiry_ms(&jwt("x", 1_700_000_123)),
            Some(1_700_000_123_000)
        );
        assert_eq!(jwt_expiry_ms("not-a-jwt"), None);
        assert_eq!(jwt_expiry_ms("a.!!!.c"), None);
    }
}
