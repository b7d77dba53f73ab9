//! The connection to the NATS cluster and the JetStream objects of one desk: the records' stream, the lease
//! bucket and the identity bucket, created by the first node that starts.

use crate::error::ReplicationError;
use crate::settings::ReplicationSettings;
use async_nats::jetstream::{self, kv, stream};

/// A node's handles on its desk's JetStream objects.
#[derive(Clone)]
pub struct Cluster {
    pub settings: ReplicationSettings,
    pub jetstream: jetstream::Context,
    pub stream: stream::Stream,
    pub lease_bucket: kv::Store,
    pub identity_bucket: kv::Store,
}

/// Largest record the stream takes: the journal's own payload bound (1 MiB) plus room for headers. The NATS
/// servers' `max_payload` must be at least this (docs/operations.md).
pub const MESSAGE_BYTES_MAX: i32 = (1 << 20) + 4096;

impl Cluster {
    pub async fn connect(settings: &ReplicationSettings) -> Result<Self, ReplicationError> {
        let servers = settings.servers.join(",");
        let client = async_nats::ConnectOptions::new()
            .name(format!("otcd-{}", settings.node_id))
            .request_timeout(Some(settings.ack_timeout))
            .connection_timeout(settings.ack_timeout * 2)
            .connect(settings.servers.as_slice())
            .await
            .map_err(|error| ReplicationError::Connect { servers, detail: error.to_string() })?;
        let mut jetstream = jetstream::new(client);
        jetstream.set_timeout(settings.ack_timeout);
        let stream = ensure_stream(&jetstream, settings).await?;
        let lease_bucket = ensure_bucket(&jetstream, settings, settings.lease_bucket(), settings.lease).await?;
        let identity_bucket =
            ensure_bucket(&jetstream, settings, settings.identity_bucket(), std::time::Duration::ZERO).await?;
        Ok(Self { settings: settings.clone(), jetstream, stream, lease_bucket, identity_bucket })
    }

    /// The newest record on the stream (0: empty).
    pub async fn last_seq(&self) -> Result<u64, ReplicationError> {
        let info = self.stream.get_info().await.map_err(|error| ReplicationError::jetstream("stream info", error))?;
        Ok(info.state.last_sequence)
    }
}

async fn ensure_stream(
    jetstream: &jetstream::Context,
    settings: &ReplicationSettings,
) -> Result<stream::Stream, ReplicationError> {
    let config = stream::Config {
        name: settings.stream.clone(),
        subjects: vec![settings.subject()],
        storage: stream::StorageType::File,
        num_replicas: settings.replicas,
        retention: stream::RetentionPolicy::Limits,
        // Nothing is ever dropped: stream seq = journal seq depends on it.
        discard: stream::DiscardPolicy::New,
        max_message_size: MESSAGE_BYTES_MAX,
        allow_direct: true,
        ..Default::default()
    };
    jetstream.get_or_create_stream(config).await.map_err(|error| ReplicationError::jetstream("create stream", error))
}

async fn ensure_bucket(
    jetstream: &jetstream::Context,
    settings: &ReplicationSettings,
    bucket: String,
    max_age: std::time::Duration,
) -> Result<kv::Store, ReplicationError> {
    if let Ok(store) = jetstream.get_key_value(&bucket).await {
        return Ok(store);
    }
    let config = kv::Config {
        bucket: bucket.clone(),
        history: 1,
        max_age,
        num_replicas: settings.replicas,
        storage: stream::StorageType::File,
        ..Default::default()
    };
    match jetstream.create_key_value(config).await {
        Ok(store) => Ok(store),
        // Another node created it at the same moment.
        Err(create_error) => {
            tracing::debug!(%create_error, bucket, "creating the KV bucket failed; reading it instead");
            jetstream.get_key_value(&bucket).await.map_err(|error| ReplicationError::jetstream("KV bucket", error))
        }
    }
}
