//! An example consumer of the desk's event stream (docs/events.md): prints every event after a journal position
//! as one JSON line, then follows the live ones. Keep the last `seq` and `index` it printed and pass them back
//! to resume after a disconnect with nothing missed and nothing twice.
//!
//! `cargo run -p otcd-eventstream --example consume -- nats://127.0.0.1:4222 [AFTER_SEQ [AFTER_INDEX]]`

use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use otcd_eventstream::{position_of_headers, stream_sequence_after, Position};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut arguments = std::env::args().skip(1);
    let server = arguments.next().unwrap_or_else(|| "nats://127.0.0.1:4222".to_owned());
    let seq: u64 = arguments.next().map_or(Ok(0), |text| text.parse())?;
    let index: u32 = arguments.next().map_or(Ok(u32::MAX), |text| text.parse())?;
    let after = Position { seq, index };
    let context = jetstream::new(async_nats::connect(server).await?);
    let mut stream = context.get_stream("OTCD_EVENTS").await?;
    // Nothing after `after` yet: start at the next message the stream will store.
    let start_sequence = match stream_sequence_after(&mut stream, after).await? {
        Some(sequence) => sequence,
        None => stream.info().await?.state.last_sequence + 1,
    };
    let ordered = consumer::pull::OrderedConfig {
        deliver_policy: consumer::DeliverPolicy::ByStartSequence { start_sequence },
        ..Default::default()
    };
    let mut messages = stream.create_consumer(ordered).await?.messages().await?;
    while let Some(message) = messages.next().await {
        let message = message?;
        let position = message.headers.as_ref().and_then(position_of_headers);
        if position.is_some_and(|position| position > after) {
            println!("{}", String::from_utf8_lossy(&message.payload));
        }
    }
    Ok(())
}
