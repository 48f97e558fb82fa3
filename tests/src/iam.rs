//! A moto server of its own for the IAM tests (`it::iam`): IAM enforcement is a switch on the
//! whole server (`POST /moto-api/reset-auth`), so these tests never touch the suite's shared moto,
//! which runs without auth. Started on a free port, killed on drop.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A moto server process; `endpoint` is its `http://127.0.0.1:PORT`.
pub struct IamMoto {
    child: Child,
    pub endpoint: String,
}

impl IamMoto {
    /// Starts `$WXOPEN_PYTHON -m moto.server` on a free port and waits for its "Running on" line.
    /// Panics (a test failure, never a skip) when it cannot start.
    pub fn start() -> Self {
        let python = std::env::var("WXOPEN_PYTHON").unwrap_or_else(|_| {
            panic!("WXOPEN_PYTHON must name the venv's python (moto); run `make test`")
        });
        let mut child = Command::new(python)
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start moto.server: {e}"));
        let stderr = child.stderr.take().unwrap_or_else(|| panic!("moto stderr"));
        let mut lines = BufReader::new(stderr).lines();
        let mut seen = Vec::new();
        let endpoint = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(rest) = line.split("Running on http://127.0.0.1:").nth(1) {
                        let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
                        break format!("http://127.0.0.1:{port}");
                    }
                    seen.push(line);
                }
                _ => {
                    let _ = child.kill();
                    panic!("moto.server did not start:\n{}", seen.join("\n"));
                }
            }
        };
        // Keep draining moto's request log so the pipe never fills.
        std::thread::spawn(move || for _ in lines {});
        IamMoto { child, endpoint }
    }
}

impl Drop for IamMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
