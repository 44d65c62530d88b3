//! The bytes a client sends on one connection: size-prefixed frames, each a
//! request header and body, read and decoded as `net/connection.rs` does
//! until the broker would close the connection.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vltava::net::frame::FrameReader;

/// The default `socket.request.max.bytes`.
const MAX_REQUEST: usize = 104_857_600;

fuzz_target!(|data: &[u8]| {
    let mut stream = data;
    let mut frames = FrameReader::new(MAX_REQUEST);
    loop {
        let frame = match futures::executor::block_on(frames.next(&mut stream)) {
            Ok(Some(frame)) => frame,
            Ok(None) | Err(_) => break,
        };
        assert!(frame.len() >= 10 && frame.len() <= MAX_REQUEST);
        if !vltava_fuzz::serve_offline(frame) {
            break;
        }
    }
});
