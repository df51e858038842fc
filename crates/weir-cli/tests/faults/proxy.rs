//! A slow link: a TCP proxy that delivers every byte `delay` after it arrived, each way
//! (latency without a bandwidth cap — what `tc netem delay` does; this kernel has no netem).
//! The servers reach PostgreSQL through it in the slow-database scenario.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// The running proxy; dropping it closes every connection.
pub struct DelayProxy {
    addr: String,
    delay_ms: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl DelayProxy {
    /// Listens on `bind` (port 0: any) and forwards to `upstream` with `delay` each way.
    pub fn start(bind: &str, upstream: &str, delay: Duration) -> DelayProxy {
        let listener = TcpListener::bind(bind).expect("bind the delay proxy");
        let addr = listener.local_addr().expect("proxy address").to_string();
        let delay_ms = Arc::new(AtomicU64::new(delay.as_millis() as u64));
        let stop = Arc::new(AtomicBool::new(false));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let (d, s, c, up) = (
            delay_ms.clone(),
            stop.clone(),
            conns.clone(),
            upstream.to_string(),
        );
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(&up) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                if let Ok(mut all) = c.lock() {
                    all.extend(client.try_clone().ok());
                    all.extend(server.try_clone().ok());
                }
                pump(&client, &server, d.clone());
                pump(&server, &client, d.clone());
            }
        });
        DelayProxy {
            addr,
            delay_ms,
            stop,
            conns,
        }
    }

    /// `ip:port` it listens on.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Changes the delay of bytes arriving from now on.
    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }
}

/// Copies `from` → `to`, each chunk written `delay` after it was read.
fn pump(from: &TcpStream, to: &TcpStream, delay: Arc<AtomicU64>) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => {
                    drop(tx);
                    return;
                }
                Ok(n) => {
                    let due = Instant::now() + Duration::from_millis(delay.load(Ordering::SeqCst));
                    if tx.send((due, buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
            }
        }
    });
    std::thread::spawn(move || {
        for (due, bytes) in rx {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if to.write_all(&bytes).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
        if let Ok(all) = self.conns.lock() {
            for c in all.iter() {
                let _ = c.shutdown(Shutdown::Both);
            }
        }
    }
}
