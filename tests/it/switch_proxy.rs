//! A TCP proxy on loopback in front of one upstream that a test switches like an outage: up,
//! refusing (each connection reset as it arrives) or silent (accepted, never answered).
//! Every switch drops the connections open through it, as a failing network does.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// What the proxy does with a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forwards it to the upstream.
    Up,
    /// Resets it at once.
    Refusing,
    /// Holds it open and forwards nothing.
    Silent,
}

struct Switch {
    mode: Mode,
    /// The tasks of the connections open now; aborting one drops both of its sockets.
    connections: JoinSet<()>,
}

/// Stops listening and drops every connection when stopped or dropped.
pub struct SwitchProxy {
    pub addr: SocketAddr,
    switch: Arc<Mutex<Switch>>,
    acceptor: JoinHandle<()>,
}

impl SwitchProxy {
    /// A proxy to `upstream`, up.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let switch = Arc::new(Mutex::new(Switch {
            mode: Mode::Up,
            connections: JoinSet::new(),
        }));
        let accepting = Arc::clone(&switch);
        let acceptor = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                accepting.lock().unwrap().take(inbound, upstream);
            }
        });
        Self {
            addr,
            switch,
            acceptor,
        }
    }

    /// `http://` and the proxy's address, for an SDK's endpoint.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set(&self, mode: Mode) {
        let mut switch = self.switch.lock().unwrap();
        switch.mode = mode;
        switch.connections.abort_all();
    }

    /// Stops listening and closes every connection, and returns once both are done.
    pub async fn stop(mut self) {
        self.acceptor.abort();
        let _ = (&mut self.acceptor).await;
        let mut connections = std::mem::take(&mut self.switch.lock().unwrap().connections);
        connections.shutdown().await;
    }
}

impl Switch {
    fn take(&mut self, inbound: TcpStream, upstream: SocketAddr) {
        // Finished connections are reaped here, so the set holds only open ones.
        while self.connections.try_join_next().is_some() {}
        match self.mode {
            Mode::Up => {
                self.connections.spawn(async move {
                    let mut inbound = inbound;
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
            Mode::Refusing => {
                // A zero linger makes the close a reset, as a refused connection reads.
                let _ = inbound.set_zero_linger();
            }
            Mode::Silent => {
                self.connections.spawn(async move {
                    let _held = inbound;
                    std::future::pending::<()>().await;
                });
            }
        }
    }
}

impl Drop for SwitchProxy {
    fn drop(&mut self) {
        self.acceptor.abort();
        self.switch.lock().unwrap().connections.abort_all();
    }
}
