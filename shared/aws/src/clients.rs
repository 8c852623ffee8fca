//! One AWS configuration per process and the clients built from it (once, at cold start).
//!
//! HTTPS is hyper 1 + rustls with the ring provider: the SDK's default (aws-lc) needs a long C
//! build, and ring is already in floe's tree. An endpoint override points every client at a
//! local stand-in (moto); S3 then uses path-style addressing, which such stand-ins need.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_http_client::tls;

/// The clients a service or the CLI uses.
#[derive(Debug, Clone)]
pub struct Clients {
    /// S3.
    pub s3: aws_sdk_s3::Client,
    /// SQS.
    pub sqs: aws_sdk_sqs::Client,
    /// EventBridge.
    pub eventbridge: aws_sdk_eventbridge::Client,
    /// Athena.
    pub athena: aws_sdk_athena::Client,
    /// Glue.
    pub glue: aws_sdk_glue::Client,
}

/// How to reach AWS.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    /// The region.
    pub region: String,
    /// Every API at this endpoint instead of AWS's (a local stand-in).
    pub endpoint_url: Option<String>,
    /// Fixed credentials (for a stand-in); `None` uses the default chain (environment, profile,
    /// web identity, container and instance roles).
    pub static_credentials: Option<(String, String)>,
}

impl Connection {
    /// A connection to a local stand-in at `endpoint` with test credentials.
    pub fn stand_in(endpoint: &str, region: &str) -> Self {
        Connection {
            region: region.into(),
            endpoint_url: Some(endpoint.into()),
            static_credentials: Some(("testing".into(), "testing".into())),
        }
    }

    /// The shared SDK configuration.
    pub async fn sdk_config(&self) -> SdkConfig {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(self.region.clone()))
            .http_client(http);
        if let Some(url) = &self.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some((key, secret)) = &self.static_credentials {
            loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
                key,
                secret,
                None,
                None,
                "floe-static",
            ));
        }
        loader.load().await
    }

    /// Every client, from one configuration.
    pub async fn clients(&self) -> Clients {
        let config = self.sdk_config().await;
        let s3 = aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(self.endpoint_url.is_some())
            .build();
        Clients {
            s3: aws_sdk_s3::Client::from_conf(s3),
            sqs: aws_sdk_sqs::Client::new(&config),
            eventbridge: aws_sdk_eventbridge::Client::new(&config),
            athena: aws_sdk_athena::Client::new(&config),
            glue: aws_sdk_glue::Client::new(&config),
        }
    }
}
