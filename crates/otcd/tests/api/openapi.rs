//! The OpenAPI document for client generators: what `otcd openapi` prints is what the desk serves, and it
//! declares the signing scheme on every signed operation, problem+json errors and a response schema on every
//! operation, the closed vocabularies as enums, the stream and the webhook deliveries. (CI also runs
//! openapi-spec-validator, openapi-python-client and openapi-typescript on it: .ci/run.)

use otcd_testkit::process::{run_otcd_in, TestDesk};
use serde_json::{json, Value};

#[test]
fn the_served_document_is_complete_for_generators() {
    let desk = TestDesk::start();
    let served = desk.public_get("/openapi.json").expect(200).clone();
    let printed = run_otcd_in(&["openapi"], &desk.data_dir, &[]);
    assert!(printed.status.success(), "{printed:?}");
    let printed: Value = serde_json::from_slice(&printed.stdout).expect("otcd openapi prints JSON");
    assert_eq!(served, printed, "`otcd openapi` prints the served document");

    let document = served;
    assert!(document["servers"][0]["url"].is_string());
    for header in ["OTC-KEY", "OTC-TIMESTAMP", "OTC-SIGNATURE", "OTC-NONCE"] {
        let schemes = document["components"]["securitySchemes"].as_object().unwrap();
        let scheme = schemes.values().find(|scheme| scheme["name"] == json!(header)).expect(header);
        assert_eq!((scheme["type"].clone(), scheme["in"].clone()), (json!("apiKey"), json!("header")));
        assert!(scheme["description"].as_str().unwrap().contains("timestamp\\nMETHOD\\npath\\nbody"), "{scheme}");
    }
    let public =
        ["/healthz", "/readyz", "/metrics", "/openapi.json", "/v1/instruments", "/v1/assets", "/v1/admin/cluster"];
    let mut operations = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            operations += 1;
            let at = format!("{method} {path}");
            let signed = !public.contains(&path.as_str());
            assert_eq!(operation["security"].is_array(), signed, "{at}: security only on signed operations");
            if signed {
                assert!(operation["security"][1]["otc_signature"].is_array(), "{at}");
            }
            let responses = operation["responses"].as_object().unwrap();
            for (status, response) in responses {
                let errors = status.starts_with('4') || status.starts_with('5') || status == "default";
                if errors {
                    let schema = &response["content"]["application/problem+json"]["schema"]["$ref"];
                    assert_eq!(schema, &json!("#/components/schemas/Problem"), "{at} {status}");
                } else if status.starts_with('2') && status != "204" {
                    let content =
                        response["content"].as_object().unwrap_or_else(|| panic!("{at} {status} has content"));
                    assert!(content.values().all(|media| media["schema"].is_object()), "{at} {status} has a schema");
                }
            }
            assert!(responses.contains_key("default"), "{at}");
            if signed {
                assert!(responses.contains_key("401") && responses.contains_key("400"), "{at}");
            }
        }
    }
    assert!(operations > 70, "{operations} operations");
    assert!(document["paths"]["/v1/stream"]["get"].is_object());
    assert!(document["paths"]["/v1/webhooks"]["post"].is_object());
    let batch = &document["paths"]["/v1/admin/deposits/batch"]["post"];
    let batch_body = &batch["requestBody"]["content"]["application/json"]["schema"]["$ref"];
    assert_eq!(batch_body, &json!("#/components/schemas/DepositBatchRequest"), "{batch}");
    assert!(document["components"]["schemas"]["DepositBatchResult"]["properties"]["problem"].is_object());
    assert!(document["webhooks"]["delivery"]["post"]["requestBody"].is_object());

    let schemas = &document["components"]["schemas"];
    let enum_of = |schema: &str, property: &str| schemas[schema]["properties"][property]["enum"].clone();
    assert_eq!(enum_of("OrderView", "side"), json!(["buy", "sell"]));
    assert_eq!(enum_of("OrderView", "status"), json!(["open", "partially_filled", "filled", "cancelled", "expired"]));
    assert_eq!(enum_of("OrderView", "time_in_force"), json!(["ioc", "fok", "gtc", "gtd", null]));
    assert_eq!(enum_of("OrderView", "type"), json!(["quote", "market", "limit"]));
    assert_eq!(enum_of("WithdrawalView", "status"), json!(["pending", "submitted", "completed", "failed"]));
    let codes = enum_of("Problem", "code");
    for code in ["invalid_request", "unauthenticated", "insufficient_funds", "rate_limited"] {
        assert!(codes.as_array().unwrap().contains(&json!(code)), "{code} in {codes}");
    }
    assert_eq!(schemas["EventKind"]["enum"], json!(["order", "trade", "withdrawal", "settlement", "balance"]));
}
