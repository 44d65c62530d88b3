//! `vltava cluster info`: cluster id, controller, brokers, topic count and
//! the client's versions.

use clap::Subcommand;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::json;

use super::{print_json, table, ClientArgs, FormatArgs, OutputFormat};

#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// Show the cluster id, controller and brokers.
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
    let (_, librdkafka) = rdkafka::util::get_rdkafka_version();
    let cli = env!("CARGO_PKG_VERSION");
    match format.format {
        OutputFormat::Json => print_json(&json!({
            "cluster_id": cluster_id,
            "controller_id": (controller >= 0).then_some(controller),
            "brokers": brokers.iter().map(|(id, h, p)| json!({"id": id, "host": h, "port": p})).collect::<Vec<_>>(),
            "topics": md.topics().len(),
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
            println!("Client:      vltava {cli}, librdkafka {librdkafka}");
            let rows: Vec<Vec<String>> = brokers
                .iter()
                .map(|(id, h, p)| vec![id.to_string(), h.clone(), p.to_string()])
                .collect();
            print!("{}", table(&["BROKER", "HOST", "PORT"], &rows));
        }
    }
    Ok(())
}
