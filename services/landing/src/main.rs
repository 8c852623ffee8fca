//! The landing Lambda function: floe's landing stage over SQS. Configuration: the README's AWS section.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    floe_lambda::service::run_lambda(floe_lambda::Stage::Landing).await
}
