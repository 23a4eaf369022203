//! The functions send their AWS calls through the hub's own HTTP client
//! (`hub::transport::SdkTransport`), not the SDK's. moto does not check signatures, so the other
//! tests cannot tell whether a request still carries a valid SigV4 signature once it went through
//! it: this one checks, on a loopback server that verifies each request's signature with the
//! SigV4 reference implementation (`aws-sigv4`) against the headers and body as they arrived.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use axum::http::HeaderMap;

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

/// A request as the server received it.
struct Received {
    method: String,
    uri: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// Recomputes the request's signature from what arrived; returns the signature it carried and
/// the one it should carry.
fn signatures(r: &Received) -> (String, String) {
    let auth = r.headers["authorization"].to_str().unwrap();
    let field = |name: &str| {
        auth.split([',', ' '])
            .find_map(|p| p.strip_prefix(name))
            .unwrap_or_else(|| panic!("{name} in {auth}"))
            .to_owned()
    };
    let signed: Vec<String> = field("SignedHeaders=")
        .split(';')
        .map(str::to_owned)
        .collect();
    let scope: Vec<String> = field("Credential=").split('/').map(str::to_owned).collect();
    let (region, service) = (scope[2].clone(), scope[3].clone());
    let date = r.headers["x-amz-date"].to_str().unwrap();
    let time = parse_amz_date(date);
    // Every signed header as it arrived, but the date, which the signer adds from `time`.
    let headers: Vec<(&str, &str)> = signed
        .iter()
        .filter(|h| *h != "x-amz-date")
        .map(|h| {
            let v = r
                .headers
                .get(h.as_str())
                .unwrap_or_else(|| panic!("signed header {h} did not arrive"));
            (h.as_str(), v.to_str().unwrap())
        })
        .collect();
    let identity = Credentials::new("AKIDEXAMPLE", SECRET, None, None, "test").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&region)
        .name(&service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let request = SignableRequest::new(
        &r.method,
        r.uri.as_str(),
        headers.into_iter(),
        SignableBody::Bytes(&r.body),
    )
    .unwrap();
    let expected = sign(request, &params).unwrap().signature().to_owned();
    (field("Signature="), expected)
}

/// `20261126T101500Z` as a time.
fn parse_amz_date(date: &str) -> std::time::SystemTime {
    let n = |a: usize, b: usize| date[a..b].parse::<i64>().unwrap();
    let (y, m, d) = (n(0, 4), n(4, 6), n(6, 8));
    let (hh, mm, ss) = (n(9, 11), n(11, 13), n(13, 15));
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    std::time::UNIX_EPOCH + Duration::from_secs((days * 86_400 + hh * 3600 + mm * 60 + ss) as u64)
}

#[tokio::test]
async fn sdk_calls_through_the_hub_transport_arrive_validly_signed() {
    let received: Arc<Mutex<Vec<Received>>> = Arc::default();
    let sink = received.clone();
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let sink = sink.clone();
        async move {
            let (parts, body) = req.into_parts();
            let body = axum::body::to_bytes(body, 1 << 20).await.unwrap().to_vec();
            sink.lock().unwrap().push(Received {
                method: parts.method.to_string(),
                uri: parts.uri.to_string(),
                headers: parts.headers,
                body,
            });
            (
                [("content-type", "application/x-amz-json-1.0")],
                "{}".to_owned(),
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let http = hub::transport::http_client(Duration::from_secs(2)).unwrap();
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .credentials_provider(Credentials::new("AKIDEXAMPLE", SECRET, None, None, "test"))
        .endpoint_url(&url)
        .http_client(hub::transport::SdkTransport::new(http))
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(config);
    client
        .get_item()
        .table_name("hub")
        .key("pk", AttributeValue::S("TENANT#acme".into()))
        .key("sk", AttributeValue::S("TENANT".into()))
        .consistent_read(true)
        .send()
        .await
        .expect("GetItem through the hub's transport");
    client
        .update_item()
        .table_name("hub")
        .key("pk", AttributeValue::S("ASSESSMENT#1".into()))
        .key(
            "sk",
            AttributeValue::S("DELIVERY#00000000000000000001".into()),
        )
        .update_expression("SET #s = :s")
        .expression_attribute_names("#s", "state")
        .expression_attribute_values(":s", AttributeValue::S("delivered ✓".into()))
        .send()
        .await
        .expect("UpdateItem through the hub's transport");

    let received = received.lock().unwrap();
    assert_eq!(received.len(), 2);
    for r in received.iter() {
        let (carried, expected) = signatures(r);
        assert_eq!(carried, expected, "signature of {} {}", r.method, r.uri);
        assert!(!r.body.is_empty(), "the body arrived");
    }
    // The check itself can fail: a header changed after signing breaks the signature.
    let mut tampered = Received {
        method: received[0].method.clone(),
        uri: received[0].uri.clone(),
        headers: received[0].headers.clone(),
        body: received[0].body.clone(),
    };
    tampered.headers.insert(
        "x-amz-target",
        "DynamoDB_20120810.DeleteItem".parse().unwrap(),
    );
    let (carried, expected) = signatures(&tampered);
    assert_ne!(carried, expected);
}
