//! `vltava cluster info`: cluster id, controller, brokers, topic count, the
//! under-replicated partitions (ISR smaller than the replicas, as
//! `kafka-topics.sh --under-replicated-partitions` counts them), the API
//! versions each broker advertises (as kafka-broker-api-versions.sh shows
//! them) and the client's versions.

use std::time::Duration;

use anyhow::bail;
use clap::Subcommand;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::json;

use super::{print_json, table, wire, ClientArgs, FormatArgs, OutputFormat};

#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// Show the cluster id, controller, brokers, under-replicated partitions
    /// and the API versions each broker advertises.
    ///
    /// Examples:
    ///   vltava cluster info
    ///   vltava cluster info -b kafka-1:9092 --format json
    #[command(verbatim_doc_comment)]
    Info {
        #[command(flatten)]
        format: FormatArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
}

pub fn run(cmd: ClusterCommand) -> anyhow::Result<()> {
    let ClusterCommand::Info { format, client } = cmd;
    let consumer: BaseConsumer = client.client_config()?.create()?;
    let md = consumer.fetch_metadata(None, client.timeout())?;
    let cluster_id = consumer.client().fetch_cluster_id(client.timeout());
    let timeout_ms = i32::try_from(client.timeout_ms).unwrap_or(i32::MAX);
    // SAFETY: the client pointer is valid for the consumer's lifetime.
    let controller = unsafe {
        rdkafka::bindings::rd_kafka_controllerid(consumer.client().native_ptr(), timeout_ms)
    };
    let brokers: Vec<(i32, String, i32)> = md
        .brokers()
        .iter()
        .map(|b| (b.id(), b.host().to_string(), b.port()))
        .collect();
    let versions: Vec<Result<ApiVersions, String>> = brokers
        .iter()
        .map(|(_, h, p)| broker_api_versions(h, *p, client.timeout()).map_err(|e| format!("{e:#}")))
        .collect();
    let under_replicated = md
        .topics()
        .iter()
        .flat_map(|t| t.partitions())
        .filter(|p| p.isr().len() < p.replicas().len())
        .count();
    let (_, librdkafka) = rdkafka::util::get_rdkafka_version();
    let cli = env!("CARGO_PKG_VERSION");
    match format.format {
        OutputFormat::Json => print_json(&json!({
            "cluster_id": cluster_id,
            "controller_id": (controller >= 0).then_some(controller),
            "brokers": brokers.iter().zip(&versions).map(|((id, h, p), v)| json!({
                "id": id, "host": h, "port": p,
                "api_versions": match v {
                    Ok(list) => json!(list.iter().map(|(api, min, max)| json!({"api": api, "min": min, "max": max})).collect::<Vec<_>>()),
                    Err(e) => json!({"error": e}),
                },
            })).collect::<Vec<_>>(),
            "topics": md.topics().len(),
            "under_replicated_partitions": under_replicated,
            "vltava_cli_version": cli,
            "librdkafka_version": librdkafka,
        }))?,
        OutputFormat::Table => {
            println!("Cluster id:  {}", cluster_id.as_deref().unwrap_or("-"));
            println!(
                "Controller:  {}",
                if controller >= 0 {
                    controller.to_string()
                } else {
                    "-".into()
                }
            );
            println!("Topics:      {}", md.topics().len());
            println!("Under-replicated partitions: {under_replicated}");
            println!("Client:      vltava {cli}, librdkafka {librdkafka}");
            let rows: Vec<Vec<String>> = brokers
                .iter()
                .map(|(id, h, p)| vec![id.to_string(), h.clone(), p.to_string()])
                .collect();
            print!("{}", table(&["BROKER", "HOST", "PORT"], &rows));
            for ((id, h, p), v) in brokers.iter().zip(&versions) {
                println!("Broker {id} ({h}:{p}) API versions:");
                match v {
                    Ok(list) => {
                        for (api, min, max) in list {
                            println!("  {api}: {min} to {max}");
                        }
                    }
                    Err(e) => println!("  unavailable: {e}"),
                }
            }
        }
    }
    Ok(())
}

/// (API name, min version, max version), as a broker advertises them.
type ApiVersions = Vec<(String, i16, i16)>;

/// Asks one broker for its ApiVersions (v3).
fn broker_api_versions(host: &str, port: i32, timeout: Duration) -> anyhow::Result<ApiVersions> {
    let request = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("vltava-cli"))
        .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
    let response = wire::request(host, port, 3, &request, timeout)?;
    if response.error_code != 0 {
        bail!("ApiVersions answered error {}", response.error_code);
    }
    Ok(response
        .api_keys
        .iter()
        .map(|k| {
            let name = ApiKey::try_from(k.api_key)
                .map(|a| format!("{a:?}({})", k.api_key))
                .unwrap_or_else(|_| format!("Unknown({})", k.api_key));
            (name, k.min_version, k.max_version)
        })
        .collect())
}
