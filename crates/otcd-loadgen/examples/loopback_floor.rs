//! The floor under the WebSocket fan-out benchmark on this machine: what the kernel alone charges to move one
//! ladder-sized message to each of N loopback TCP connections and read it back, with no runtime, no WebSocket
//! framing and no JSON. One thread writes one message to each connection in turn (as the desk's writers do for
//! one tick), another reads them in the same order and notes when the last one arrived; that burst is repeated,
//! 10 times a second like a tick. Both threads share the machine's cores like `otcd serve` and `otcd-wsfan` do.
//!
//! With more than one writer thread, the connections are split between them (the desk writes from every runtime
//! worker).
//!
//! `cargo run --release -p otcd-loadgen --example loopback_floor -- [connections] [message bytes] [bursts] [writers]`

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn main() -> std::io::Result<()> {
    let mut arguments = std::env::args().skip(1).map(|argument| argument.parse::<usize>().ok());
    let connections = arguments.next().flatten().unwrap_or(1_000);
    let message_bytes = arguments.next().flatten().unwrap_or(600);
    let bursts = arguments.next().flatten().unwrap_or(100);
    let writer_threads = arguments.next().flatten().unwrap_or(1).clamp(1, 64);

    let listener = TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?;
    let mut readers = Vec::with_capacity(connections);
    let mut writers = Vec::with_capacity(connections);
    for _ in 0..connections {
        let reader = TcpStream::connect(address)?;
        let (writer, _) = listener.accept()?;
        // As on the desk's accepted sockets and the generator's: no Nagle delay on small messages.
        writer.set_nodelay(true)?;
        reader.set_nodelay(true)?;
        readers.push(reader);
        writers.push(writer);
    }

    // The writer tells the reader when each burst started; bounded by the number of bursts.
    let (started_sender, started_receiver) = mpsc::sync_channel::<Instant>(bursts);
    let reader = std::thread::spawn(move || -> std::io::Result<Vec<(Duration, Duration)>> {
        let mut buffer = vec![0_u8; message_bytes];
        let mut bursts_seen = Vec::with_capacity(bursts);
        for _ in 0..bursts {
            let Ok(started) = started_receiver.recv() else { break };
            let mut first = None;
            for socket in &mut readers {
                socket.read_exact(&mut buffer)?;
                first.get_or_insert_with(Instant::now);
            }
            let first = first.unwrap_or_else(Instant::now);
            bursts_seen.push((first - started, started.elapsed()));
        }
        Ok(bursts_seen)
    });

    let message = vec![b'x'; message_bytes];
    let mut next_burst = Instant::now();
    let mut writes = Vec::with_capacity(bursts);
    for _ in 0..bursts {
        next_burst += Duration::from_millis(100);
        std::thread::sleep(next_burst.saturating_duration_since(Instant::now()));
        let started = Instant::now();
        let _ = started_sender.send(started);
        let chunk = connections.div_ceil(writer_threads).max(1);
        std::thread::scope(|scope| {
            let threads: Vec<_> = writers
                .chunks_mut(chunk)
                .map(|sockets| {
                    let message = &message;
                    scope.spawn(move || sockets.iter_mut().try_for_each(|socket| socket.write_all(message)))
                })
                .collect();
            threads.into_iter().try_for_each(|thread| thread.join().expect("a writer thread does not panic"))
        })?;
        writes.push(started.elapsed());
    }
    writes.sort();
    drop(started_sender);
    let mut seen = reader.join().expect("the reader thread does not panic")?;
    seen.sort_by_key(|(_, last)| *last);
    let quantile = |fraction: f64| {
        let index = ((seen.len() as f64 * fraction).ceil() as usize).clamp(1, seen.len().max(1)) - 1;
        seen.get(index).map_or(0.0, |(_, last)| last.as_secs_f64() * 1_000.0)
    };
    let first_median = {
        let mut first: Vec<Duration> = seen.iter().map(|(first, _)| *first).collect();
        first.sort();
        first.get(first.len() / 2).map_or(0.0, |first| first.as_secs_f64() * 1_000.0)
    };
    println!(
        "{{\"connections\": {connections}, \"writer_threads\": {writer_threads}, \"message_bytes\": {message_bytes}, \"bursts\": {}, \"first_message_ms_p50\": {first_median:.2}, \"writes_ms_p50\": {:.2}, \"last_message_ms\": {{\"p50\": {:.2}, \"p90\": {:.2}, \"p99\": {:.2}, \"max\": {:.2}}}}}",
        seen.len(),
        writes.get(writes.len() / 2).map_or(0.0, |write| write.as_secs_f64() * 1_000.0),
        quantile(0.50),
        quantile(0.90),
        quantile(0.99),
        quantile(1.0)
    );
    Ok(())
}
