//! The signature check against twilio-python's own request-validator tests
//! (`tests/twilio-python/`: the Python test file as published, MIT, its licence, and
//! `request_validator.json`, the same cases as data). Twilio's SDKs define what a valid
//! signature is in practice: which URL forms are tried, how repeated parameters sort, how a
//! JSON body is signed.

use std::path::Path;

use serde_json::Value;
use twilio_sms_connector::signature::{sign, verify, verify_body};

fn dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/twilio-python")
}

fn vectors() -> Value {
    serde_json::from_slice(&std::fs::read(dir().join("request_validator.json")).unwrap()).unwrap()
}

fn pairs(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_str().unwrap().into(), p[1].as_str().unwrap().into()))
        .collect()
}

/// The JSON is a transcription: every case and value must be in the Python file it came from.
#[test]
fn the_vectors_are_the_published_ones() {
    let python = std::fs::read_to_string(dir().join("test_request_validator.py")).unwrap();
    let v = vectors();
    for case in v["cases"].as_array().unwrap() {
        let test = case["test"].as_str().unwrap();
        assert!(python.contains(&format!("def {test}(")), "{test}");
        assert!(
            python.contains(case["signature"].as_str().unwrap()),
            "{test}"
        );
    }
    for key in ["token", "uri", "body_hash"] {
        assert!(python.contains(v[key].as_str().unwrap()), "{key}");
    }
    for (name, value) in pairs(&v["params"])
        .into_iter()
        .chain(pairs(&v["duplicate_params"]))
    {
        assert!(
            python.contains(&format!("\"{name}\"")) && python.contains(&value),
            "{name}"
        );
    }
}

#[test]
fn every_validator_case_of_twilio_python_passes() {
    let v = vectors();
    let token = v["token"].as_str().unwrap();
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 8);
    for case in cases {
        let test = case["test"].as_str().unwrap();
        let uri = case["uri"].as_str().unwrap();
        let signature = case["signature"].as_str().unwrap();
        match case["params"].as_str().unwrap() {
            "body" => {
                let body = v["body"].as_str().unwrap().as_bytes();
                verify_body(token, uri, body, Some(signature))
                    .unwrap_or_else(|e| panic!("{test}: {e:?}"));
                // The same signature with the body changed must not pass.
                let mut tampered = body.to_vec();
                tampered[3] ^= 1;
                assert!(
                    verify_body(token, uri, &tampered, Some(signature)).is_err(),
                    "{test}"
                );
            }
            which => {
                let params = pairs(&v[which]);
                if case["computed"].as_bool() == Some(true) {
                    assert_eq!(sign(token, uri, &params), signature, "{test}");
                }
                verify(token, uri, &params, Some(signature))
                    .unwrap_or_else(|e| panic!("{test}: {e:?}"));
                assert!(
                    verify("54321", uri, &params, Some(signature)).is_err(),
                    "{test}"
                );
            }
        }
    }
}
