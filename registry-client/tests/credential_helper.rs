//! The test kit's `docker-credential-test` (test_support::credential_helper) through
//! registry-client's own lookup: `credHelpers` in a docker config.json runs it, it answers
//! for its one host and says "not found" for others, and the credentials it gives open a
//! Basic registry and a Bearer one (the kit's proxy and its token server).
//!
//! One test: it sets PATH for the whole process, which parallel tests would race on.

mod support;

use registry_client::{Client, Config, Credentials, RegistryError};
use support::*;
use test_support::credential_helper::{write_docker_config, CredentialHelper, HELPER_NAME};
use test_support::proxy::{Proxy, ProxyOptions};

fn lookup(config: &std::path::Path, registry: &str) -> Option<Credentials> {
    let bytes = std::fs::read(config).expect("read config.json");
    Credentials::from_auth_json(&bytes, config, registry)
        .unwrap_or_else(|e| panic!("credentials for {registry}: {e}"))
}

#[test]
fn the_kits_credential_helper_answers_for_its_host_and_its_credentials_work() {
    let tmp = tempfile::tempdir().unwrap();

    // Basic: an htpasswd registry.
    let basic = Registry::htpasswd(USER, PASSWORD);
    let helper = CredentialHelper::write(&tmp.path().join("basic"), &basic.host(), USER, PASSWORD);
    std::env::set_var("PATH", helper.path_env());
    let config = write_docker_config(
        &tmp.path().join("docker"),
        &[
            (&basic.host(), HELPER_NAME),
            ("other.example:5000", HELPER_NAME),
        ],
    );
    let creds = lookup(&config, &format!("{}/ferry/app", basic.host()))
        .expect("the helper has credentials for the registry");
    assert_eq!(creds.username(), USER);
    assert!(!creds.is_identity_token());
    let source = creds.source().expect("a source");
    assert_eq!(source.helper.as_deref(), Some("docker-credential-test"));
    assert_eq!(source.path, config);
    let mut c = basic.config();
    c.credentials = Some(creds);
    let client = Client::new(c).unwrap();
    client
        .ping()
        .expect("the helper's password opens the registry");
    assert!(client.get_manifest("ferry/app", "v1").unwrap().is_none());

    // Another host: "credentials not found", which is no credentials, not an error.
    assert!(lookup(&config, "other.example:5000/x/y").is_none());
    assert_eq!(
        helper.asked(),
        vec![basic.host(), "other.example:5000".to_owned()]
    );

    // Bearer: the proxy's token server in front of a plain registry.
    let plain = Registry::plain();
    let proxy = Proxy::start(
        &plain.host(),
        ProxyOptions {
            bearer: Some((USER.to_owned(), PASSWORD.to_owned())),
            ..ProxyOptions::default()
        },
    );
    let helper = CredentialHelper::write(&tmp.path().join("bearer"), &proxy.host(), USER, PASSWORD);
    std::env::set_var("PATH", helper.path_env());
    let config = write_docker_config(&tmp.path().join("docker2"), &[(&proxy.host(), HELPER_NAME)]);
    let creds = lookup(&config, &proxy.host()).expect("credentials for the proxy");
    let mut c = Config::new(proxy.host());
    c.insecure = true;
    c.retry = quick_retries(2);
    c.proxy_from_env = false;
    let anonymous = Client::new(c.clone()).unwrap();
    let e = anonymous
        .get_manifest("openshift4/ose-x", "v1")
        .expect_err("no token without credentials");
    assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e}");
    c.credentials = Some(creds);
    let client = Client::new(c).unwrap();
    assert!(client
        .get_manifest("openshift4/ose-x", "v1")
        .expect("a token, then the registry's own 404")
        .is_none());
    assert!(proxy.tokens_issued() >= 1);
    let token_gets = proxy.count("GET", "/token");
    assert!(token_gets >= 1, "{:#?}", proxy.requests());
    assert_eq!(helper.asked(), vec![proxy.host()]);
}
